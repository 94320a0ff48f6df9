"""Helpers for the on-chain tests: deploy the test contracts and emit GMX-shaped events."""

from __future__ import annotations

import json
from pathlib import Path

from web3 import Web3

from forensics.formats import gmx as fmt

ARTIFACTS = Path(__file__).parent / "contracts" / "artifacts"
E30 = 10**30


def deploy(w3: Web3, name: str, *args):
    art = json.loads((ARTIFACTS / f"{name}.json").read_text())
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(*args).transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])


def b32(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr.removeprefix("0x").rjust(64, "0"))


def addr_topic(address: str) -> bytes:
    return b32(address.lower())


def position_event(emitter, *, kind: str, account: str, market: str, collateral: str, is_long: bool, order_type: int,
                   size_usd: float, size_tokens: float, delta_usd: float, delta_tokens: float, price: float,
                   collateral_amount: int = 1000 * 10**6, pnl_usd: float = 0.0, order_key: bytes = b"\x01" * 32,
                   index_decimals: int = 18, sender=None):
    """Emit PositionIncrease/PositionDecrease with GMX's item layout (units converted like GMX)."""
    tok = lambda x: int(round(x * 10**index_decimals))  # noqa: E731
    gmx_price = int(round(price * E30 / 10**index_decimals))
    uint = {
        "sizeInUsd": int(size_usd * E30), "sizeInTokens": tok(size_tokens), "collateralAmount": collateral_amount,
        "borrowingFactor": 0, "fundingFeeAmountPerSize": 0, "longTokenClaimableFundingAmountPerSize": 0,
        "shortTokenClaimableFundingAmountPerSize": 0, "executionPrice": gmx_price,
        "indexTokenPrice.max": gmx_price, "indexTokenPrice.min": gmx_price,
        "collateralTokenPrice.max": E30 // 10**6, "collateralTokenPrice.min": E30 // 10**6,
        "sizeDeltaUsd": int(delta_usd * E30), "sizeDeltaInTokens": tok(delta_tokens),
    }
    if kind == "decrease":
        uint |= {"collateralDeltaAmount": 0, "values.priceImpactDiffUsd": 0, "orderType": order_type, "decreasedAtTime": 0}
        ints = {"priceImpactUsd": 0, "basePnlUsd": int(pnl_usd * E30), "uncappedBasePnlUsd": int(pnl_usd * E30),
                "proportionalPendingImpactUsd": 0, "totalImpactUsd": 0}
    else:
        uint |= {"orderType": order_type, "increasedAtTime": 0}
        ints = {"collateralDeltaAmount": collateral_amount, "pendingPriceImpactUsd": 0, "pendingPriceImpactAmount": 0}
    data = fmt.encode_event_log_data(
        address={"account": account, "market": market, "collateralToken": collateral},
        uint=uint, int_=ints, bool_={"isLong": is_long},
        bytes32={"orderKey": order_key, "positionKey": b"\x02" * 32},
    )
    name = fmt.POSITION_DECREASE if kind == "decrease" else fmt.POSITION_INCREASE
    return emitter.functions.emitEventLog1(name, addr_topic(account), data)


def order_executed(emitter, *, account: str, order_key: bytes, secondary: int):
    data = fmt.encode_event_log_data(bytes32={"key": order_key}, address={"account": account},
                                     uint={"secondaryOrderType": secondary})
    return emitter.functions.emitEventLog2(fmt.ORDER_EXECUTED, order_key, addr_topic(account), data)


def adl_state_updated(emitter, *, market: str, is_long: bool, factor: float, max_factor: float, enable: bool):
    data = fmt.encode_event_log_data(int_={"pnlToPoolFactor": int(factor * E30)}, uint={"maxPnlFactor": int(max_factor * E30)},
                                     bool_={"isLong": is_long, "shouldEnableAdl": enable})
    return emitter.functions.emitEventLog1(fmt.ADL_STATE_UPDATED, addr_topic(market), data)


def send(w3: Web3, fn, sender=None) -> int:
    tx = fn.transact({"from": sender or w3.eth.accounts[0], "gas": 3_000_000})
    return w3.eth.wait_for_transaction_receipt(tx).blockNumber
