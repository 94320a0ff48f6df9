"""Helpers for the on-chain tests: deploy the test contracts and emit GMX-shaped events.

The events follow what gmx-synthetics' emitting libraries put in ``EventLogData``, item by item and in
their order, for each layout GMX shipped (``GMX_VERSIONS``):

* ``"2023"``: ``PositionEventUtils`` as deployed on Arbitrum in July 2023 (no ``increasedAtTime`` /
  ``decreasedAtTime``; ``priceImpactUsd`` on increases), ``OrderEventUtils.emitOrderExecuted`` as
  EventLog1(key) with ``key`` and ``secondaryOrderType`` (block 110,402,558) or, with
  ``order_layout="key"``, ``key`` alone (the first deployment, block 107,736,960);
* ``"2024"``: ``increasedAtTime``/``decreasedAtTime`` added (April 2024), OrderExecuted as
  EventLog2(key, account) with ``account`` (since block 132,478,135);
* ``"v2.2"``: ``pendingPriceImpactUsd``/``pendingPriceImpactAmount`` on increases,
  ``proportionalPendingImpactUsd``/``totalImpactUsd`` on decreases (July 2025).
"""

from __future__ import annotations

import json
from pathlib import Path

from web3 import Web3

from forensics.formats import gmx as fmt

ARTIFACTS = Path(__file__).parent / "contracts" / "artifacts"
E30 = 10**30
GMX_VERSIONS = ("2023", "2024", "v2.2")


def deploy(w3: Web3, name: str, *args):
    art = json.loads((ARTIFACTS / f"{name}.json").read_text())
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(*args).transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])


def deploy_at(w3: Web3, name: str, address: str, *args):
    """Deploy ``name`` and move its runtime code to ``address`` (anvil_setCode): a stand-in at a real
    address. Storage is not moved: stand-ins keep constructor arguments in immutables."""
    c = deploy(w3, name, *args)
    code = w3.eth.get_code(c.address)
    target = Web3.to_checksum_address(address)
    w3.provider.make_request("anvil_setCode", [target, "0x" + bytes(code).hex()])
    return w3.eth.contract(address=target, abi=c.abi)


def b32(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr.removeprefix("0x").rjust(64, "0"))


def addr_topic(address: str) -> bytes:
    return b32(address.lower())


def position_event_data(
    *,
    kind: str,
    account: str,
    market: str,
    collateral: str,
    is_long: bool,
    order_type: int,
    size_usd: float,
    size_tokens: float,
    delta_usd: float,
    delta_tokens: float,
    price: float,
    collateral_amount: int = 1000 * 10**6,
    pnl_usd: float = 0.0,
    order_key: bytes = b"\x01" * 32,
    index_decimals: int = 18,
    version: str = "v2.2",
    price_impact_usd: float = 0.0,
    position_key: bytes = b"\x02" * 32,
) -> tuple:
    """PositionIncrease/PositionDecrease ``EventLogData`` as ``PositionEventUtils`` of ``version`` emits it
    (units converted like GMX: 30-decimal USD, prices per smallest index unit x 1e30)."""
    assert version in GMX_VERSIONS
    tok = lambda x: int(round(x * 10**index_decimals))  # noqa: E731
    gmx_price = int(round(price * E30 / 10**index_decimals))
    impact = int(price_impact_usd * E30)
    uint = {
        "sizeInUsd": int(size_usd * E30),
        "sizeInTokens": tok(size_tokens),
        "collateralAmount": collateral_amount,
        "borrowingFactor": 0,
        "fundingFeeAmountPerSize": 0,
        "longTokenClaimableFundingAmountPerSize": 0,
        "shortTokenClaimableFundingAmountPerSize": 0,
        "executionPrice": gmx_price,
        "indexTokenPrice.max": gmx_price,
        "indexTokenPrice.min": gmx_price,
        "collateralTokenPrice.max": E30 // 10**6,
        "collateralTokenPrice.min": E30 // 10**6,
        "sizeDeltaUsd": int(delta_usd * E30),
        "sizeDeltaInTokens": tok(delta_tokens),
    }
    if kind == "decrease":
        uint |= {"collateralDeltaAmount": 0, "values.priceImpactDiffUsd": 0, "orderType": order_type}
        if version != "2023":
            uint["decreasedAtTime"] = 0
        ints = {"priceImpactUsd": impact, "basePnlUsd": int(pnl_usd * E30), "uncappedBasePnlUsd": int(pnl_usd * E30)}
        if version == "v2.2":
            ints |= {"proportionalPendingImpactUsd": 0, "totalImpactUsd": impact}
    else:
        uint["orderType"] = order_type
        if version != "2023":
            uint["increasedAtTime"] = 0
        if version == "v2.2":
            ints = {
                "collateralDeltaAmount": collateral_amount,
                "pendingPriceImpactUsd": impact,
                "pendingPriceImpactAmount": 0,
            }
        else:
            ints = {"collateralDeltaAmount": collateral_amount, "priceImpactUsd": impact, "priceImpactAmount": 0}
    return fmt.encode_event_log_data(
        address={"account": account, "market": market, "collateralToken": collateral},
        uint=uint,
        int_=ints,
        bool_={"isLong": is_long},
        bytes32={"orderKey": order_key, "positionKey": position_key},
    )


def position_event(emitter, *, kind: str, account: str, **kw):
    """The emitter call of a position event (EventLog1 on the account, as GMX emits it)."""
    data = position_event_data(kind=kind, account=account, **kw)
    name = fmt.POSITION_DECREASE if kind == "decrease" else fmt.POSITION_INCREASE
    return emitter.functions.emitEventLog1(name, addr_topic(account), data)


def order_executed(
    emitter, *, account: str, order_key: bytes, secondary: int, version: str = "v2.2", order_layout: str | None = None
):
    """OrderExecuted as ``OrderEventUtils`` of ``version`` emits it (``order_layout="key"``: the first one)."""
    if order_layout == "key":
        return emitter.functions.emitEventLog1(
            fmt.ORDER_EXECUTED, order_key, fmt.encode_event_log_data(bytes32={"key": order_key})
        )
    if version == "2023":
        data = fmt.encode_event_log_data(bytes32={"key": order_key}, uint={"secondaryOrderType": secondary})
        return emitter.functions.emitEventLog1(fmt.ORDER_EXECUTED, order_key, data)
    data = fmt.encode_event_log_data(
        bytes32={"key": order_key}, address={"account": account}, uint={"secondaryOrderType": secondary}
    )
    return emitter.functions.emitEventLog2(fmt.ORDER_EXECUTED, order_key, addr_topic(account), data)


def adl_state_updated(emitter, *, market: str, is_long: bool, factor: float, max_factor: float, enable: bool):
    data = fmt.encode_event_log_data(
        int_={"pnlToPoolFactor": int(factor * E30)},
        uint={"maxPnlFactor": int(max_factor * E30)},
        bool_={"isLong": is_long, "shouldEnableAdl": enable},
    )
    return emitter.functions.emitEventLog1(fmt.ADL_STATE_UPDATED, addr_topic(market), data)


def send(w3: Web3, fn, sender=None) -> int:
    tx = fn.transact({"from": sender or w3.eth.accounts[0], "gas": 3_000_000})
    return w3.eth.wait_for_transaction_receipt(tx).blockNumber


def send_together(w3: Web3, emitter, *fns, sender=None) -> int:
    """Emit several events in one transaction (the emitter's multicall keeps ``msg.sender``): a GMX
    execution emits the position event and then OrderExecuted in the same transaction."""
    calls = [fn._encode_transaction_data() for fn in fns]
    tx = emitter.functions.multicall(calls).transact({"from": sender or w3.eth.accounts[0], "gas": 6_000_000})
    return w3.eth.wait_for_transaction_receipt(tx).blockNumber
