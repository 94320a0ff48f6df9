"""On-chain ingestion against a real EVM in-process (py-evm through eth-tester): GMX-shaped events from
a test EventEmitter with GMX's exact signatures and data layout, a standard ERC-20, adaptive range
splitting, transient errors, checkpoints and reorgs."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

pytest.importorskip("eth_tester", reason="eth-tester[py-evm] is not installed")

from web3 import EthereumTesterProvider, Web3  # noqa: E402

from pipelines import catalog  # noqa: E402
from pipelines.ingest.gmx import gmx_stream  # noqa: E402
from pipelines.ingest.onchain import (  # noqa: E402
    ChainRegistry,
    GmxMarket,
    Labelled,
    Token,
    flow_streams,
    load_checkpoint,
    read_balances,
    sync_stream,
)
from pipelines.lake import Lake  # noqa: E402
from pipelines.venues.evm import EvmRpc, RpcError, Web3Transport  # noqa: E402
from tests.onchain_helpers import (  # noqa: E402
    adl_state_updated,
    deploy,
    order_executed,
    position_event,
    send,
    send_together,
)


@pytest.fixture()
def chain():
    w3 = Web3(EthereumTesterProvider())
    emitter = deploy(w3, "MockEventEmitter")
    token = deploy(w3, "TestToken", "USD Coin", "USDC", 6)
    acc = w3.eth.accounts
    registry = ChainRegistry(
        name="testchain",
        chain_id=w3.eth.chain_id,
        rpc_env="LIQF_RPC_TESTCHAIN",
        tokens=(Token("USDC", token.address.lower(), 6),),
        addresses=(Labelled("Test Bridge", acc[5].lower(), "bridge", "hyperliquid", ("USDC",)),),
        gmx_event_emitter=emitter.address.lower(),
        gmx_markets=(GmxMarket(acc[9].lower(), "ETH/USD [WETH-USDC]", 18),),
    )
    return w3, emitter, token, registry


def _rows(lake: Lake, table: str) -> list[dict]:
    d = lake.table_dir(table)
    return [
        r for p in sorted(d.rglob("*.parquet")) if not p.name.startswith(".tmp") for r in pq.read_table(p).to_pylist()
    ]


def _open_long(w3, em, account, market, size=2.0, price=2000.0):
    return send(
        w3,
        position_event(
            em,
            kind="increase",
            account=account,
            market=market,
            collateral=w3.eth.accounts[3],
            is_long=True,
            order_type=2,
            size_usd=size * price,
            size_tokens=size,
            delta_usd=size * price,
            delta_tokens=size,
            price=price,
        ),
    )


def test_gmx_liquidation_adl_and_adl_state(chain, tmp_path):
    w3, em, _token, registry = chain
    acc = w3.eth.accounts
    market = acc[9]
    _open_long(w3, em, acc[1], market)
    _open_long(w3, em, acc[2], market, size=1.0)
    # liquidation of acc1's long: orderType Liquidation (7)
    send(
        w3,
        position_event(
            em,
            kind="decrease",
            account=acc[1],
            market=market,
            collateral=acc[3],
            is_long=True,
            order_type=7,
            size_usd=0,
            size_tokens=0,
            delta_usd=4000,
            delta_tokens=2,
            price=1500,
            pnl_usd=-1000,
            order_key=b"\x07" * 32,
        ),
    )
    send(w3, adl_state_updated(em, market=market, is_long=False, factor=0.6, max_factor=0.45, enable=True))
    # ADL of acc2: a MarketDecrease (4) whose OrderExecuted says secondaryOrderType Adl (1)
    send_together(
        w3,
        em,
        position_event(
            em,
            kind="decrease",
            account=acc[2],
            market=market,
            collateral=acc[3],
            is_long=True,
            order_type=4,
            size_usd=1000,
            size_tokens=0.5,
            delta_usd=1000,
            delta_tokens=0.5,
            price=2600,
            pnl_usd=300,
            order_key=b"\xad" * 32,
        ),
        order_executed(em, account=acc[2], order_key=b"\xad" * 32, secondary=1),
    )
    # an ordinary close: OrderExecuted with secondaryOrderType None
    send_together(
        w3,
        em,
        position_event(
            em,
            kind="decrease",
            account=acc[2],
            market=market,
            collateral=acc[3],
            is_long=True,
            order_type=4,
            size_usd=0,
            size_tokens=0,
            delta_usd=1000,
            delta_tokens=0.5,
            price=2600,
            pnl_usd=300,
            order_key=b"\x0c" * 32,
        ),
        order_executed(em, account=acc[2], order_key=b"\x0c" * 32, secondary=0),
    )

    lake = Lake(tmp_path / "lake")
    rpc = EvmRpc(Web3Transport(w3))
    res = sync_stream(lake, rpc, gmx_stream(registry, from_block=0), confirmations=0)
    assert res.logs == 8 and res.reorg_from is None
    fills = sorted(_rows(lake, "fills"), key=lambda r: r["tid"])
    assert [f["dir"] for f in fills] == [
        "Open Long",
        "Open Long",
        "Liquidated Isolated Long",
        "Auto-Deleveraging",
        "Close Long",
    ]
    liq, adl = fills[2], fills[3]
    assert liq["is_liquidation"] and liq["is_liquidated_leg"] and liq["liquidated_user"] == acc[1].lower()
    assert (
        str(liq["px"]) == "1500.0000000000"
        and str(liq["sz"]) == "2.0000000000"
        and str(liq["closed_pnl"]) == "-1000.0000000000"
    )
    assert str(liq["start_position"]) == "2.0000000000" and liq["side"] == "A" and liq["venue"] == "gmx_v2"
    assert adl["is_adl"] and not adl["is_liquidation"] and str(adl["start_position"]) == "1.0000000000"
    states = _rows(lake, "gmx_adl_states")
    assert len(states) == 1 and states[0]["should_enable_adl"] and abs(states[0]["pnl_to_pool_factor"] - 0.6) < 1e-12
    runs = _rows(lake, "ingest_runs")
    assert sum(r["records_read"] for r in runs) == 8 and sum(r["rows_quarantined"] for r in runs) == 0
    # the catalog sees them: liquidations and adl_fills views
    result = catalog.refresh(lake, tmp_path / "f.duckdb")
    assert result.views["liquidations"] == 1 and result.views["adl_fills"] == 1
    # raw responses are kept
    assert list((lake.root / "raw" / "venue=gmx_v2").rglob("*.jsonl.gz"))


def test_unknown_market_and_malformed_logs_are_quarantined(chain, tmp_path):
    w3, em, _token, registry = chain
    acc = w3.eth.accounts
    _open_long(w3, em, acc[1], acc[8])  # market not in the registry
    from forensics.formats import gmx as fmt
    from tests.onchain_helpers import addr_topic

    bad = fmt.encode_event_log_data(address={"account": acc[1]})  # PositionDecrease without its items
    send(w3, em.functions.emitEventLog1(fmt.POSITION_DECREASE, addr_topic(acc[1]), bad))
    lake = Lake(tmp_path / "lake")
    res = sync_stream(lake, EvmRpc(Web3Transport(w3)), gmx_stream(registry, from_block=0), confirmations=0)
    rep = res.reports[0]
    assert rep.records_read == 2 and rep.quarantined == 2 and rep.records_written == 0
    reasons = " ".join(r["reason"] for r in _rows(lake, "quarantine"))
    assert (
        "not among the testchain markets read from GMX's Reader nor in the registry" in reasons
        and "missing address item 'market'" in reasons
    )
    assert len(_rows(lake, "gmx_position_events")) == 1 and not _rows(lake, "fills")


class FaultyTransport:
    """Refuses eth_getLogs over more than ``max_blocks`` blocks; every ``fail_every``-th call errors."""

    def __init__(self, inner, max_blocks=3, fail_every=4):
        self.inner, self.max_blocks, self.fail_every, self.calls = inner, max_blocks, fail_every, 0
        self.label = "faulty"

    def request(self, method, params):
        self.calls += 1
        if self.calls % self.fail_every == 0:
            raise RpcError("internal error", -32000, transient=True)
        if method == "eth_getLogs":
            lo, hi = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            if hi - lo + 1 > self.max_blocks:
                from pipelines.venues.evm import RangeTooLarge

                raise RangeTooLarge("query returned more than 10000 results", -32005)
        return self.inner.request(method, params)

    def close(self):
        pass


def test_adaptive_split_transient_errors_and_idempotent_reruns(chain, tmp_path):
    w3, em, _token, registry = chain
    acc = w3.eth.accounts
    for i in range(12):
        _open_long(w3, em, acc[1 + i % 4], acc[9], size=1.0 + i)
    lake = Lake(tmp_path / "lake")
    rpc = EvmRpc(FaultyTransport(Web3Transport(w3)), max_range=1000, sleep=lambda s: None)
    stream = gmx_stream(registry, from_block=0, segment_blocks=5)
    res = sync_stream(lake, rpc, stream, confirmations=0)
    assert res.logs == 12 and rpc.stats.refusals > 0 and rpc.stats.retries > 0
    assert len(_rows(lake, "fills")) == 12
    # nothing new: up to date; forced re-ingest of an overlapping range: no duplicates
    again = sync_stream(lake, EvmRpc(Web3Transport(w3)), stream, confirmations=0)
    assert again.up_to_date
    sync_stream(lake, EvmRpc(Web3Transport(w3)), stream, confirmations=0, from_block=4)
    fills = _rows(lake, "fills")
    assert len(fills) == 12 and len({f["fill_id"] for f in fills}) == 12
    # incremental: new blocks only
    _open_long(w3, em, acc[1], acc[9])
    inc = sync_stream(lake, EvmRpc(Web3Transport(w3)), stream, confirmations=0)
    assert inc.logs == 1 and len(_rows(lake, "fills")) == 13
    cp = load_checkpoint(lake, stream)
    assert cp.last_block == w3.eth.block_number and cp.recent_hashes[cp.last_block] == "0x" + w3.eth.get_block(
        cp.last_block
    ).hash.hex().removeprefix("0x")


def test_reorg_replaces_changed_blocks(chain, tmp_path):
    w3, em, _token, registry = chain
    acc = w3.eth.accounts
    tester = w3.provider.ethereum_tester
    _open_long(w3, em, acc[1], acc[9], size=1.0)
    snap = tester.take_snapshot()
    for i in range(3):  # the branch that will be orphaned
        _open_long(w3, em, acc[2], acc[9], size=10.0 + i)
    lake = Lake(tmp_path / "lake")
    stream = gmx_stream(registry, from_block=0, segment_blocks=4)
    sync_stream(lake, EvmRpc(Web3Transport(w3)), stream, confirmations=0)
    assert len(_rows(lake, "fills")) == 4
    tester.revert_to_snapshot(snap)
    for i in range(4):  # the canonical branch: different txs at the same heights, one block longer
        _open_long(w3, em, acc[3], acc[9], size=20.0 + i)
    res = sync_stream(lake, EvmRpc(Web3Transport(w3)), stream, confirmations=0)
    assert res.reorg_from is not None
    fills = _rows(lake, "fills")
    users = sorted(f["user"] for f in fills)
    assert users == sorted([acc[1].lower()] + [acc[3].lower()] * 4)
    hashes = {f["block_number"]: f["hash"] for f in fills}
    assert len(hashes) == 5
    logs = _rows(lake, "onchain_logs")
    assert len(logs) == 5 and all(
        r["block_hash"] == "0x" + w3.eth.get_block(r["block_number"]).hash.hex().removeprefix("0x") for r in logs
    )


def test_flows_balances_and_reserve_check(chain, tmp_path):
    w3, _em, token, registry = chain
    acc = w3.eth.accounts
    bridge = acc[5]
    send(w3, token.functions.mint(acc[1], 1_000 * 10**6))
    send(w3, token.functions.mint(acc[2], 500 * 10**6))
    send(w3, token.functions.transfer(bridge, 700 * 10**6), sender=acc[1])
    send(w3, token.functions.transfer(bridge, 250 * 10**6), sender=acc[2])
    send(w3, token.functions.transfer(acc[1], 100 * 10**6), sender=bridge)
    send(w3, token.functions.transfer(acc[2], 1 * 10**6), sender=acc[1])  # unrelated
    lake = Lake(tmp_path / "lake")
    rpc = EvmRpc(Web3Transport(w3))
    (stream,) = flow_streams(registry)
    res = sync_stream(lake, rpc, stream, confirmations=0)
    assert res.logs == 3
    flows = _rows(lake, "onchain_flows")
    assert sorted((f["direction"], str(f["amount"])) for f in flows) == [
        ("in", "250.0000000000"),
        ("in", "700.0000000000"),
        ("out", "100.0000000000"),
    ]
    rep = read_balances(lake, rpc, registry, confirmations=0)
    assert rep.records_written == 1
    (bal,) = _rows(lake, "onchain_balances")
    assert str(bal["balance"]) == "850.0000000000" and bal["label"] == "Test Bridge"
    # reserve check: bridge USDC vs the sum of account values in the nearest snapshot
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa

    from forensics.tables import ACCOUNT_SNAPSHOTS

    t = bal["time"]
    rows = [
        {
            "venue": "hyperliquid",
            "date": t.date(),
            "user": f"0x{i:040x}",
            "time": t,
            "time_ms": bal["time_ms"] + 1000,
            "account_value": Decimal(v),
            "total_ntl_pos": None,
            "total_raw_usd": None,
            "total_margin_used": None,
            "cross_account_value": None,
            "cross_maintenance_margin_used": None,
            "withdrawable": None,
            "positions": 0,
            "source": "snapshot",
            "source_key": "ab" * 12,
        }
        for i, v in enumerate(["500", "300"])
    ]
    lake.replace_source(
        ACCOUNT_SNAPSHOTS, "hyperliquid", "ab" * 12, pa.Table.from_pylist(rows, schema=ACCOUNT_SNAPSHOTS.arrow_schema())
    )
    catalog.refresh(lake, tmp_path / "f.duckdb")
    con = catalog.connect_read_only(tmp_path / "f.duckdb")
    (row,) = con.sql(
        "select bridge_usdc, accounts_usd, accounts, surplus_usd, snapshot_lag_ms from hyperliquid_reserve_check"
    ).fetchall()
    assert (float(row[0]), float(row[1]), row[2], float(row[3]), row[4]) == (850.0, 800.0, 2, 50.0, 1000)
    assert dt is not None
