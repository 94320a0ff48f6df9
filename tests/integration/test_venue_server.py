"""The local Hyperliquid venue server: paging caps, windows, rate limit, errors, faults, conformance.

Talks to the real server (uvicorn in a thread) over loopback with plain httpx, so the
server is checked independently of the project's client.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from pipelines.sandbox.venue_server import load_scenario, parse_faults, serve
from tests.conftest import PROJECT_ROOT

try:
    from tests.fixtures_venue import (
        HLP,
        LEDGER_ROWS,
        T0,
        USER_BIG,
        USER_LIQ,
        USER_MAIN,
        USER_NOBODY,
        build_scenario,
    )
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from fixtures_venue import (  # type: ignore[no-redef]
        HLP,
        LEDGER_ROWS,
        T0,
        USER_BIG,
        USER_LIQ,
        USER_MAIN,
        USER_NOBODY,
        build_scenario,
    )


SHARED = PROJECT_ROOT.parent / "shared"
CASSETTES = SHARED / "realdata" / "hyperliquid-python-sdk" / "tests" / "cassettes" / "info_test"
API_EXAMPLES = SHARED / "reference" / "api-examples"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    return build_scenario(tmp_path_factory.mktemp("venue") / "scenario")


@pytest.fixture(scope="module")
def server(scenario):
    with serve(scenario.root, rate_limit_per_minute=None) as srv:
        yield srv


@pytest.fixture()
def http(server):
    server.set_faults(None)
    with httpx.Client(base_url=server.base_url, timeout=5) as c:
        yield c


def info(http: httpx.Client, **body: Any) -> Any:
    r = http.post("/info", json=body)
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------


def test_scenario_loads_lz4_and_plain_hour_files(scenario):
    files = sorted(p.name for p in (scenario.root / "node_fills_by_block").rglob("*.*"))
    assert any(f.endswith(".lz4") for f in files) and any(f.endswith(".jsonl") for f in files)
    sc = load_scenario(scenario.root)
    assert sc.now_ms == scenario.now_ms
    for user, fills in scenario.fills.items():
        assert len(sc.fills_by_user[user]) == len(fills)


def test_missing_scenario_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_scenario(tmp_path / "nope")


def test_binds_loopback_only(scenario):
    with pytest.raises(ValueError, match="loopback"):
        with serve(scenario.root, host="0.0.0.0"):
            pass


# ---------------------------------------------------------------------------
# fills paging caps
# ---------------------------------------------------------------------------


def test_user_fills_returns_2000_most_recent_newest_first(http, scenario):
    got = info(http, type="userFills", user=USER_MAIN)
    want = scenario.fills[USER_MAIN][-2000:]
    assert len(got) == 2000
    assert [f["tid"] for f in got] == [f["tid"] for f in reversed(want)]
    assert got[0]["time"] >= got[-1]["time"]


def test_user_fills_by_time_caps_at_2000_oldest_first(http, scenario):
    got = info(http, type="userFillsByTime", user=USER_MAIN, startTime=0)
    assert len(got) == 2000
    assert [f["tid"] for f in got] == [f["tid"] for f in scenario.fills[USER_MAIN][:2000]]


def test_user_fills_by_time_window_is_inclusive(http, scenario):
    times = scenario.times(USER_MAIN)
    start, end = times[30], times[60]  # 3 fills share each ms
    got = info(http, type="userFillsByTime", user=USER_MAIN, startTime=start, endTime=end)
    want = [f for f in scenario.fills[USER_MAIN] if start <= f["time"] <= end]
    assert [f["tid"] for f in got] == [f["tid"] for f in want]
    assert got[0]["time"] == start and got[-1]["time"] == end
    assert sum(1 for f in got if f["time"] == start) == 3
    # exclusive neighbours are not included
    assert info(http, type="userFillsByTime", user=USER_MAIN, startTime=start + 1, endTime=start + 1) == []


def test_only_10000_most_recent_fills_reachable(http, scenario):
    fills = scenario.fills[USER_BIG]
    assert len(fills) == 11000
    first_reachable = fills[-10000]
    got = info(http, type="userFillsByTime", user=USER_BIG, startTime=0, endTime=fills[900]["time"])
    assert got == []  # older than the reachable horizon
    got = info(http, type="userFillsByTime", user=USER_BIG, startTime=0)
    assert got[0]["tid"] == first_reachable["tid"]
    # walk the whole reachable history by time
    seen: dict[int, dict] = {}
    start = 0
    while True:
        page = info(http, type="userFillsByTime", user=USER_BIG, startTime=start)
        seen.update((f["tid"], f) for f in page)
        if len(page) < 2000:
            break
        start = page[-1]["time"]
    assert len(seen) == 10000
    assert min(f["time"] for f in seen.values()) == first_reachable["time"]


def test_end_time_omitted_means_now_and_reversed_flag(http, scenario):
    fills = scenario.fills[USER_MAIN]
    got = info(http, type="userFillsByTime", user=USER_MAIN, startTime=fills[-10]["time"])
    assert [f["tid"] for f in got] == [f["tid"] for f in fills if f["time"] >= fills[-10]["time"]]
    rev = info(http, type="userFillsByTime", user=USER_MAIN, startTime=0, reversed=True)
    assert len(rev) == 2000 and rev[0]["tid"] == fills[-1]["tid"]


def test_unknown_user_has_no_fills(http):
    assert info(http, type="userFills", user=USER_NOBODY) == []
    assert info(http, type="userFillsByTime", user=USER_NOBODY, startTime=0) == []


def test_node_only_fields_are_stripped(http):
    got = info(http, type="userFillsByTime", user=USER_MAIN, startTime=0)
    assert all("builder" not in f for f in got)
    assert any("builderFee" in f for f in got)


# ---------------------------------------------------------------------------
# other info types
# ---------------------------------------------------------------------------


def test_clearinghouse_state_snapshot_and_unknown_user(http):
    st = info(http, type="clearinghouseState", user=USER_MAIN)
    assert st["time"] == T0 + 600_000  # latest snapshot at or before "now"
    assert {p["position"]["coin"] for p in st["assetPositions"]} == {"BTC", "ETH"}
    empty = info(http, type="clearinghouseState", user=USER_NOBODY)
    assert empty["assetPositions"] == [] and empty["marginSummary"]["accountValue"] == "0.0"


def test_meta_and_asset_ctxs_latest_at_or_before_now(http, scenario):
    meta, ctxs = info(http, type="metaAndAssetCtxs")
    assert [u["name"] for u in meta["universe"]] == ["BTC", "ETH"]
    n_lines = len(range(T0, scenario.now_ms + 1, 1_200_000))
    assert ctxs[0]["markPx"] == f"{60000 + n_lines - 1}.0"


def test_recent_trades_have_buyer_and_seller(http, scenario):
    trades = info(http, type="recentTrades", coin="BTC")
    assert 0 < len(trades) <= 10
    last = trades[-1]
    assert set(last) == {"coin", "side", "px", "sz", "time", "hash", "tid", "users"}
    buyer, seller = last["users"]
    legs = {f["side"]: u for u, fs in scenario.fills.items() for f in fs if f["tid"] == last["tid"]}
    assert (buyer, seller) == (legs["B"], legs["A"])
    assert USER_LIQ in last["users"]  # the ADL trade is the latest BTC trade


def test_candles_derived_from_fills(http, scenario):
    start, end = T0, T0 + 10 * 60_000
    candles = info(
        http, type="candleSnapshot", req={"coin": "ETH", "interval": "1m", "startTime": start, "endTime": end}
    )
    assert candles and all(c["i"] == "1m" and c["s"] == "ETH" and c["T"] - c["t"] == 59_999 for c in candles)
    tids = {
        f["tid"]
        for fs in scenario.fills.values()
        for f in fs
        if f["coin"] == "ETH" and candles[0]["t"] <= f["time"] <= candles[-1]["T"]
    }
    assert sum(c["n"] for c in candles) == len(tids)
    for c in candles:
        assert float(c["l"]) <= float(c["o"]) <= float(c["h"]) and isinstance(c["v"], str)


def test_funding_ledger_and_vault(http):
    fh = info(http, type="fundingHistory", coin="BTC", startTime=0)
    assert fh and all(set(r) == {"coin", "fundingRate", "premium", "time"} and r["time"] % 3_600_000 == 0 for r in fh)
    led = info(http, type="userNonFundingLedgerUpdates", user=USER_MAIN, startTime=0)
    assert len(led) == 500 and led[0]["delta"]["type"] == "deposit"  # 500 cap
    assert LEDGER_ROWS > 500
    assert info(http, type="userNonFundingLedgerUpdates", user=USER_NOBODY, startTime=0) == []
    v = info(http, type="vaultDetails", vaultAddress=HLP)
    assert v["vaultAddress"] == HLP and v["relationship"]["type"] == "parent"
    assert info(http, type="vaultDetails", vaultAddress=USER_NOBODY) is None


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_unknown_type_is_422_with_hl_text(http):
    r = http.post("/info", json={"type": "definitelyNotAType"})
    assert r.status_code == 422
    assert "Failed to deserialize the JSON body" in r.text and "unknown variant `definitelyNotAType`" in r.text


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"type": "userFills"}, 422, "missing field `user`"),
        ({"type": "userFillsByTime", "user": USER_MAIN}, 422, "missing field `startTime`"),
        ({"type": "userFills", "user": "bob"}, 422, "invalid address"),
        (
            {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "7m", "startTime": 0, "endTime": 1}},
            422,
            "unknown variant",
        ),
    ],
)
def test_bad_bodies(http, body, status, needle):
    r = http.post("/info", json=body)
    assert r.status_code == status and needle in r.text


def test_invalid_json_is_400(http):
    r = http.post("/info", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_per_ip_weight_rate_limit(server):
    with serve(server.scenario, rate_limit_per_minute=100) as srv, httpx.Client(base_url=srv.base_url) as c:
        # clearinghouseState weighs 2: 50 fit in a 100 budget (refill ~1.7/s adds at most a couple)
        codes = [c.post("/info", json={"type": "clearinghouseState", "user": USER_MAIN}).status_code for _ in range(55)]
        assert codes[:50] == [200] * 50 and codes[-1] == 429
        srv.reset_rate_limits()
        # userFills: 20 base + 2000 items / 20 = 100 extra -> the next request is refused
        assert c.post("/info", json={"type": "userFills", "user": USER_MAIN}).status_code == 200
        r = c.post("/info", json={"type": "metaAndAssetCtxs"})
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert srv.state.limiter.charged["127.0.0.1"] == 120


# ---------------------------------------------------------------------------
# fault injection
# ---------------------------------------------------------------------------


def test_fault_spec_grammar():
    fs = parse_faults("latency=0.05,429=0.2,5xx=0.1,truncate=0.1,reset=0.05,seed=3")
    assert (fs.latency, fs.p429, fs.p5xx, fs.ptruncate, fs.preset, fs.seed) == (0.05, 0.2, 0.1, 0.1, 0.05, 3)
    assert parse_faults("429burst=3,5xxburst=1").bursts == (("429", 3), ("5xx", 1))
    assert parse_faults("") is None and parse_faults(None) is None
    for bad in ("429=2", "wat=1", "latency", "429=0.6,5xx=0.6", "truncate_mode=zip"):
        with pytest.raises(ValueError):
            parse_faults(bad)


def _statuses(http: httpx.Client, n: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(n):
        try:
            r = http.post("/info", json={"type": "clearinghouseState", "user": USER_MAIN})
            if r.status_code != 200:
                out.append(r.status_code)
                continue
            try:
                orjson.loads(r.content)
                out.append(200)
            except orjson.JSONDecodeError:
                out.append("200-badjson")
        except httpx.RemoteProtocolError as exc:
            out.append("truncated" if "complete message body" in str(exc) else "reset")
        except httpx.TransportError:
            out.append("reset")
    return out


def test_faults_are_deterministic_per_seed(server, http):
    spec = "429=0.2,5xx=0.2,truncate=0.2,reset=0.1,seed=7"
    server.set_faults(spec)
    a = _statuses(http, 40)
    server.set_faults(spec)
    b = _statuses(http, 40)
    assert a == b
    kinds = set(map(str, a))
    assert {"200", "429"} <= kinds and kinds & {"500", "502", "503"} and "reset" in kinds
    assert kinds & {"truncated", "200-badjson"}
    server.set_faults(spec.replace("seed=7", "seed=8"))
    assert _statuses(http, 40) != a


def test_burst_then_clean(server, http):
    server.set_faults("429burst=3,retry_after=2")
    r = [http.post("/info", json={"type": "metaAndAssetCtxs"}) for _ in range(4)]
    assert [x.status_code for x in r] == [429, 429, 429, 200]
    assert r[0].headers["Retry-After"] == "2"


def test_truncation_modes(server, http):
    server.set_faults("truncate=1,truncate_mode=cl")
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        http.post("/info", json={"type": "userFills", "user": USER_MAIN})
    server.set_faults("truncate=1,truncate_mode=json")
    r = http.post("/info", json={"type": "userFills", "user": USER_MAIN})
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


def test_reset_closes_without_response(server, http):
    server.set_faults("resetburst=1")
    with pytest.raises(httpx.TransportError):
        http.post("/info", json={"type": "metaAndAssetCtxs"})
    assert http.post("/info", json={"type": "metaAndAssetCtxs"}).status_code == 200
    assert server.fault_counts == {"reset": 1}


# ---------------------------------------------------------------------------
# conformance with real recorded responses
# ---------------------------------------------------------------------------

# keys the 2023 cassettes predate (reference/venue-apis.md §1.2)
NEWER_FILL_KEYS = {"tid", "feeToken", "builderFee", "cloid", "twapId", "liquidation", "feeTrialEscrow"}


def _shape(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}[type(v)]


def _assert_same_shape(
    real: dict[str, Any],
    ours: dict[str, Any],
    *,
    allow_extra: set[str],
    nullable: set[str] = frozenset(),
    path: str = "",
) -> None:
    missing = set(real) - set(ours)
    assert not missing, f"{path or 'root'}: keys missing vs real response: {sorted(missing)}"
    extra = set(ours) - set(real) - allow_extra
    assert not extra, f"{path or 'root'}: keys not in the real response: {sorted(extra)}"
    for k in real:
        a, b = _shape(real[k]), _shape(ours[k])
        if k in nullable and "null" in (a, b):
            continue
        assert a == b, f"{path}{k}: real {a} vs ours {b}"


def _cassette(name: str) -> Any:
    yaml = pytest.importorskip("yaml")
    path = CASSETTES / name
    if not path.is_file():
        pytest.skip(f"real SDK cassette {path} absent (needs ../shared/realdata next to the project)")
    doc = yaml.safe_load(path.read_text())
    return orjson.loads(doc["interactions"][0]["response"]["body"]["string"])


def _example(name: str) -> Any:
    path = API_EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"reference example {path} absent (needs ../shared/reference next to the project)")
    return orjson.loads(path.read_bytes())["response"]


@pytest.mark.realdata
@pytest.mark.parametrize("cassette", ["test_get_user_fills.yaml", "test_get_user_fills_by_time.yaml"])
def test_fill_items_match_real_cassette(http, cassette):
    real = _cassette(cassette)
    ours = info(http, type="userFills", user=USER_MAIN)
    assert real and ours
    for r in real[:50]:
        for o in ours[:50]:
            _assert_same_shape(r, o, allow_extra=NEWER_FILL_KEYS)
    assert {o["side"] for o in ours} <= {"A", "B"} and {r["side"] for r in real} <= {"A", "B"}


@pytest.mark.realdata
def test_liquidation_fill_matches_real_fixture(http):
    real = [f for f in _example("hyperliquid_userFills_with_liquidation_ccxt_fixture.json") if "liquidation" in f]
    ours = [f for f in info(http, type="userFills", user=USER_LIQ) if "liquidation" in f]
    assert real and ours
    for o in ours:
        _assert_same_shape(real[0], o, allow_extra={"builderFee", "cloid"}, nullable={"twapId"})
        _assert_same_shape(real[0]["liquidation"], o["liquidation"], allow_extra=set(), path="liquidation.")


@pytest.mark.realdata
def test_clearinghouse_state_matches_real_response(http):
    real = _example("hyperliquid_clearinghouseState_isolated_ccxt_fixture.json")
    ours = info(http, type="clearinghouseState", user=USER_MAIN)
    _assert_same_shape(real, ours, allow_extra=set())
    _assert_same_shape(real["marginSummary"], ours["marginSummary"], allow_extra=set(), path="marginSummary.")
    rp = real["assetPositions"][0]
    for op in ours["assetPositions"]:
        _assert_same_shape(rp, op, allow_extra=set())
        _assert_same_shape(
            rp["position"], op["position"], allow_extra=set(), nullable={"liquidationPx"}, path="position."
        )
        assert set(op["position"]["leverage"]) <= {"type", "value", "rawUsd"}
    empty = info(http, type="clearinghouseState", user=USER_NOBODY)
    _assert_same_shape(real, empty, allow_extra=set())


@pytest.mark.realdata
def test_meta_and_asset_ctxs_matches_real_response(http):
    real_meta, real_ctxs = _example("hyperliquid_metaAndAssetCtxs_docs.json")
    meta, ctxs = info(http, type="metaAndAssetCtxs")
    _assert_same_shape(real_meta, meta, allow_extra=set())
    optional_universe = {"onlyIsolated", "marginTableId", "isDelisted"}
    for u in meta["universe"]:
        _assert_same_shape(real_meta["universe"][0], u, allow_extra=optional_universe)
    for c in ctxs:  # dayBaseVlm is newer than the docs example; midPx/premium/impactPxs may be null
        _assert_same_shape(real_ctxs[0], c, allow_extra={"dayBaseVlm"}, nullable={"midPx", "premium", "impactPxs"})
