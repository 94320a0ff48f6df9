"""CEX clients and ingest over real HTTP against the local venue server's CEX endpoints: paging, signing
(the server verifies signatures), venue error bodies, faults (429/5xx/truncation), quarantine of bad
items, reconciliation, idempotency, and keys never in raw payloads, logs or errors."""

from __future__ import annotations

import gzip
import logging
import re

import duckdb
import pytest

from pipelines.ingest import cex
from pipelines.ingest.safety import AuthenticationFailed
from pipelines.lake import Lake
from pipelines.sandbox.venue_server import Scenario, serve
from pipelines.sandbox.venue_server.cex import Account, add_examples, cex_routes, generate
from pipelines.venues import (
    BinanceFuturesClient,
    BybitClient,
    ClientError,
    OkxClient,
    RateLimitedError,
)
from pipelines.venues.signing import ApiCredentials, MissingCredentialsError, binance_signature
from tests.cex_pulls import KEYS as PRIVATE_KEYS
from tests.conftest import PROJECT_ROOT

ROOT = PROJECT_ROOT
EXAMPLES = ROOT.parent / "shared" / "reference" / "api-examples"
START = 1_760_000_000_000
END = START + 6 * 3_600_000
KEYS = {v: PRIVATE_KEYS[v] for v in ("binance", "bybit", "okx")}
SECRETS = [s for c in KEYS.values() for s in (c.key, c.secret, c.passphrase) if s]
HOSTILE = {"symbol": "../x", "side": "SELL"}


class Recorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, s: float) -> None:
        self.waits.append(s)


@pytest.fixture(scope="module")
def data():
    d = generate(START, 6, accounts=[Account(v, c.key, c.secret, c.passphrase) for v, c in KEYS.items()])
    if EXAMPLES.exists():
        add_examples(d, EXAMPLES)
    # hostile and malformed items the venue might send
    d.binance_force_orders["main"].append({**d.binance_force_orders["main"][5], "orderId": 1, "symbol": "../x"})
    d.binance_force_orders["main"].append(
        {**d.binance_force_orders["main"][6], "orderId": 2, "clientOrderId": "mystery-1"}
    )
    d.bybit_executions["main"].append(
        {**d.bybit_executions["main"][1], "execId": "e-html", "symbol": "<script>alert(1)</script>"}
    )
    d.okx_liquidations.append(
        {
            "instId": "BTC-USDT-SWAP",
            "instFamily": "BTC-USDT",
            "details": [{"side": "sideways", "posSide": "long", "sz": "1", "bkPx": "1", "ts": str(START + 1000)}],
        }
    )
    d.okx_liquidations.append(
        {
            "instId": "BTC-USDT-SWAP",
            "instFamily": "BTC-USDT",
            "details": [{"side": "sell", "posSide": "long", "sz": "oops", "bkPx": "1", "ts": str(START + 2000)}],
        }
    )
    return d


@pytest.fixture(scope="module")
def server(data, tmp_path_factory):
    with serve(
        Scenario(root=tmp_path_factory.mktemp("hl")), routes=cex_routes(data), rate_limit_per_minute=None
    ) as srv:
        yield srv


def client(venue: str, srv, **kw):
    kw.setdefault("rate_limit", False)
    kw.setdefault("sleep", Recorder())
    return cex.make_client(venue, srv.base_url, credentials=KEYS.get(venue), **kw)


def test_binance_signature_matches_docs_vector():
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    query = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    assert binance_signature(secret, query) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_credentials_from_env_and_repr(monkeypatch):
    monkeypatch.delenv("LIQF_OKX_API_PASSPHRASE", raising=False)
    monkeypatch.setenv("LIQF_OKX_API_KEY", "k-123")
    monkeypatch.setenv("LIQF_OKX_API_SECRET", "s-456")
    with pytest.raises(MissingCredentialsError, match="LIQF_OKX_API_PASSPHRASE"):
        ApiCredentials.from_env("okx")
    monkeypatch.setenv("LIQF_OKX_API_PASSPHRASE", "p-789")
    creds = ApiCredentials.from_env("okx")
    assert "k-123" not in repr(creds) and "s-456" not in str(creds) and "p-789" not in f"{creds}"
    assert cex.account_label("okx", creds).startswith("key:") and "k-123" not in cex.account_label("okx", creds)


def test_binance_paging_and_signed_endpoints(server):
    c = client("binance", server)
    pages = list(c.force_orders(START, END))
    assert [len(p.payload) for p in pages][:2] == [100, 100]  # limit 100, walked forward
    assert all("signature" not in p.params and "timestamp" not in p.params for p in pages)
    assert c.adl_quantile().payload[0]["adlQuantile"]["SHORT"] == 4
    with pytest.raises(ValueError):
        list(c.force_orders(START, END, auto_close_type="bogus"))


def test_wrong_signature_gets_venue_error_without_leaking_keys(server, caplog):
    caplog.set_level(logging.DEBUG)
    bad = {
        "binance": BinanceFuturesClient(
            server.base_url, credentials=ApiCredentials(KEYS["binance"].key, "wrong"), rate_limit=False
        ),
        "bybit": BybitClient(server.base_url, credentials=ApiCredentials(KEYS["bybit"].key, "wrong"), rate_limit=False),
        "okx": OkxClient(
            server.base_url,
            credentials=ApiCredentials(KEYS["okx"].key, "wrong", KEYS["okx"].passphrase),
            rate_limit=False,
        ),
    }
    calls = {
        "binance": lambda c: c.adl_quantile(),
        "bybit": lambda c: list(c.positions()),
        "okx": lambda c: c.positions(),
    }
    expected = {"binance": "-1022", "bybit": "10004", "okx": "50113"}
    for venue, c in bad.items():
        with pytest.raises(ClientError) as info:
            calls[venue](c)
        text = str(info.value) + info.value.body + repr(c)
        assert expected[venue] in text
        for s in SECRETS:
            assert s not in text, f"{venue} error leaks a credential"
    for s in SECRETS:
        assert s not in caplog.text


def test_bybit_echoed_key_is_scrubbed(server):
    c = BybitClient(server.base_url, credentials=ApiCredentials(KEYS["bybit"].key, "wrong"), rate_limit=False)
    with pytest.raises(ClientError) as info:
        list(c.executions(START, END))
    assert "error sign!" in str(info.value) and "***" in str(info.value) and KEYS["bybit"].key not in str(info.value)


def test_venue_error_bodies(server):
    okx = client("okx", server)
    with pytest.raises(ClientError, match="50015"):
        okx._get("/api/v5/public/liquidation-orders", "liquidation-orders", {"instType": "SWAP"})
    b = client("binance", server)
    with pytest.raises(ClientError, match="-1121"):
        b.symbol_adl_risk("NOPEUSDT")
    with pytest.raises(ClientError, match="-1102"):
        b._get("/fapi/v1/openInterest", "openInterest")
    d = client("deribit", server)
    with pytest.raises(ClientError, match="-32602"):
        list(d.trades_by_time("NOPE-PERPETUAL", START, END))
    x = client("dydx", server)
    with pytest.raises(ClientError, match="not a valid ticker"):
        list(x.trades("ETH-USD", START, END))
    with pytest.raises(ValueError):
        list(x.trades("../x", START, END))
    m = client("bitmex", server)
    with pytest.raises(ClientError, match="count"):
        m._get("/api/v1/liquidation", "liquidation", {"count": 5000})


def test_faults_are_retried(server):
    server.set_faults("429burst=2,5xxburst=1,truncateburst=2,seed=1,paths=/fapi/v1/forceOrders|/v5/market/insurance")
    try:
        rec = Recorder()
        c = client("binance", server, sleep=rec)
        pages = list(c.force_orders(START, END))
        assert sum(len(p.payload) for p in pages) >= 260 and c.request_count > len(pages)
        assert len(rec.waits) == 5 and max(rec.waits) >= 1.0  # Retry-After honoured
        y = client("bybit", server)
        assert y.insurance().payload["retCode"] == 0
    finally:
        server.set_faults(None)
    server.set_faults("429burst=10,seed=1,paths=/fapi/v1/insuranceBalance")
    try:
        with pytest.raises(RateLimitedError):
            client("binance", server, max_retries=2).insurance_balance()
    finally:
        server.set_faults(None)


def test_full_ingest_all_venues(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    lake = Lake(tmp_path / "lake")
    reports = []
    for venue in cex.CEX_VENUES:
        private = venue in KEYS  # BitMEX and Deribit private pulls: tests/integration/test_private_pulls.py
        reports += cex.pull(
            lake,
            venue,
            client(venue, server),
            START,
            END,
            private=private,
            account="main" if private else None,
            addresses=["dydx1" + "q" * 38] if venue == "dydx" else (),
        )
    by = {(r.venue, r.source): r for r in reports}
    for r in reports:
        assert r.records_read == r.records_written + r.quarantined, r.summary()
    fo = by[("binance", "api:binance:forceOrders")]
    assert fo.records_written == 260 and fo.quarantined == 2
    assert {"hostile or malformed symbol '../x'", "unknown forceOrders clientOrderId kind 'mystery-1'"} <= set(
        fo.reasons
    )
    assert by[("bybit", "api:bybit:execution")].quarantined == 1
    okx = by[("okx", "api:okx:liquidation-orders")]
    assert okx.records_written == 250 and okx.quarantined == 2
    assert any("unknown side" in r for r in okx.reasons) and any("non-numeric sz" in r for r in okx.reasons)
    con = duckdb.connect()
    glob = lambda t: f"read_parquet('{lake.glob(t)}', union_by_name=true)"  # noqa: E731
    sides = dict(
        con.execute(
            f"select venue || ':' || liquidated_position_side, count(*) from {glob('cex_liquidations')} group by 1"
        ).fetchall()
    )
    assert sides["binance:long"] == 234 and sides["binance:short"] == 26
    assert con.execute(f"select count(*) from {glob('fills')} where venue='okx' and is_adl").fetchone()[0] == 33
    assert con.execute(f"select count(*) from {glob('adl_ranks')} where venue='bybit' and rank=5").fetchone()[0] == 1
    assert con.execute(f"select count(*) from {glob('insurance_fund')} where venue='okx'").fetchone()[0] == 7
    runs = con.execute(
        f"select sum(records_read), sum(rows_written + rows_quarantined) from {glob('ingest_runs')}"
    ).fetchone()
    assert runs[0] == runs[1]
    # keys never in raw payloads or logs
    for path in (lake.root / "raw").rglob("*.gz"):
        text = gzip.decompress(path.read_bytes()).decode()
        for s in SECRETS:
            assert s not in text
        assert "signature" not in text and "X-MBX-APIKEY" not in text
    for s in SECRETS:
        assert s not in caplog.text
    # idempotent: the same pull replaces its files
    before = sorted(p.relative_to(lake.root) for p in (lake.root / "normalized").rglob("*.parquet"))
    cex.pull(lake, "binance", client("binance", server), START, END, private=True, account="main")
    after = sorted(p.relative_to(lake.root) for p in (lake.root / "normalized").rglob("*.parquet"))
    assert before == after
    # paths never shaped by data
    assert not any(re.search(r"\.\./|<", str(p)) for p in lake.root.rglob("*"))


def test_pull_rejects_bad_arguments(server, tmp_path):
    lake = Lake(tmp_path / "lake")
    with pytest.raises(cex.PullError, match="invalid symbol"):
        cex.pull(lake, "okx", client("okx", server), START, END, symbols=["../x"])
    with pytest.raises(cex.PullError, match="--until"):
        cex.pull(lake, "okx", client("okx", server), END, START)
    with pytest.raises(cex.PullError, match="account label"):
        cex.pull(lake, "bitmex", client("bitmex", server), START, END, private=True)


def test_refused_key_stops_the_pull_and_writes_nothing(server, tmp_path):
    lake = Lake(tmp_path / "lake")
    c = BinanceFuturesClient(
        server.base_url, credentials=ApiCredentials(KEYS["binance"].key, "wrong"), rate_limit=False
    )
    with pytest.raises(AuthenticationFailed) as info:
        cex.pull(lake, "binance", c, START, END, private=True, account="main")
    text = f"{info.value} {info.value.hint}"
    assert "-1022" in text and "LIQF_BINANCE_API_KEY, LIQF_BINANCE_API_SECRET" in text
    assert all(s not in text for s in SECRETS)
    assert not list(lake.root.rglob("*.parquet")) and not list(lake.root.rglob("*.jsonl.gz"))


def test_cli_ingest(server, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipelines.cli import app

    for k in ("KEY", "SECRET"):
        monkeypatch.delenv(f"LIQF_BYBIT_API_{k}", raising=False)
    runner = CliRunner()
    base = [
        "--lake",
        str(tmp_path / "lake"),
        "--db",
        str(tmp_path / "db.duckdb"),
        "ingest",
        "bybit",
        "--base-url",
        server.base_url,
        "--since",
        "2025-10-09T08:53:20Z",
        "--until",
        "2025-10-09T14:53:20Z",
    ]
    res = runner.invoke(app, [*base, "--private"])
    assert res.exit_code == 2 and "LIQF_BYBIT_API_KEY" in res.output
    monkeypatch.setenv("LIQF_BYBIT_API_KEY", KEYS["bybit"].key)
    monkeypatch.setenv("LIQF_BYBIT_API_SECRET", KEYS["bybit"].secret)
    res = runner.invoke(app, [*base, "--private"])
    assert res.exit_code == 0, res.output
    assert "bybit execution" in res.output and KEYS["bybit"].key not in res.output
    res = runner.invoke(app, [*base[:-4], "--since", "bad", "--until", "2025-10-09T14:53:20Z"])
    assert res.exit_code == 2 and "ISO-8601" in res.output


def test_forensics_episodes_and_audit(server, tmp_path):
    from pipelines.analysis import cex as cex_analysis

    lake = Lake(tmp_path / "lake")
    for venue in ("binance", "bybit", "okx"):
        cex.pull(lake, venue, client(venue, server), START, END, private=True, account="main")
    res = cex_analysis.run(lake)
    kinds = {(e["venue"], e["kind"]) for e in res.episodes}
    assert ("okx", "insurance_drawdown") in kinds  # the generated 120k/h bankruptcy losses
    assert ("bybit", "adl_alert") in kinds and ("binance", "own_adl") in kinds
    dd = next(e for e in res.episodes if e["kind"] == "insurance_drawdown" and e["venue"] == "okx")
    assert dd["drawdown"] > 200_000 and dd["speed_per_hour"] > 0
    assert res.audit and all(a["verdict"] for a in res.audit)
    # Bybit reported rank 5 only at pull time (after the fills): no earlier rank -> cannot check, never "inconsistent"
    assert all(a["consistent"] is None for a in res.audit if a["venue"] == "bybit"), [
        a for a in res.audit if a["venue"] == "bybit" and a["consistent"] is not None
    ][:2]
    con = duckdb.connect()
    n = con.execute(f"select count(*) from read_parquet('{lake.glob('adl_episodes')}')").fetchone()[0]
    assert n == len(res.episodes)


def test_audit_rules():
    from forensics.cex_forensics import audit_own_adl

    fill = {
        "venue": "binance",
        "user": "a",
        "coin": "BTCUSDT",
        "time_ms": 1_000_000,
        "side": "A",
        "fill_id": "1",
        "px": 10,
        "sz": 1,
        "closed_pnl": 5,
        "is_adl": True,
    }
    rank = {
        "venue": "binance",
        "account": "a",
        "symbol": "BTCUSDT",
        "kind": "account_rank",
        "position_side": "long",
        "rank_max": 4,
    }
    (ok,) = audit_own_adl([fill], [{**rank, "rank": 4, "time_ms": 990_000}])
    assert ok["consistent"] is True
    (low,) = audit_own_adl([fill], [{**rank, "rank": 1, "time_ms": 990_000}])
    assert low["consistent"] is False and "below the top band" in low["verdict"]
    (stale,) = audit_own_adl([fill], [{**rank, "rank": 1, "time_ms": 1_000}])
    assert stale["consistent"] is None and stale["rank_stale"]
    (loss,) = audit_own_adl([{**fill, "closed_pnl": -3}], [{**rank, "rank": 4, "time_ms": 990_000}])
    assert loss["consistent"] is False
