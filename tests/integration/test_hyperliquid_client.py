"""HyperliquidInfoClient + VenueHTTPClient against the real local venue server over loopback.

Retries use an injected ``sleep`` that only records the waits, so fault tests run in
milliseconds; only the timeout test really waits (bounded, < 1 s).
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from typing import Any

import httpx
import orjson
import pytest

from pipelines.sandbox.venue_server import serve
from pipelines.venues import (
    ClientError,
    HyperliquidInfoClient,
    MalformedResponseError,
    RateLimitedError,
    RawResponse,
    ServerError,
    TimePager,
    TransportError,
    UserCursorStore,
    VenueError,
    WeightRateLimiter,
    parse_retry_after,
    redact,
)
from pipelines.venues.hyperliquid import fill_key, info_weight

try:
    from tests.fixtures_venue import HLP, LEDGER_ROWS, USER_BIG, USER_MAIN, USER_NOBODY, build_scenario
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from fixtures_venue import HLP, LEDGER_ROWS, USER_BIG, USER_MAIN, USER_NOBODY, build_scenario  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    return build_scenario(tmp_path_factory.mktemp("client") / "scenario")


@pytest.fixture(scope="module")
def server(scenario):
    with serve(scenario.root, rate_limit_per_minute=None) as srv:
        yield srv


class Recorder:
    """Injected sleep: records waits, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, s: float) -> None:
        self.waits.append(s)


@pytest.fixture()
def sleeps() -> Recorder:
    return Recorder()


@pytest.fixture()
def mk(server):
    """Client factory; every client is closed at teardown (no leaked sockets)."""
    made: list[HyperliquidInfoClient] = []

    def make(base_url: str | None = None, **kw: Any) -> HyperliquidInfoClient:
        c = HyperliquidInfoClient(base_url or server.base_url, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture()
def client(server, sleeps, mk):
    server.set_faults(None)
    server.reset_rate_limits(None)
    return mk(timeout=5, max_retries=4, sleep=sleeps)


def tids(fills: list[dict[str, Any]]) -> list[int]:
    return [f["tid"] for f in fills]


# ---------------------------------------------------------------------------
# paging
# ---------------------------------------------------------------------------


def test_user_fills_by_time_full_paging_returns_each_fill_once(client, scenario):
    pager = client.user_fills_by_time(USER_MAIN, 0)
    pages = list(pager)
    want = scenario.fills[USER_MAIN]
    assert sorted(tids(pager.items)) == sorted(tids(want))
    assert len(pager.items) == len(set(tids(pager.items))) == 5000
    assert pager.pages == len(pages) == 3  # 2000 + 2000 (+ boundary dupes) + rest
    assert pager.duplicates > 0  # page boundaries fall inside a millisecond
    assert pager.truncated is None
    assert all(isinstance(p, RawResponse) and p.endpoint == "userFillsByTime" for p in pages)
    assert pages[1].params["startTime"] == pages[0].payload[-1]["time"]  # inclusive restart


def test_paging_respects_end_and_is_lazy(client, scenario):
    fills = scenario.fills[USER_MAIN]
    start, end = fills[100]["time"], fills[4100]["time"]
    pager = client.user_fills_by_time(USER_MAIN, start, end)
    assert client.request_count == 0  # nothing happens until iterated
    got = pager.collect()
    assert sorted(tids(got)) == sorted(tids([f for f in fills if start <= f["time"] <= end]))


def test_reachable_cap_is_reported(client, scenario):
    pager = client.user_fills_by_time(USER_BIG, 0)
    got = pager.collect()
    fills = scenario.fills[USER_BIG]
    assert sorted(tids(got)) == sorted(tids(fills[-10000:]))
    tr = pager.truncated
    assert tr is not None and tr.reason == "reachable_cap" and tr.cap == 10000
    assert tr.earliest_available_ms == fills[-10000]["time"] and tr.requested_start_ms == 0
    assert "node_fills_by_block" in str(tr)


def test_window_inside_reachable_history_is_not_flagged(client, scenario):
    fills = scenario.fills[USER_BIG]
    pager = client.user_fills_by_time(USER_BIG, fills[-500]["time"])
    assert len(pager.collect()) == 500 and pager.truncated is None


def test_descending_pages_are_walked_backwards():
    """The 2023 API answered newest-first; the pager must still cover the window."""
    data = [{"time": t, "tid": t, "hash": "0x1"} for t in range(1, 1001)]
    calls: list[tuple[int, int | None]] = []

    def fetch(s: int, e: int | None) -> RawResponse:
        calls.append((s, e))
        window = [d for d in data if s <= d["time"] <= (e if e is not None else 10**9)]
        page = window[::-1][:300]
        return RawResponse("x", "y", "POST", {}, 200, 0, 0.0, page, 0)

    pager = TimePager(fetch, start_ms=1, end_ms=None, cap=300, key=fill_key)
    assert sorted(d["tid"] for d in pager.collect()) == list(range(1, 1001))
    assert calls[1][1] == 701  # endTime = oldest time of the previous page


def test_same_ms_overflow_is_reported():
    page = [{"time": 5, "tid": i, "hash": "h"} for i in range(10)]

    def fetch(s: int, e: int | None) -> RawResponse:
        return RawResponse("x", "y", "POST", {}, 200, 0, 0.0, page if s <= 5 else [], 0)

    pager = TimePager(fetch, start_ms=0, end_ms=None, cap=10, key=fill_key)
    assert len(pager.collect()) == 10
    assert pager.truncated is not None and pager.truncated.reason == "same_ms_overflow"


def test_ledger_and_funding_pagers(client):
    led = client.user_non_funding_ledger_updates(USER_MAIN, 0)
    rows = led.collect()
    assert len(rows) == LEDGER_ROWS and led.pages == 3 and led.duplicates > 0
    fund = client.funding_history("BTC", 0)
    assert fund.collect() and fund.pages == 1


def test_single_shot_endpoints(client, scenario):
    assert len(client.user_fills(USER_MAIN).payload) == 2000
    st = client.clearinghouse_state(USER_MAIN)
    assert st.endpoint == "clearinghouseState" and st.params == {"type": "clearinghouseState", "user": USER_MAIN}
    meta, ctxs = client.meta_and_asset_ctxs().payload
    assert len(meta["universe"]) == len(ctxs)
    assert client.recent_trades("ETH").payload
    assert client.candle_snapshot("ETH", "5m", 0, scenario.now_ms).payload
    assert client.vault_details(HLP).payload["vaultAddress"] == HLP
    assert client.vault_details(USER_NOBODY, user=USER_MAIN).payload is None
    with pytest.raises(ValueError, match="interval"):
        client.candle_snapshot("ETH", "7m", 0, 1)


def test_raw_response_metadata(client):
    t0 = int(time.time() * 1000)
    raw = client.clearinghouse_state(USER_MAIN)
    assert raw.venue == "hyperliquid" and raw.method == "POST" and raw.status == 200
    assert t0 - 5 <= raw.received_at <= int(time.time() * 1000) + 5
    assert raw.elapsed_ms >= 0 and raw.body_bytes == len(orjson.dumps(raw.payload)) and raw.attempts == 1
    with pytest.raises(AttributeError):
        raw.status = 500  # type: ignore[misc]


# ---------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured(client, server, sleeps):
    server.set_faults("429burst=2,retry_after=7")
    raw = client.meta_and_asset_ctxs()
    assert raw.attempts == 3 and sleeps.waits == [7.0, 7.0]


def test_429_retry_after_http_date_is_honoured(server, sleeps, mk):
    server.set_faults("429burst=1,retry_after=date")
    now = time.time()
    # server sends "now + 1 s" as an HTTP date; client clock pinned 60 s earlier -> wait ~61 s
    c = mk(sleep=sleeps, clock=lambda: now - 60)
    assert c.meta_and_asset_ctxs().attempts == 2
    assert 59 <= sleeps.waits[0] <= 62


def test_5xx_retried_then_success(client, server, sleeps):
    server.set_faults("5xxburst=3")
    raw = client.clearinghouse_state(USER_MAIN)
    assert raw.status == 200 and raw.attempts == 4 and len(sleeps.waits) == 3
    assert server.fault_counts == {"5xx": 3}
    # exponential backoff with jitter: each wait within [cap/2, cap], cap = 0.5 * 2**i, or the injected
    # 503's Retry-After (1 s) when that is longer
    for i, w in enumerate(sleeps.waits):
        assert 0.25 * 2**i <= w <= max(0.5 * 2**i, 1.0)


@pytest.mark.parametrize("mode", ["cl", "json"])
def test_truncated_body_retried_then_success(client, server, mode):
    server.set_faults(f"truncateburst=1,truncate_mode={mode}")
    raw = client.user_fills(USER_MAIN)
    assert raw.attempts == 2 and len(raw.payload) == 2000


@pytest.mark.parametrize("mode", ["cl", "json"])
def test_truncated_body_exhausts_to_malformed(server, sleeps, mode, mk):
    server.set_faults(f"truncate=1,truncate_mode={mode}")
    c = mk(max_retries=2, sleep=sleeps)
    with pytest.raises(MalformedResponseError) as ei:
        c.user_fills(USER_MAIN)
    assert ei.value.attempts == 3 and "re-run" in str(ei.value)


def test_connection_reset_retried(client, server):
    server.set_faults("resetburst=2")
    assert client.meta_and_asset_ctxs().attempts == 3


def test_connection_reset_exhausts_to_transport_error(server, sleeps, mk):
    server.set_faults("reset=1")
    c = mk(max_retries=1, sleep=sleeps)
    with pytest.raises(TransportError):
        c.meta_and_asset_ctxs()


def test_latency_beyond_timeout_is_transport_error(server, sleeps, mk):
    server.set_faults("latency=0.4")
    c = mk(timeout=0.1, max_retries=1, sleep=sleeps)
    t0 = time.perf_counter()
    with pytest.raises(TransportError, match="timed out") as ei:
        c.meta_and_asset_ctxs()
    assert ei.value.attempts == 2 and time.perf_counter() - t0 < 1.5
    # the server still answers the abandoned requests 0.4 s later (charging their weight): let it finish
    # so a later test's fresh rate-limit budget is not spent by them
    time.sleep(0.5)


def test_exhausted_typed_errors(server, sleeps, mk):
    server.set_faults("5xx=1")
    c = mk(max_retries=2, sleep=sleeps)
    with pytest.raises(ServerError) as ei:
        c.meta_and_asset_ctxs()
    assert ei.value.status in (500, 502, 503) and ei.value.attempts == 3 and "re-run" in str(ei.value)
    server.set_faults("429=1")
    with pytest.raises(RateLimitedError) as er:
        c.meta_and_asset_ctxs()
    assert er.value.status == 429 and er.value.retry_after == 1.0 and isinstance(er.value, ClientError)


def test_client_error_is_not_retried(client):
    with pytest.raises(ClientError) as ei:
        client.info({"type": "definitelyNotAType"})
    assert ei.value.status == 422 and "unknown variant" in ei.value.body
    assert client.request_count == 1 and "Fix the request" in str(ei.value)


def test_server_rate_limit_429_is_retried_after_its_retry_after(server, sleeps, mk):
    server.reset_rate_limits(30)  # weight 20 each: the second request is refused
    try:
        c = mk(max_retries=1, sleep=sleeps)
        c.meta_and_asset_ctxs()
        with pytest.raises(RateLimitedError) as ei:
            c.meta_and_asset_ctxs()
        assert ei.value.retry_after is not None and ei.value.retry_after >= 1
        assert sleeps.waits[0] >= ei.value.retry_after
    finally:
        server.reset_rate_limits(None)


def test_mixed_faults_still_yield_the_complete_history(server, scenario, sleeps, mk):
    server.set_faults("latency=0.001,429=0.15,5xx=0.15,truncate=0.15,reset=0.1,seed=3")
    c = mk(max_retries=12, sleep=sleeps)
    got = c.user_fills_by_time(USER_MAIN, 0).collect()
    assert sorted(tids(got)) == sorted(tids(scenario.fills[USER_MAIN]))
    assert c.request_count > 3 and sum(server.fault_counts.values()) > 0


def test_connection_refused_is_transport_error(sleeps, mk):
    c = mk("http://127.0.0.1:9", max_retries=1, sleep=sleeps, timeout=1)
    with pytest.raises(TransportError, match="Check connectivity"):
        c.meta_and_asset_ctxs()


def test_mock_transport_content_length_mismatch_and_bad_json(sleeps, mk):
    bodies = iter([b'[{"a"', b"not json", b"[1,2]"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=next(bodies))

    c = mk("http://venue.test", transport=httpx.MockTransport(handler), max_retries=2, sleep=sleeps)
    assert c.meta_and_asset_ctxs().payload == [1, 2]
    assert len(sleeps.waits) == 2


# ---------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------


def test_redact_removes_secret_keys():
    params = {
        "type": "x",
        "api_key": "K",
        "apiKey": "K",
        "X-MBX-APIKEY": "K",
        "signature": "S",
        "secret": "S",
        "passphrase": "P",
        "nested": {"private_key": "PK", "keep": 1, "list": [{"password": "pw", "ok": 2}]},
        "feeToken": "USDC",
    }
    assert redact(params) == {"type": "x", "nested": {"keep": 1, "list": [{"ok": 2}]}, "feeToken": "USDC"}


def test_secrets_never_reach_raw_response_or_logs(server, sleeps, caplog, mk):
    server.set_faults("5xxburst=1")
    c = mk(sleep=sleeps, headers={"X-API-KEY": "hdr-secret-123"})
    body = {"type": "metaAndAssetCtxs", "api_key": "key-secret-123", "signature": {"r": "0xsig-secret-123"}}
    with caplog.at_level(logging.DEBUG, logger="pipelines.venues"):
        raw = c.info(body)
    assert raw.params == {"type": "metaAndAssetCtxs"}
    dumped = repr(raw) + repr(c) + caplog.text
    assert "secret-123" not in dumped
    assert "retrying" in caplog.text  # the retry was logged, without secrets


# ---------------------------------------------------------------------------
# rate limiter
# ---------------------------------------------------------------------------


def test_weights_per_type():
    assert info_weight("clearinghouseState") == 2 and info_weight("l2Book") == 2
    assert info_weight("metaAndAssetCtxs") == 20 and info_weight("vaultDetails") == 20
    assert info_weight("userFillsByTime", 2000) == 120 and info_weight("userFills", 19) == 20
    assert info_weight("candleSnapshot", 120) == 22 and info_weight("userRole") == 60


def test_client_weight_accounting_matches_responses(client):
    limiter = client.rate_limiter
    assert limiter is not None
    before = limiter.total_weight
    pager = client.user_fills_by_time(USER_MAIN, 0)
    pages = list(pager)
    client.clearinghouse_state(USER_MAIN)
    expected = sum(info_weight("userFillsByTime", len(p.payload)) for p in pages) + 2
    assert limiter.total_weight - before == expected


def test_token_bucket_blocks_with_fake_clock():
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    rl = WeightRateLimiter(60, clock=lambda: now[0], sleep=sleep)  # 1 weight per second
    assert rl.acquire(50) == 0 and rl.acquire(10) == 0
    assert rl.acquire(5) == pytest.approx(5.0)
    rl.charge(30)  # response-size weight -> debt
    assert rl.available == pytest.approx(-30)
    rl.acquire(2)
    assert sum(waits) == pytest.approx(37.0)
    assert rl.total_weight == 97
    assert rl.acquire(1000) > 0  # oversize request clamps to capacity instead of hanging


def test_client_limiter_sleeps_when_budget_exhausted(server, mk):
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    rl = WeightRateLimiter(60, clock=lambda: now[0], sleep=sleep)
    c = mk(rate_limiter=rl, sleep=sleep)
    for _ in range(4):
        c.meta_and_asset_ctxs()  # 4 x 20 against a 60 budget
    assert sum(waits) == pytest.approx(20.0)


# ---------------------------------------------------------------------------
# cursor store
# ---------------------------------------------------------------------------


def test_cursor_store_incremental_pull(client, scenario, tmp_path):
    store = UserCursorStore(tmp_path / "state" / "cursors.json")
    assert not (tmp_path / "state").exists()  # no I/O in the constructor
    fills = scenario.fills[USER_MAIN]
    cut = fills[2999]["time"]  # inside a 3-fill millisecond
    first = client.user_fills_since(USER_MAIN, store, end_ms=cut)
    got1 = first.collect()
    cur = store.advance(USER_MAIN, first)
    assert cur is not None and cur.time_ms == cut and len(cur.keys) == 3

    reopened = UserCursorStore(tmp_path / "state" / "cursors.json")
    second = client.user_fills_since(USER_MAIN, reopened)
    got2 = second.collect()
    assert set(tids(got1)).isdisjoint(tids(got2))
    assert sorted(tids(got1) + tids(got2)) == sorted(tids(fills))
    reopened.advance(USER_MAIN, second)
    third = client.user_fills_since(USER_MAIN, reopened)
    assert third.collect() == [] and third.pages == 1
    assert reopened.get(USER_MAIN.upper().replace("0X", "0x")).time_ms == fills[-1]["time"]


def test_cursor_store_atomic_and_monotonic(tmp_path, monkeypatch):
    path = tmp_path / "cursors.json"
    store = UserCursorStore(path)
    store.set(USER_MAIN, 100, ((1, "0xa"),))
    good = path.read_bytes()
    store.set(USER_MAIN, 50)  # never moves backwards
    assert store.get(USER_MAIN).time_ms == 100

    def boom(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.set(USER_MAIN, 200)
    monkeypatch.undo()
    assert path.read_bytes() == good  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["cursors.json"]  # temp file cleaned up
    doc = orjson.loads(good)
    assert doc["users"][USER_MAIN] == {"time": 100, "keys": [[1, "0xa"]]}


# ---------------------------------------------------------------------------
# misc
# ---------------------------------------------------------------------------


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0 and parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("-4") == 0.0
    ref = 1_700_000_000.0
    date = email.utils.formatdate(ref + 30, usegmt=True)
    assert parse_retry_after(date, now=ref) == pytest.approx(30, abs=1)


def test_errors_share_a_base_and_say_what_to_do():
    for exc in (
        ClientError(400, "bad", venue="hyperliquid", endpoint="x"),
        ServerError(502, "<html>", venue="hyperliquid", endpoint="x"),
        TransportError("reset", venue="hyperliquid", endpoint="x"),
        MalformedResponseError("cut", venue="hyperliquid", endpoint="x"),
    ):
        assert isinstance(exc, VenueError) and "[hyperliquid x]" in str(exc) and len(exc.hint) > 20


def test_constructor_does_no_io():
    c = HyperliquidInfoClient("http://127.0.0.1:1")  # nothing listens there
    assert c._http is None and c.request_count == 0 and "127.0.0.1:1" in repr(c)
    c.close()
