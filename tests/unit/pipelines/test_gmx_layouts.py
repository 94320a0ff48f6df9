"""GMX event layouts by block (forensics.formats.gmx): every layout GMX shipped decodes; a layout seen
before its library was deployed is an error; the shipped registries list the deployments."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from forensics.formats import gmx as fmt
from pipelines.ingest.onchain import load_registry
from pipelines.venues.gmx import synthetic_token_address

KEY = b"\x42" * 32
ACCOUNT = "0x" + "ab" * 20


def _log(variant: int, name: str, topics: list[bytes], data: tuple) -> fmt.GmxEvent:
    """Encode an EventEmitter log the way the contract does, then decode it."""
    sig = {1: fmt.EVENT_LOG1_TOPIC, 2: fmt.EVENT_LOG2_TOPIC}[variant]
    body = abi_encode(["address", "string", fmt.EVENT_LOG_DATA_TYPE], ["0x" + "11" * 20, name, data])
    return fmt.decode_log([sig, fmt.event_name_topic(name), *("0x" + t.hex() for t in topics)], "0x" + body.hex())


def order_executed(layout: str) -> fmt.GmxEvent:
    if layout == "key":
        return _log(1, fmt.ORDER_EXECUTED, [KEY], fmt.encode_event_log_data(bytes32={"key": KEY}))
    if layout == "key_secondary":
        return _log(
            1,
            fmt.ORDER_EXECUTED,
            [KEY],
            fmt.encode_event_log_data(bytes32={"key": KEY}, uint={"secondaryOrderType": 1}),
        )
    return _log(
        2,
        fmt.ORDER_EXECUTED,
        [KEY, bytes(12) + bytes.fromhex(ACCOUNT[2:])],
        fmt.encode_event_log_data(bytes32={"key": KEY}, address={"account": ACCOUNT}, uint={"secondaryOrderType": 1}),
    )


ARBITRUM = fmt.LayoutSchedule.of(list(load_registry("arbitrum").gmx_layouts))


@pytest.mark.parametrize(
    ("layout", "block", "account", "adl"),
    [
        ("key", 108_000_000, None, None),
        ("key_secondary", 120_000_000, None, True),
        ("key_account_secondary", 200_000_000, ACCOUNT, True),
        ("key", 300_000_000, None, None),  # an old library still emitting after a new one shipped: still valid
    ],
)
def test_order_executed_by_layout(layout, block, account, adl):
    oe = fmt.order_executed(order_executed(layout), block=block, schedule=ARBITRUM)
    assert (oe.key, oe.account, oe.is_adl, oe.layout) == ("0x" + KEY.hex(), account, adl, layout)


@pytest.mark.parametrize(
    ("layout", "block", "first"),
    [
        ("key_secondary", 110_402_557, 110_402_558),
        ("key_account_secondary", 132_478_134, 132_478_135),
        ("key", 107_736_959, 107_736_960),
    ],
)
def test_a_layout_before_its_library_shipped_is_an_error(layout, block, first):
    with pytest.raises(fmt.DecodeError, match=f"carries the {layout} layout, first shipped at block {first}"):
        fmt.order_executed(order_executed(layout), block=block, schedule=ARBITRUM)


def test_increase_price_impact_by_layout():
    def increase(impact_key: str) -> fmt.GmxEvent:
        data = fmt.encode_event_log_data(
            address={"account": ACCOUNT, "market": "0x" + "99" * 20, "collateralToken": "0x" + "33" * 20},
            uint={
                k: 1
                for k in (
                    "sizeInUsd",
                    "sizeInTokens",
                    "collateralAmount",
                    "executionPrice",
                    "indexTokenPrice.max",
                    "indexTokenPrice.min",
                    "collateralTokenPrice.max",
                    "collateralTokenPrice.min",
                    "sizeDeltaUsd",
                    "sizeDeltaInTokens",
                )
            }
            | {"orderType": 2},
            int_={"collateralDeltaAmount": 0, impact_key: -5 * 10**30},
            bool_={"isLong": True},
            bytes32={"orderKey": KEY, "positionKey": KEY},
        )
        return _log(1, fmt.POSITION_INCREASE, [bytes(12) + bytes.fromhex(ACCOUNT[2:])], data)

    v22 = fmt.position_change(increase("pendingPriceImpactUsd"), block=360_000_000, schedule=ARBITRUM)
    assert (v22.price_impact_usd, v22.price_impact_key) == (-5 * 10**30, "pendingPriceImpactUsd")
    old = fmt.position_change(increase("priceImpactUsd"), block=200_000_000, schedule=ARBITRUM)
    assert (old.price_impact_usd, old.price_impact_key) == (-5 * 10**30, "priceImpactUsd")
    with pytest.raises(fmt.DecodeError, match="pending_price_impact layout, first shipped at block 355140858"):
        fmt.position_change(increase("pendingPriceImpactUsd"), block=300_000_000, schedule=ARBITRUM)
    with pytest.raises(fmt.DecodeError, match="carries none of the layouts GMX shipped"):
        fmt.position_change(increase("someOtherImpact"), block=360_000_000, schedule=ARBITRUM)


def test_unknown_layout_names_in_a_registry_are_refused():
    with pytest.raises(ValueError, match="unknown GMX layout OrderExecuted/key_v9"):
        fmt.LayoutSchedule.of([("OrderExecuted", "key_v9", 1)])


def test_shipped_registries_name_gmx_deployments():
    arb = load_registry("arbitrum")
    assert ("OrderExecuted", "key_secondary", 110_402_558) in arb.gmx_layouts
    assert ("OrderExecuted", "key_account_secondary", 132_478_135) in arb.gmx_layouts
    assert ("PositionIncrease", "pending_price_impact", 355_140_858) in arb.gmx_layouts
    assert arb.gmx_data_store == "0xfd70de6b91282d8017aa4e741e9ae325cab992d8" and arb.gmx_reader
    assert "0x1196d058ad6d7454f2fbab1f683df4115a06ac63" in arb.gmx_adl_handlers and len(arb.gmx_adl_handlers) == 12
    assert dict(arb.gmx_synthetic_decimals)["BTC"] == 8
    avax = load_registry("avalanche")
    assert ("OrderExecuted", "key_account_secondary", 35_500_489) in avax.gmx_layouts


def test_synthetic_token_address():
    # keccak256(abi.encode(chainId, symbol))[12:]: BTC/USD's index token on Arbitrum
    assert synthetic_token_address(42161, "BTC") == "0x47904963fc8b2340414262125af798b9655e58cd"
    assert (
        synthetic_token_address(43114, "DOGE")
        == "0x" + keccak(abi_encode(["uint256", "string"], [43114, "DOGE"]))[12:].hex()
    )
