"""The chain registry with a user's own file over the shipped one (--registry FILE / LIQF_REGISTRY), its
errors, and the eth_getLogs range a provider suggests when it refuses one."""

from __future__ import annotations

import pytest

from pipelines.ingest.onchain import OnchainError, load_registry
from pipelines.venues.evm import EvmRpc, RangeTooLarge, classify_error

SHIPPED_BRIDGE = "0x2df1c51e09aecf9cacb7bc98cb1742757f163df7"


def test_a_users_file_over_the_shipped_registry(tmp_path, monkeypatch):
    mine = tmp_path / "mine.toml"
    mine.write_text("""
[chain]
confirmations = 3
[[tokens]]
symbol = "USDC"
address = "0x00000000000000000000000000000000000000aa"
decimals = 6
[[addresses]]
label = "My vault"
address = "0x00000000000000000000000000000000000000bb"
role = "vault"
tokens = ["USDC"]
[gmx]
reader = "0x00000000000000000000000000000000000000cc"
adl_handlers = ["0x00000000000000000000000000000000000000dd"]
[[gmx.markets]]
address = "0x70d95587d40A2caf56bd97485aB3Eec10Bee6336"
name = "ETH-USD (mine)"
index_decimals = 18
""")
    reg = load_registry("arbitrum", user_file=mine)
    assert reg.chain_id == 42161 and reg.confirmations == 3  # shipped chain id, the user's confirmations
    assert [t.address for t in reg.tokens] == ["0x00000000000000000000000000000000000000aa"]  # same symbol: the user's
    assert {a.label for a in reg.addresses} == {"Hyperliquid Bridge2", "My vault"}  # the user's entry needs no verified
    assert reg.gmx_reader == "0x00000000000000000000000000000000000000cc"
    assert reg.gmx_data_store == "0xfd70de6b91282d8017aa4e741e9ae325cab992d8"  # kept from the shipped file
    assert "0x00000000000000000000000000000000000000dd" in reg.gmx_adl_handlers and len(reg.gmx_adl_handlers) == 13
    assert [m.name for m in reg.gmx_markets] == ["ETH-USD (mine)"]
    assert reg.gmx_layouts == load_registry("arbitrum").gmx_layouts
    monkeypatch.setenv("LIQF_REGISTRY", str(mine))  # the same from the environment
    assert load_registry("arbitrum").confirmations == 3


def test_a_standalone_file_for_a_chain_we_do_not_ship(tmp_path):
    mine = tmp_path / "base.toml"
    mine.write_text('extends = false\n[chain]\nname = "base"\nchain_id = 8453\n')
    reg = load_registry("base", user_file=mine)
    assert (reg.name, reg.chain_id, reg.tokens, reg.gmx_event_emitter) == ("base", 8453, (), None)
    alone = tmp_path / "alone.toml"
    alone.write_text('extends = false\n[chain]\nname = "arbitrum"\nchain_id = 42161\n')
    assert load_registry("arbitrum", user_file=alone).addresses == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[chain]\nname = "avalanche"\n', "is for chain 'avalanche', not 'arbitrum'"),
        ("[chain\nname=", "is not valid TOML"),
        (
            '[[gmx.layouts]]\nevent = "OrderExecuted"\nlayout = "nope"\nfrom_block = 1\n',
            "unknown GMX layout OrderExecuted/nope",
        ),
        ("extends = false\n[chain]\n", "bad or missing entry: 'chain_id'"),
    ],
)
def test_registry_errors_are_one_line(tmp_path, text, message):
    mine = tmp_path / "mine.toml"
    mine.write_text(text)
    with pytest.raises(OnchainError, match=message):
        load_registry("arbitrum", user_file=mine)


def test_missing_registry_file_and_unknown_chain(tmp_path):
    with pytest.raises(OnchainError, match="does not exist"):
        load_registry("arbitrum", user_file=tmp_path / "nope.toml")
    with pytest.raises(OnchainError, match="no registry for chain 'base'.*--registry FILE"):
        load_registry("base")


class Refusing:
    """A provider that takes at most 300 blocks per eth_getLogs and says which range would work."""

    label = "refusing"

    def __init__(self):
        self.ranges = []

    def request(self, method, params):
        lo, hi = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        self.ranges.append((lo, hi))
        if hi - lo + 1 > 300:
            raise classify_error(
                -32602,
                f"Log response size exceeded. ... this block range should work: [{hex(lo)}, {hex(lo + 299)}]",
                method,
            )
        return []

    def close(self):
        pass


def test_a_refusal_that_names_a_range_is_followed():
    exc = classify_error(-32602, "Based on your parameters, this block range should work: [0x10, 0x2f]", "eth_getLogs")
    assert isinstance(exc, RangeTooLarge) and exc.suggested == (16, 47)
    t = Refusing()
    rpc = EvmRpc(t, max_range=2000)
    assert rpc.get_logs("0x" + "11" * 20, [], 0, 899) == []
    # one refusal, then the suggested 300 blocks; the chunk grows back after successes and is refused again
    assert t.ranges == [(0, 899), (0, 299), (300, 899), (300, 599), (600, 899)] and rpc.stats.refusals == 2
    assert rpc.stats.calls["eth_getLogs"] == len(t.ranges)


@pytest.mark.parametrize("style", ["infura", "alchemy", "quicknode"])
def test_hosted_providers_range_refusals_are_recognised(style):
    from tests.evm_node import REFUSALS

    code, text = REFUSALS[style]
    exc = classify_error(code, text.format(lo="0x0", hi="0x7cf", n=10_000), "eth_getLogs")
    assert isinstance(exc, RangeTooLarge)
    assert exc.suggested == ((0, 1999) if style == "alchemy" else None)
