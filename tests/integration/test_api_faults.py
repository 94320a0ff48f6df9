"""Every HTTP source under injected faults, on loopback: every row exactly once, Retry-After honoured.

The venue stand-ins (``pipelines.sandbox.venue_server``: the real REST paths and page limits) answer a seeded
share of requests with 429 / 418 / 503 (each with Retry-After), 500, a body cut mid-JSON, a connection
closed without an answer, a 2-4 s stall or the previous page again; only a request's first two tries
fault (``tries=2``), so a client that retries always gets through. Each pull must then equal the same
pull without faults table by table, and the measured wait between a faulted answer and the retry must
be at least the Retry-After the answer carried. A client that may not retry gets a one-line error,
nothing is written, the lake keeps the earlier complete pull, and a rerun completes.
"""

from __future__ import annotations

import pytest

from pipelines.ingest import cex
from pipelines.ingest.hyperliquid.api import pull as hl_pull
from pipelines.ingest.safety import IncompletePull
from pipelines.lake import Lake
from pipelines.sandbox.venue_server import Scenario, serve
from pipelines.sandbox.venue_server.cex import Account, cex_routes, generate
from pipelines.venues.hyperliquid import HyperliquidInfoClient
from tests.cex_pulls import END, KEYS, START, table_rows
from tests.fixtures_venue import USER_LIQ, USER_MAIN, build_scenario

FAULTS = "429=0.08,418=0.08,5xx=0.12,truncate=0.08,reset=0.06,stall=0.02,repeat=0.12,tries=2,retry_after=1"


def check_waits(gaps: list[tuple[str, float | None, float]]) -> int:
    """Every faulted answer that carried Retry-After was retried no sooner; returns how many were measured."""
    measured = [(kind, ra, gap) for kind, ra, gap in gaps if ra]
    for kind, ra, gap in measured:
        assert gap >= ra - 0.05, f"{kind} with Retry-After {ra} s retried after {gap:.2f} s"
    return len(measured)


@pytest.fixture(scope="module")
def cex_server(tmp_path_factory):
    data = generate(START, 6, accounts=[Account(v, c.key, c.secret, c.passphrase) for v, c in KEYS.items()])
    # more open BitMEX liquidation orders than one page holds (500), as on a crash day
    base = data.bitmex_liquidations
    data.bitmex_liquidations = base + [
        {**base[i % len(base)], "orderID": f"00000000-0000-4000-8000-{i:012d}"} for i in range(600)
    ]
    # and more own Bybit executions than one page (100) of each type
    ex = data.bybit_executions["main"]
    data.bybit_executions["main"] = ex + [{**e, "execId": f"{e['execId'][:-6]}{k:06d}"} for k, e in enumerate(ex * 2)]
    with serve(
        Scenario(root=tmp_path_factory.mktemp("hl")), routes=cex_routes(data), rate_limit_per_minute=None
    ) as srv:
        yield srv


def cex_pull(server, venue: str, lake: Lake, **kw) -> list:
    private = venue in cex.PRIVATE_VENUES
    client = cex.make_client(venue, server.base_url, credentials=KEYS.get(venue), rate_limit=False, **kw)
    try:
        return cex.pull(
            lake,
            venue,
            client,
            START,
            END,
            private=private,
            account="main" if private else None,
            addresses=["dydx1" + "q" * 38] if venue == "dydx" else (),
        )
    finally:
        client.close()


@pytest.mark.parametrize("venue", cex.CEX_VENUES)
def test_cex_pull_under_faults_is_exact(cex_server, tmp_path, venue):
    clean = Lake(tmp_path / "clean")
    cex_server.set_faults(None)
    cex_pull(cex_server, venue, clean)
    expected = table_rows(clean.root)
    assert sum(n for n, _ in expected.values()) > 0
    cex_server.set_faults(f"{FAULTS},seed={cex.CEX_VENUES.index(venue) + 3},paths=/*")
    try:
        faulty = Lake(tmp_path / "faulty")
        reports = cex_pull(cex_server, venue, faulty)
        counts, gaps = dict(cex_server.fault_counts), list(cex_server.state.faults.retry_gaps)
    finally:
        cex_server.set_faults(None)
    assert sum(v for k, v in counts.items() if k != "latency") > 0, counts
    assert table_rows(faulty.root) == expected, counts  # every row exactly once
    assert all(r.records_read == r.records_written + r.quarantined for r in reports)
    measured = check_waits(gaps)
    waits = sorted(round(g, 2) for _, ra, g in gaps if ra)
    print(f"{venue}: faults {counts}, {measured} Retry-After waits measured (s): {waits}")


#: the paged endpoints: the previous page served again must be asked for again, never skipped past
PAGED = {
    "binance": "/fapi/v1/forceOrders",
    "okx": "/api/v5/public/liquidation-orders",
    "bitmex": "/api/v1/liquidation",
    "deribit": "/api/v2/public/get_last_trades_by_instrument_and_time",
    "dydx": "/v4/trades/perpetualMarket/*",
    "bybit": "/v5/execution/list",
}


@pytest.mark.parametrize("venue", sorted(PAGED))
def test_a_repeated_page_is_read_again(cex_server, tmp_path, venue):
    clean = Lake(tmp_path / "clean")
    cex_server.set_faults(None)
    cex_pull(cex_server, venue, clean)
    cex_server.set_faults(f"repeat=0.7,tries=2,seed=1,paths={PAGED[venue]}")
    try:
        faulty = Lake(tmp_path / "faulty")
        cex_pull(cex_server, venue, faulty)
        counts = dict(cex_server.fault_counts)
    finally:
        cex_server.set_faults(None)
    assert counts.get("repeat", 0) >= 1, counts
    assert table_rows(faulty.root) == table_rows(clean.root)


def test_cex_pull_that_cannot_complete_writes_nothing(cex_server, tmp_path):
    lake = Lake(tmp_path / "lake")
    cex_pull(cex_server, "okx", lake)
    before = table_rows(lake.root)
    raw_before = sorted(p.name for p in lake.root.rglob("*.jsonl.gz"))
    cex_server.set_faults("418=1,retry_after=0,paths=/api/v5/public/liquidation-orders")
    try:
        with pytest.raises(IncompletePull) as info:
            cex_pull(cex_server, "okx", lake, max_retries=1)
    finally:
        cex_server.set_faults(None)
    assert "okx pull incomplete: liquidation-orders BTC-USDT failed after 2 tries (HTTP 418" in str(info.value)
    assert "rerun the same liqf ingest okx command" in info.value.hint and "\n" not in str(info.value)
    assert table_rows(lake.root) == before
    assert sorted(p.name for p in lake.root.rglob("*.jsonl.gz")) == raw_before and not list(lake.root.rglob(".tmp-*"))
    cex_pull(cex_server, "okx", lake)  # the rerun completes
    assert table_rows(lake.root) == before


@pytest.fixture(scope="module")
def hl_scenario(tmp_path_factory):
    return build_scenario(tmp_path_factory.mktemp("hlapi") / "scenario", main_fills=5000, big_fills=10)


def hl(server, lake: Lake, **kw):
    client = HyperliquidInfoClient(server.base_url, rate_limit=False, **kw)
    try:
        return hl_pull(lake, client, [USER_MAIN, USER_LIQ], 0, server.scenario_now_ms)
    finally:
        client.close()


def test_hyperliquid_api_pull_under_faults_is_exact(hl_scenario, tmp_path):
    with serve(hl_scenario.root, rate_limit_per_minute=None) as server:
        server.scenario_now_ms = hl_scenario.now_ms
        clean = Lake(tmp_path / "clean")
        reports = hl(server, clean)
        assert reports[0].records_written == len(hl_scenario.fills[USER_MAIN]) + len(hl_scenario.fills[USER_LIQ])
        assert not any("truncated" in n for r in reports for n in r.notes)
        expected = table_rows(clean.root)
        for name, spec in (("mixed", f"{FAULTS},seed=5"), ("repeated pages", "repeat=0.6,tries=2,seed=2")):
            server.set_faults(spec)
            faulty = Lake(tmp_path / name.replace(" ", "_"))
            reports = hl(server, faulty)
            counts, gaps = dict(server.fault_counts), list(server.state.faults.retry_gaps)
            server.set_faults(None)
            assert sum(counts.values()) >= 3 and (name == "mixed" or counts["repeat"] >= 2), counts
            assert table_rows(faulty.root) == expected, (name, counts)  # 5,000 + fills exactly once
            # no false "history truncated" note from a stale page read as a same-millisecond overflow
            assert not any("truncated" in n for r in reports for n in r.notes), [r.notes for r in reports]
            if name == "mixed":
                assert check_waits(gaps) > 0
            print(f"hyperliquid --api ({name}): faults {counts}")


def test_hyperliquid_api_pull_that_cannot_complete_keeps_the_complete_one(hl_scenario, tmp_path):
    with serve(hl_scenario.root, rate_limit_per_minute=None) as server:
        server.scenario_now_ms = hl_scenario.now_ms
        lake = Lake(tmp_path / "lake")
        hl(server, lake)
        before = table_rows(lake.root)
        server.set_faults("418=0.3,retry_after=0,seed=2")
        with pytest.raises(IncompletePull, match="HTTP 418"):
            hl(server, lake, max_retries=0)
        server.set_faults(None)
        assert table_rows(lake.root) == before  # the rerun that hit a 418 replaced nothing
        hl(server, lake)
        assert table_rows(lake.root) == before
