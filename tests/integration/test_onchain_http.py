"""The JSON-RPC-over-HTTP path against a real local node (anvil from the npm registry, on 127.0.0.1),
through the CLI: `liqf ingest gmx` and `liqf ingest reserves`."""

from __future__ import annotations

import os

import pytest

from tests.evm_node import ANVIL, ANVIL_MISSING
from tests.evm_node import anvil as anvil_node

pytestmark = pytest.mark.skipif(not ANVIL.exists(), reason=ANVIL_MISSING)


@pytest.fixture()
def anvil():
    with anvil_node() as url:
        yield url


def test_cli_ingest_gmx_and_reserves_over_http(anvil, tmp_path, monkeypatch):
    from typer.testing import CliRunner
    from web3 import Web3

    from tests.onchain_helpers import deploy, order_executed, position_event, send, send_together

    w3 = Web3(Web3.HTTPProvider(anvil))
    acc = w3.eth.accounts
    em = deploy(w3, "MockEventEmitter")
    token = deploy(w3, "TestToken", "USD Coin", "USDC", 6)
    market, bridge = acc[9], acc[5]
    send(
        w3,
        position_event(
            em,
            kind="increase",
            account=acc[1],
            market=market,
            collateral=acc[3],
            is_long=False,
            order_type=2,
            size_usd=3000,
            size_tokens=1,
            delta_usd=3000,
            delta_tokens=1,
            price=3000,
        ),
    )
    send_together(
        w3,
        em,
        position_event(
            em,
            kind="decrease",
            account=acc[1],
            market=market,
            collateral=acc[3],
            is_long=False,
            order_type=4,
            size_usd=0,
            size_tokens=0,
            delta_usd=3000,
            delta_tokens=1,
            price=2000,
            pnl_usd=1000,
            order_key=b"\xad" * 32,
        ),
        order_executed(em, account=acc[1], order_key=b"\xad" * 32, secondary=1),
    )
    send(w3, token.functions.mint(acc[1], 100 * 10**6))
    send(w3, token.functions.transfer(bridge, 40 * 10**6), sender=acc[1])

    reg = tmp_path / "mine.toml"
    reg.write_text(f"""
extends = false
[chain]
name = "arbitrum"
chain_id = 42161
rpc_env = "LIQF_TEST_RPC"
confirmations = 0
max_range = 3
[[tokens]]
symbol = "USDC"
address = "{token.address}"
decimals = 6
verified = true
[[addresses]]
label = "Bridge"
address = "{bridge}"
role = "bridge"
venue = "hyperliquid"
tokens = ["USDC"]
verified = true
[gmx]
event_emitter = "{em.address}"
from_block = 0
verified = true
[[gmx.markets]]
address = "{market}"
name = "ETH/USD [WETH-USDC]"
index_decimals = 18
verified = true
""")
    monkeypatch.setenv("LIQF_REGISTRY", str(reg))  # the user's own registry, from the environment
    monkeypatch.setenv("LIQF_TEST_RPC", anvil)
    from pipelines.cli import app

    lake, db = tmp_path / "lake", tmp_path / "f.duckdb"
    runner = CliRunner()
    r = runner.invoke(app, ["--lake", str(lake), "--db", str(db), "ingest", "gmx", "--chain", "arbitrum"])
    assert r.exit_code == 0, r.output
    assert "3 logs" in r.output and "read 3 = written 3 + quarantined 0" in r.output
    r = runner.invoke(app, ["--lake", str(lake), "--db", str(db), "ingest", "reserves", "--chain", "arbitrum"])
    assert r.exit_code == 0, r.output
    assert "balances" in r.output
    r = runner.invoke(
        app,
        [
            "--lake",
            str(lake),
            "--db",
            str(db),
            "sql",
            "select dir, side, px, sz from fills order by tid",
            "--format",
            "csv",
        ],
    )
    assert "Auto-Deleveraging,B,2000" in r.output, r.output
    r = runner.invoke(
        app, ["--lake", str(lake), "--db", str(db), "sql", "select balance from onchain_balances", "--format", "csv"]
    )
    assert "40" in r.output
    # a wrong chain id is a one-line error with a hint
    bad = runner.invoke(
        app,
        ["--lake", str(lake), "--db", str(db), "ingest", "gmx", "--chain", "arbitrum", "--rpc", "http://127.0.0.1:1"],
    )
    assert bad.exit_code == 2
    assert os.environ.get("LIQF_TEST_RPC") == anvil
