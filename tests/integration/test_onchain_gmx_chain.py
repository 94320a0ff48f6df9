"""GMX v2 against a real local EVM (anvil, Arbitrum's chain id) through the CLI, with stand-ins at GMX's
real Arbitrum addresses: the EventEmitter (test double with GMX's event signatures and EventLogData), a
DataStore/Reader pair answering ``Reader.getMarkets`` with the real ETH/USD and BTC/USD markets, and
ERC-20s at the real WETH, USDC and WBTC addresses (BTC/USD's index is GMX's synthetic BTC, no contract).
Events follow gmx-synthetics' emitting libraries for each layout GMX shipped (``tests/onchain_helpers``);
a provider proxy refuses ``eth_getLogs`` ranges the way hosted RPCs do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner
from web3 import Web3

from pipelines.cli import app
from pipelines.venues.gmx import synthetic_token_address
from tests.evm_node import ANVIL, ANVIL_MISSING, RpcProxy, anvil, rpc
from tests.onchain_helpers import (
    adl_state_updated,
    deploy,
    deploy_at,
    order_executed,
    position_event,
    send,
    send_together,
)

pytestmark = pytest.mark.skipif(not ANVIL.exists(), reason=ANVIL_MISSING)

EVENT_EMITTER = "0xC8ee91A54287DB53897056e12D9819156D3822Fb"
DATA_STORE = "0xFD70de6b91282D8017aA4E741e9Ae325CAb992d8"
READER = "0x470fbC46bcC0f16532691Df360A07d8Bf5ee0789"
WETH, USDC, WBTC = (
    "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1",
    "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",
    "0x2f2a2543B76A4166549F7aaB2e75Bef0aefC5B0f",
)
BTC = synthetic_token_address(42161, "BTC")
ETH_USD, BTC_USD = "0x70d95587d40A2caf56bd97485aB3Eec10Bee6336", "0x47c031236e19d024b42f8AE6780E44A573170703"
ADL_HANDLER_2023 = "0x1196D058Ad6d7454f2FBaB1F683Df4115A06Ac63"  # AdlHandler deployed at block 107,745,224
ADL_HANDLER_V22 = "0x12cCe9b43C760c00aEc2bB8E5Fc66d9e42C1114a"  # v2.2 AdlHandler, block 355,141,257
INC, DEC, LIQ = 2, 4, 7  # MarketIncrease, MarketDecrease, Liquidation
V22 = 400_000_000  # an Arbitrum height after v2.2 (PositionEventUtils with pendingPriceImpactUsd: block 355,140,858)


class Gmx:
    """The stand-ins on one anvil node, and the events a test emits through them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.w3 = w3 = Web3(Web3.HTTPProvider(url))
        self.acc = w3.eth.accounts
        self.em = deploy_at(w3, "MockEventEmitter", EVENT_EMITTER)
        deploy_at(w3, "ReaderStandIn", READER)
        store = deploy_at(w3, "DataStoreStandIn", DATA_STORE)
        for address, symbol, decimals in ((WETH, "WETH", 18), (USDC, "USDC", 6), (WBTC, "WBTC", 8)):
            deploy_at(w3, "TokenStandIn", address, symbol, decimals)
        for market in ((ETH_USD, WETH, WETH, USDC), (BTC_USD, BTC, WBTC, USDC)):
            send(w3, store.functions.addMarket(tuple(Web3.to_checksum_address(t) for t in market)))
        self.nonce = 0

    def key(self) -> bytes:
        self.nonce += 1
        return self.nonce.to_bytes(32, "big")

    def position(
        self,
        kind,
        account,
        market,
        *,
        is_long,
        size,
        size_usd,
        delta,
        delta_usd,
        price,
        pnl=0.0,
        order_type=None,
        secondary=0,
        version="v2.2",
        order_layout=None,
        sender=None,
        impact=0.0,
        key=None,
    ):
        """One execution: the position event and its OrderExecuted in one transaction, as GMX emits them."""
        key = key or self.key()
        decimals = 18 if market == ETH_USD else 8
        order_type = order_type if order_type is not None else (INC if kind == "increase" else DEC)
        ev = position_event(
            self.em,
            kind=kind,
            account=account,
            market=market,
            collateral=USDC,
            is_long=is_long,
            order_type=order_type,
            size_usd=size_usd,
            size_tokens=size,
            delta_usd=delta_usd,
            delta_tokens=delta,
            price=price,
            pnl_usd=pnl,
            order_key=key,
            index_decimals=decimals,
            version=version,
            price_impact_usd=impact,
        )
        oe = order_executed(
            self.em, account=account, order_key=key, secondary=secondary, version=version, order_layout=order_layout
        )
        return send_together(self.w3, self.em, ev, oe, sender=sender)

    def impersonate(self, address: str) -> str:
        rpc(self.url, "anvil_impersonateAccount", address)
        rpc(self.url, "anvil_setBalance", address, hex(10**20))
        return Web3.to_checksum_address(address)

    def mine_to(self, block: int) -> None:
        n = block - self.w3.eth.block_number
        if n > 0:
            rpc(self.url, "anvil_mine", hex(n))


def _cli(tmp_path: Path, *args: str):
    r = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "--db", str(tmp_path / "f.duckdb"), *args])
    return r


def _sql(tmp_path: Path, query: str) -> list[dict]:
    r = _cli(tmp_path, "sql", query, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _rows(tmp_path: Path, table: str) -> list[dict]:
    d = tmp_path / "lake"
    paths = [p for p in d.rglob(f"{table}/**/*.parquet") if not p.name.startswith(".tmp")]
    return [r for p in sorted(paths) for r in pq.read_table(p).to_pylist()]


SHIFTED_LAYOUTS = "".join(  # GMX's layout history moved to this chain's first 100 blocks
    f'[[gmx.layouts]]\nevent = "{event}"\nlayout = "{layout}"\nfrom_block = {block}\n'
    for event, layout, block in (
        ("OrderExecuted", "key", 1),
        ("OrderExecuted", "key_secondary", 30),
        ("OrderExecuted", "key_account_secondary", 60),
        ("PositionIncrease", "price_impact", 1),
        ("PositionIncrease", "pending_price_impact", 90),
    )
)


def test_every_layout_markets_from_the_reader_adl_fills_and_audit(tmp_path):
    """One chain through the 2023 layouts (OrderExecuted with only the key, then key + secondaryOrderType,
    both without account), 2024's (account) and v2.2's (pendingPriceImpactUsd), the layout boundaries moved to
    this chain's heights by the user's own registry file; the provider refuses ranges over 8 blocks."""
    with anvil() as url, RpcProxy(url, max_blocks=8, style="infura") as proxy:
        g = Gmx(url)
        a, b, c, d, e, f, x = g.acc[1:8]
        adl_handler = g.impersonate(ADL_HANDLER_2023)
        v23 = dict(version="2023", order_layout="key")
        # layout 'key' (blocks < 30): the ADL is known by its sender, the AdlHandler
        g.position(
            "increase", a, ETH_USD, is_long=True, size=2, size_usd=4000, delta=2, delta_usd=4000, price=2000, **v23
        )
        g.position(
            "increase", b, ETH_USD, is_long=True, size=1, size_usd=2500, delta=1, delta_usd=2500, price=2500, **v23
        )
        g.position(
            "increase", c, ETH_USD, is_long=True, size=1, size_usd=3500, delta=1, delta_usd=3500, price=3500, **v23
        )
        g.position(
            "increase", x, ETH_USD, is_long=False, size=1, size_usd=3000, delta=1, delta_usd=3000, price=3000, **v23
        )
        send(g.w3, adl_state_updated(g.em, market=ETH_USD, is_long=True, factor=0.5, max_factor=0.45, enable=True))
        g.position(
            "decrease",
            a,
            ETH_USD,
            is_long=True,
            size=1,
            size_usd=2000,
            delta=1,
            delta_usd=2000,
            price=3000,
            pnl=1000,
            sender=adl_handler,
            **v23,
        )
        g.position(
            "decrease",
            b,
            ETH_USD,
            is_long=True,
            size=0.5,
            size_usd=1250,
            delta=0.5,
            delta_usd=1250,
            price=3000,
            pnl=250,
            **v23,
        )
        # layout 'key_secondary' (30 <= block < 60): ADL said by secondaryOrderType, still no account
        g.mine_to(30)
        v23s = dict(version="2023")
        g.position(
            "increase",
            d,
            BTC_USD,
            is_long=False,
            size=0.5,
            size_usd=30000,
            delta=0.5,
            delta_usd=30000,
            price=60000,
            **v23s,
        )
        g.position(
            "increase",
            e,
            BTC_USD,
            is_long=False,
            size=0.2,
            size_usd=10000,
            delta=0.2,
            delta_usd=10000,
            price=50000,
            **v23s,
        )
        g.position(
            "decrease",
            d,
            BTC_USD,
            is_long=False,
            size=0.25,
            size_usd=15000,
            delta=0.25,
            delta_usd=15000,
            price=40000,
            pnl=5000,
            secondary=1,
            **v23s,
        )
        g.position(
            "decrease",
            x,
            ETH_USD,
            is_long=False,
            size=0,
            size_usd=0,
            delta=1,
            delta_usd=3000,
            price=3600,
            pnl=-600,
            order_type=LIQ,
            **v23s,
        )
        # 2024 layout (60 <= block < 90): EventLog2 with the account
        g.mine_to(60)
        g.position(
            "decrease",
            b,
            ETH_USD,
            is_long=True,
            size=0,
            size_usd=0,
            delta=0.5,
            delta_usd=1250,
            price=3200,
            pnl=350,
            secondary=1,
            version="2024",
        )
        g.position(
            "decrease",
            e,
            BTC_USD,
            is_long=False,
            size=0,
            size_usd=0,
            delta=0.2,
            delta_usd=10000,
            price=45000,
            pnl=1000,
            version="2024",
        )
        # v2.2 (block >= 90): increases carry pendingPriceImpactUsd
        g.mine_to(90)
        g.position(
            "increase",
            f,
            ETH_USD,
            is_long=True,
            size=1,
            size_usd=3000,
            delta=1,
            delta_usd=3000,
            price=3000,
            impact=-1.5,
        )
        g.position(
            "decrease",
            a,
            ETH_USD,
            is_long=True,
            size=0,
            size_usd=0,
            delta=1,
            delta_usd=2000,
            price=3300,
            pnl=1300,
            secondary=1,
        )
        mine = tmp_path / "mine.toml"
        mine.write_text(f"[chain]\nconfirmations = 0\n[gmx]\nfrom_block = 1\n{SHIFTED_LAYOUTS}")

        r = _cli(tmp_path, "ingest", "gmx", "--chain", "arbitrum", "--rpc", proxy.url, "--registry", str(mine))
        assert r.exit_code == 0, r.output
        assert "2 GMX market(s) read from the Reader at block" in r.output, r.output
        assert "read 29 = written 29 + quarantined 0" in r.output, r.output
        assert proxy.refused > 0 and f"{proxy.refused} eth_getLogs range(s) refused and split" in r.output
        assert (
            f"{sum(proxy.calls.values()):,} RPC calls" in r.output
        )  # what the client counted is what the provider saw

    markets = {m["market"]: m for m in _sql(tmp_path, "select * from gmx_markets")}
    assert (
        markets[ETH_USD.lower()]["name"] == "ETH/USD [WETH-USDC]" and markets[ETH_USD.lower()]["index_decimals"] == 18
    )
    assert markets[BTC_USD.lower()]["name"] == "BTC/USD [WBTC-USDC]" and markets[BTC_USD.lower()]["index_decimals"] == 8
    assert markets[BTC_USD.lower()]["index_token"] == BTC and markets[BTC_USD.lower()]["block_number"] > 0

    fills = _sql(
        tmp_path,
        "select user, coin, dir, side, px::double px, sz::double sz, start_position::double sp, "
        "closed_pnl::double pnl, is_adl from fills where venue = 'gmx_v2' order by tid",
    )
    acct = {g.acc[i].lower(): n for i, n in zip(range(1, 8), "abcdefx", strict=False)}
    got = [(acct[f["user"]], f["coin"][:3], f["dir"], f["side"], f["px"], f["sz"], f["sp"], f["pnl"]) for f in fills]
    assert got == [
        ("a", "ETH", "Open Long", "B", 2000, 2, 0, None),
        ("b", "ETH", "Open Long", "B", 2500, 1, 0, None),
        ("c", "ETH", "Open Long", "B", 3500, 1, 0, None),
        ("x", "ETH", "Open Short", "A", 3000, 1, 0, None),
        ("a", "ETH", "Auto-Deleveraging", "A", 3000, 1, 2, 1000),  # 2023, key only: the AdlHandler sent it
        ("b", "ETH", "Close Long", "A", 3000, 0.5, 1, 250),  # same layout, another sender: a close
        ("d", "BTC", "Open Short", "A", 60000, 0.5, 0, None),
        ("e", "BTC", "Open Short", "A", 50000, 0.2, 0, None),
        ("d", "BTC", "Auto-Deleveraging", "B", 40000, 0.25, -0.5, 5000),  # 2023, secondaryOrderType, no account
        ("x", "ETH", "Liquidated Isolated Short", "B", 3600, 1, -1, -600),
        ("b", "ETH", "Auto-Deleveraging", "A", 3200, 0.5, 0.5, 350),  # 2024
        ("e", "BTC", "Close Short", "B", 45000, 0.2, -0.2, 1000),
        ("f", "ETH", "Open Long", "B", 3000, 1, 0, None),
        ("a", "ETH", "Auto-Deleveraging", "A", 3300, 1, 1, 1300),  # v2.2
    ]
    events = _sql(
        tmp_path,
        "select account, event_name, order_layout, adl_evidence, price_impact_key, "
        "price_impact_usd::double impact, msg_sender from gmx_position_events order by block_number, log_index",
    )
    assert [e["order_layout"] for e in events] == ["key"] * 6 + ["key_secondary"] * 4 + ["key_account_secondary"] * 4
    assert [e["adl_evidence"] for e in events if e["adl_evidence"]] == [
        "AdlHandler",
        "secondaryOrderType",
        "secondaryOrderType",
        "secondaryOrderType",
    ]
    assert events[4]["msg_sender"] == ADL_HANDLER_2023.lower()
    assert (events[12]["price_impact_key"], events[12]["impact"]) == ("pendingPriceImpactUsd", -1.5)
    assert events[0]["price_impact_key"] == "priceImpactUsd"
    assert _sql(tmp_path, "select count(*) n from adl_fills where venue = 'gmx_v2'")[0]["n"] == 4
    assert _sql(tmp_path, "select count(*) n from gmx_adl_states")[0]["n"] == 1

    # the audit: per ADL action the eligible positions of that market and side just before it
    r = _cli(tmp_path, "analyze", "--venue", "gmx", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert set(result) == {
        "best_rule",
        "verdict",
        "margin",
        "rules",
        "flagged",
        "exemption",
        "steps",
        "actions_with_decision",
        "incomplete_steps",
        "integrity",
        "diagnostics",
        "conditional_logit",
        "rule_changes",
        "pools",
        "fills",
        "seconds",
        "carve_outs",
    }
    assert result["steps"] == 4 and result["pools"] == 3 + 2 + 3 + 3
    assert {r["name"] for r in result["rules"]} >= {"upnl", "pnl_pct"}
    pools = _sql(
        tmp_path,
        "select s.step_id, s.coin, s.adl_side, p.user, p.size, p.entry_px, p.mark_px, p.upnl_usd, "
        "p.selected from adl_pools p join adl_steps s using (venue, step_id) where venue = 'gmx_v2' "
        "order by s.step_id, p.user",
    )
    by_step: dict[int, dict] = {}
    for p in pools:
        by_step.setdefault(p["step_id"], {})[acct[p["user"]]] = (p["size"], p["entry_px"], p["upnl_usd"], p["selected"])
    assert by_step[0] == {"a": (2, 2000, 2000, True), "b": (1, 2500, 500, False), "c": (1, 3500, -500, False)}
    assert by_step[1] == {"d": (0.5, 60000, 10000, True), "e": (0.2, 50000, 2000, False)}
    assert by_step[2] == {"a": (1, 2000, 1200, False), "b": (0.5, 2500, 350, True), "c": (1, 3500, -300, False)}
    assert by_step[3] == {"a": (1, 2000, 1300, True), "c": (1, 3500, -200, False), "f": (1, 3000, 300, False)}
    upnl = next(r for r in result["rules"] if r["name"] == "upnl")
    assert upnl["residual_skips"] + upnl["exemptions_needed"] >= 1  # a passed over for b in the third action


def test_reorg_with_reused_order_keys(tmp_path):
    """An ADL on a branch that is reorged out; the new branch gives the same order key (a nonce's hash) to an
    ordinary close of another account. After the next run the tables hold the new branch only. The chain
    starts at a v2.2 height of Arbitrum, so the shipped registry's layouts apply."""
    with anvil(number=V22) as url:
        g = Gmx(url)
        a, b = g.acc[1:3]
        g.position("increase", a, ETH_USD, is_long=True, size=2, size_usd=4000, delta=2, delta_usd=4000, price=2000)
        g.position("increase", b, ETH_USD, is_long=True, size=1, size_usd=2500, delta=1, delta_usd=2500, price=2500)
        mine = tmp_path / "mine.toml"
        mine.write_text(f"[chain]\nconfirmations = 0\n[gmx]\nfrom_block = {V22}\n")
        args = ("ingest", "gmx", "--chain", "arbitrum", "--rpc", url, "--registry", str(mine))
        snap = rpc(url, "evm_snapshot")
        reused = b"\x77" * 32
        g.position(
            "decrease",
            a,
            ETH_USD,
            is_long=True,
            size=1,
            size_usd=2000,
            delta=1,
            delta_usd=2000,
            price=3000,
            pnl=1000,
            secondary=1,
            key=reused,
        )
        assert _cli(tmp_path, *args).exit_code == 0
        assert _sql(tmp_path, "select count(*) n from adl_fills")[0]["n"] == 1
        rpc(url, "evm_revert", snap)
        g.position(
            "decrease",
            b,
            ETH_USD,
            is_long=True,
            size=0.5,
            size_usd=1250,
            delta=0.5,
            delta_usd=1250,
            price=2900,
            pnl=200,
            secondary=0,
            key=reused,
        )
        g.mine_to(g.w3.eth.block_number + 3)
        r = _cli(tmp_path, *args)
        assert r.exit_code == 0, r.output
        assert "reorg detected" in r.output, r.output
        canonical = {
            n: "0x" + g.w3.eth.get_block(n).hash.hex().removeprefix("0x") for n in range(V22, g.w3.eth.block_number + 1)
        }
    fills = _sql(tmp_path, "select user, dir, is_adl from fills order by tid")
    assert [(f["user"], f["dir"], f["is_adl"]) for f in fills] == [
        (a.lower(), "Open Long", False),
        (b.lower(), "Open Long", False),
        (b.lower(), "Close Long", False),
    ]
    assert _sql(tmp_path, "select count(*) n from adl_fills")[0]["n"] == 0
    logs = _rows(tmp_path, "onchain_logs")
    assert logs and all(r["block_hash"] == canonical[r["block_number"]] for r in logs)
    assert sum(r["order_key"] == "0x" + reused.hex() for r in _rows(tmp_path, "gmx_position_events")) == 1


# Arbitrum heights inside each layout GMX shipped (first blocks: tests' docstring and the shipped registry)
ERAS = {
    "2023 key only": (107_745_300, dict(version="2023", order_layout="key"), "key", "priceImpactUsd"),
    "2023 key+secondaryOrderType": (110_403_100, dict(version="2023"), "key_secondary", "priceImpactUsd"),
    "2024 account": (132_478_600, dict(version="2024"), "key_account_secondary", "priceImpactUsd"),
    "v2.2": (355_141_300, dict(version="v2.2"), "key_account_secondary", "pendingPriceImpactUsd"),
}


@pytest.mark.parametrize("era", list(ERAS))
def test_shipped_registry_at_real_arbitrum_heights(tmp_path, era):
    """The shipped arbitrum registry as is, on a chain whose blocks are real Arbitrum heights of each layout.
    In the first era: `liqf ingest gmx --chain arbitrum --rpc URL` and no other option (from the
    EventEmitter's deployment block, 20 confirmations) lands priced fills for both markets, the ADL known by
    its AdlHandler sender; a newer layout than its block allows is quarantined with the reason."""
    genesis, kw, layout, impact_key = ERAS[era]
    with anvil(number=genesis) as url:
        g = Gmx(url)
        a, b, d = g.acc[1:4]
        g.position(
            "increase", a, ETH_USD, is_long=True, size=2, size_usd=4000, delta=2, delta_usd=4000, price=2000, **kw
        )
        g.position(
            "increase", b, ETH_USD, is_long=True, size=1, size_usd=2500, delta=1, delta_usd=2500, price=2500, **kw
        )
        g.position(
            "increase",
            d,
            BTC_USD,
            is_long=False,
            size=0.5,
            size_usd=30000,
            delta=0.5,
            delta_usd=30000,
            price=60000,
            **kw,
        )
        adl_sender = g.impersonate(ADL_HANDLER_2023 if layout == "key" else ADL_HANDLER_V22)
        g.position(
            "decrease",
            a,
            ETH_USD,
            is_long=True,
            size=1,
            size_usd=2000,
            delta=1,
            delta_usd=2000,
            price=3000,
            pnl=1000,
            secondary=1,
            sender=adl_sender,
            **kw,
        )
        if layout == "key":  # an OrderExecuted layout GMX shipped only at block 132,478,135
            send(g.w3, order_executed(g.em, account=b, order_key=g.key(), secondary=0, version="2024"))
        g.mine_to(genesis + 100)  # the checkpoint keeps the hashes of the last 64 confirmed blocks
        args = ["ingest", "gmx", "--chain", "arbitrum", "--rpc", url]
        if layout != "key":
            args += ["--from-block", str(genesis)]
        r = _cli(tmp_path, *args)
        assert r.exit_code == 0, r.output
        assert "2 GMX market(s) read from the Reader" in r.output, r.output
        if layout == "key":
            assert "fetching arbitrum/gmx_events: blocks 107,737,756.." in r.output, r.output
            assert "quarantined 1" in r.output and "first shipped at block 132478135" in r.output, r.output
        else:
            assert "quarantined 0" in r.output, r.output
    fills = _sql(
        tmp_path, "select coin, dir, px::double px, sz::double sz, closed_pnl::double pnl from fills order by tid"
    )
    assert [(f["coin"], f["dir"], f["px"], f["sz"], f["pnl"]) for f in fills] == [
        ("ETH/USD [WETH-USDC]", "Open Long", 2000, 2, None),
        ("ETH/USD [WETH-USDC]", "Open Long", 2500, 1, None),
        ("BTC/USD [WBTC-USDC]", "Open Short", 60000, 0.5, None),
        ("ETH/USD [WETH-USDC]", "Auto-Deleveraging", 3000, 1, 1000),
    ]
    events = _sql(
        tmp_path, "select order_layout, adl_evidence, price_impact_key from gmx_position_events order by block_number"
    )
    assert {e["order_layout"] for e in events} == {layout}
    assert events[-1]["adl_evidence"] == ("AdlHandler" if layout == "key" else "secondaryOrderType")
    assert {e["price_impact_key"] for e in events[:3]} == {impact_key}


ONE_DAY = 345_600  # Arbitrum blocks in a day at 0.25 s


def test_one_day_range_rpc_calls_estimated_before_and_counted_after(tmp_path):
    """A one-day range of Arbitrum blocks (the node's history below its genesis answers empty logs): the
    estimate printed before the run, and the calls the run printed and the provider counted after it."""
    genesis = 300_000_000
    with anvil(number=genesis) as url, RpcProxy(url) as proxy:
        g = Gmx(url)
        a = g.acc[1]
        for i in range(3):
            g.position(
                "increase",
                a,
                ETH_USD,
                is_long=True,
                size=1 + i,
                size_usd=2000 * (1 + i),
                delta=1,
                delta_usd=2000,
                price=2000,
                version="2024",
            )
        g.mine_to(genesis + 100)
        head = g.w3.eth.block_number
        to_block = head - 20
        args = [
            "ingest",
            "gmx",
            "--chain",
            "arbitrum",
            "--rpc",
            proxy.url,
            "--from-block",
            str(to_block - ONE_DAY + 1),
            "--to-block",
            str(to_block),
        ]
        est = _cli(tmp_path, *args, "--estimate")
        assert est.exit_code == 0, est.output
        assert f"({ONE_DAY:,} blocks;" in est.output and "173 eth_getLogs" in est.output, est.output
        estimated = int(est.output.split("about ")[1].split(" RPC calls")[0].replace(",", ""))
        before = sum(proxy.calls.values())
        proxy.calls.clear()
        r = _cli(tmp_path, *args)
        assert r.exit_code == 0, r.output
        so_far = int(re.search(r"\(([\d,]+) RPC calls so far\)", r.output).group(1).replace(",", ""))
        total = int(re.search(r"^([\d,]+) RPC calls \(", r.output, re.M).group(1).replace(",", ""))
    assert proxy.calls["eth_getLogs"] == 173 and "eth_getLogs 173" in r.output
    assert total == sum(proxy.calls.values()) and total == so_far + estimated, r.output
    assert before > 0 and estimated == 1 + 173 + 64


def test_markets_names_overrides_unknown_decimals_and_the_cache(tmp_path):
    """Two markets whose tokens have the same symbols get distinct names; a registry entry overrides a name;
    a synthetic index token the registry does not know leaves its market unpriced (its fills quarantined,
    saying what to add); when the Reader cannot be read the lake's cached markets are used, and said."""
    from pipelines.ingest.gmx import resolve_markets
    from pipelines.ingest.onchain import load_registry
    from pipelines.lake import Lake
    from pipelines.venues.evm import EvmRpc, HttpTransport

    usdc_e, eth2, new_market = "0x" + "e1" * 20, "0x" + "e2" * 20, "0x" + "e3" * 20
    newcoin = synthetic_token_address(42161, "NEWCOIN")
    with anvil(number=V22) as url:
        g = Gmx(url)
        deploy_at(g.w3, "TokenStandIn", usdc_e, "USDC", 6)  # bridged USDC.e answers "USDC" too
        store = g.w3.eth.contract(
            address=Web3.to_checksum_address(DATA_STORE), abi=deploy(g.w3, "DataStoreStandIn").abi
        )
        for market in ((eth2, WETH, WETH, usdc_e), (new_market, newcoin, WETH, USDC)):
            send(g.w3, store.functions.addMarket(tuple(Web3.to_checksum_address(t) for t in market)))
        g.position(
            "increase",
            g.acc[1],
            Web3.to_checksum_address(new_market),
            is_long=True,
            size=1,
            size_usd=10,
            delta=1,
            delta_usd=10,
            price=10,
        )
        g.mine_to(V22 + 100)
        mine = tmp_path / "mine.toml"
        mine.write_text(
            f'[chain]\nconfirmations = 0\n[gmx]\nfrom_block = {V22}\n[[gmx.markets]]\naddress = "{BTC_USD}"\n'
            'name = "BTC-USD (mine)"\nindex_decimals = 8\n'
        )
        reg = load_registry("arbitrum", user_file=mine)
        lake = Lake(tmp_path / "lake")
        rpc_client = EvmRpc(HttpTransport(url))
        res = resolve_markets(lake, rpc_client, reg, block=V22 + 90)
        names = {m.address: (m.name, m.source) for m in res.markets}
        assert names[ETH_USD.lower()] == (f"ETH/USD [WETH-USDC] {ETH_USD.lower()[:8]}", "chain")
        assert names[eth2] == (f"ETH/USD [WETH-USDC] {eth2[:8]}", "chain")
        assert names[BTC_USD.lower()] == ("BTC-USD (mine)", "chain+registry")
        assert new_market not in names and "synthetic_decimals" in res.unpriced[new_market]
        # WETH, USDC, WBTC, USDC.e and NEWCOIN (no code); BTC is synthetic with decimals in the registry
        assert res.tokens_read == 5 and res.source == "chain"
        again = resolve_markets(lake, rpc_client, reg, block=V22 + 95)
        assert again.tokens_read == 1  # from the cache, but NEWCOIN, which told nothing, is asked again
        r = _cli(tmp_path, "ingest", "gmx", "--chain", "arbitrum", "--rpc", url, "--registry", str(mine))
        assert r.exit_code == 0 and "quarantined 1" in r.output, r.output
        reason = _sql(tmp_path, "select reason from quarantine")[0]["reason"]
        assert f"market {new_market}: its index token {newcoin} answers no decimals()" in reason
        # the user adds the synthetic token's decimals; the logs already in the lake are decoded again
        mine.write_text(mine.read_text().replace("[gmx]\n", "[gmx]\nsynthetic_decimals = { NEWCOIN = 8 }\n"))
        logs_before = len(_rows(tmp_path, "onchain_logs"))
        r = _cli(tmp_path, "ingest", "gmx", "--chain", "arbitrum", "--rpc", url, "--registry", str(mine), "--redecode")
        assert r.exit_code == 0 and "re-decoded 1 segment file(s)" in r.output and "quarantined 0" in r.output, r.output
        assert "eth_getLogs" not in re.search(r"^[\d,]+ RPC calls.*$", r.output, re.M).group(0), r.output
        assert _sql(tmp_path, "select coin, px::double px from fills") == [
            {"coin": "NEWCOIN/USD [WETH-USDC]", "px": 10.0}
        ]
        assert _sql(tmp_path, "select count(*) n from quarantine")[0]["n"] == 0
        assert len(_rows(tmp_path, "onchain_logs")) == logs_before
        rpc(url, "anvil_setCode", READER, "0x")  # the Reader is gone (from the next block on)
        rpc(url, "anvil_mine", "0x1")
        cached = resolve_markets(lake, rpc_client, reg, block=g.w3.eth.block_number)
        assert cached.source == "cache" and "could not read markets from the Reader" in cached.notes[0]
        # what the last read cached: NEWCOIN priced since the registry says its decimals
        assert {m.address for m in cached.markets} == {m.address for m in res.markets} | {new_market}
