"""`liqf ingest reserves` on a real local EVM (anvil): where the flow streams start (the bridge contract's
creation, the token's for a plain account) instead of block 0, the calls said before and counted after,
and a balance read at a block that a reorg removes."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner
from web3 import Web3

from pipelines.cli import app
from tests.evm_node import ANVIL, ANVIL_MISSING, RpcProxy, anvil, rpc
from tests.onchain_helpers import deploy, send

pytestmark = pytest.mark.skipif(not ANVIL.exists(), reason=ANVIL_MISSING)


def _cli(tmp_path, *args):
    return CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "--db", str(tmp_path / "f.duckdb"), *args])


def _sql(tmp_path, query):
    r = _cli(tmp_path, "sql", query, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_reserves_start_at_first_activity_say_their_calls_and_drop_reorged_balances(tmp_path):
    with anvil() as url, RpcProxy(url) as proxy:
        w3 = Web3(Web3.HTTPProvider(url))
        acc = w3.eth.accounts
        token = deploy(w3, "TestToken", "USD Coin", "USDC", 6)
        token_block = w3.eth.block_number
        rpc(url, "anvil_mine", hex(300))
        bridge = deploy(w3, "MockEventEmitter")  # any contract: the bridge's code is what the search finds
        bridge_block = w3.eth.block_number
        rpc(url, "anvil_impersonateAccount", bridge.address)
        rpc(url, "anvil_setBalance", bridge.address, hex(10**20))
        send(w3, token.functions.mint(acc[1], 1_000 * 10**6))
        send(w3, token.functions.transfer(bridge.address, 600 * 10**6), sender=acc[1])
        send(w3, token.functions.transfer(acc[2], 100 * 10**6), sender=bridge.address)
        send(w3, token.functions.transfer(acc[7], 50 * 10**6), sender=acc[1])  # the treasury, a plain account
        rpc(url, "anvil_mine", hex(70))
        mine = tmp_path / "mine.toml"
        mine.write_text(f"""extends = false
[chain]
name = "arbitrum"
chain_id = 42161
confirmations = 0
max_range = 50
[[tokens]]
symbol = "USDC"
address = "{token.address}"
decimals = 6
[[addresses]]
label = "Bridge"
address = "{bridge.address}"
role = "bridge"
venue = "hyperliquid"
tokens = ["USDC"]
from_block = 0
[[addresses]]
label = "Treasury"
address = "{acc[7]}"
role = "treasury"
venue = "evm"
tokens = ["USDC"]
""")
        args = ("ingest", "reserves", "--chain", "arbitrum", "--rpc", proxy.url, "--registry", str(mine))
        wrong = tmp_path / "wrong.toml"
        wrong.write_text(mine.read_text().replace("chain_id = 42161", "chain_id = 1"))
        bad = _cli(tmp_path, "ingest", "reserves", "--chain", "arbitrum", "--rpc", proxy.url, "--registry", str(wrong))
        assert bad.exit_code == 2 and "is chain id 42161, but arbitrum is 1" in bad.output, bad.output
        est = _cli(tmp_path, *args, "--estimate")
        assert est.exit_code == 0, est.output
        head = w3.eth.block_number
        assert f"start: Bridge created at block {bridge_block:,} (eth_getCode search)" in est.output, est.output
        assert f"start: USDC created at block {token_block:,} (Treasury is not a contract)" in est.output, est.output
        bridge_calls = 2 * -(-(head - bridge_block + 1) // 50)
        treasury_calls = 2 * -(-(head - token_block + 1) // 50)
        assert f"{bridge_calls} eth_getLogs" in est.output and f"{treasury_calls} eth_getLogs" in est.output
        assert f"in all about {bridge_calls + treasury_calls:,} eth_getLogs call(s)" in est.output
        proxy.calls.clear()
        r = _cli(tmp_path, *args)
        assert r.exit_code == 0, r.output
        assert proxy.calls["eth_getLogs"] == bridge_calls + treasury_calls  # no range refused: as estimated
        assert f"eth_getLogs {bridge_calls + treasury_calls}" in r.output, r.output
        flows = _sql(
            tmp_path, "select label, direction, amount::double a from onchain_flows order by block_number, label"
        )
        assert [(f["label"], f["direction"], f["a"]) for f in flows] == [
            ("Bridge", "in", 600),
            ("Bridge", "out", 100),
            ("Treasury", "in", 50),
        ]

        # a balance read on a branch that a reorg then removes
        snap = rpc(url, "evm_snapshot")
        send(w3, token.functions.transfer(bridge.address, 5 * 10**6), sender=acc[1])
        orphan = w3.eth.block_number
        orphan_hash = "0x" + w3.eth.get_block(orphan).hash.hex().removeprefix("0x")
        assert _cli(tmp_path, *args).exit_code == 0
        assert (
            _sql(
                tmp_path,
                f"select balance::double b from onchain_balances where label = 'Bridge' and block_number = {orphan}",
            )[0]["b"]
            == 505
        )
        rpc(url, "evm_revert", snap)
        send(w3, token.functions.transfer(bridge.address, 7 * 10**6), sender=acc[1])
        rpc(url, "anvil_mine", hex(2))
        r = _cli(tmp_path, *args)
        assert r.exit_code == 0, r.output
        assert re.search(
            rf"balances read at block {orphan:,} \(hash {orphan_hash[:12]}…\) were on a branch reorged out: "
            r"removed; read again on the canonical chain",
            r.output,
        ), r.output
        canonical = {
            n: "0x" + w3.eth.get_block(n).hash.hex().removeprefix("0x") for n in range(w3.eth.block_number + 1)
        }
    rows = _sql(
        tmp_path,
        "select label, block_number, block_hash, balance::double b from onchain_balances order by block_number, label",
    )
    assert all(r["block_hash"] == canonical[r["block_number"]] for r in rows)
    assert orphan_hash not in {r["block_hash"] for r in rows}
    bridge_rows = [r for r in rows if r["label"] == "Bridge"]
    assert [r["b"] for r in bridge_rows] == [500, 507, 507]  # first read; the orphan's height read again; this run's
    assert bridge_rows[1]["block_number"] == orphan
    flows = _sql(
        tmp_path,
        "select amount::double a from onchain_flows where label = 'Bridge' and direction = 'in' order by block_number",
    )
    assert [f["a"] for f in flows] == [600, 7]
