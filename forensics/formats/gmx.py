"""GMX v2 (gmx-synthetics) EventEmitter logs: pure decoding, no provider I/O.

GMX v2 emits every protocol event through one contract, ``EventEmitter``, as one of three generic
events whose payload is a key/value bag (``EventUtils.EventLogData``)::

    EventLog (address msgSender, string eventName, string indexed eventNameHash,                                   EventLogData eventData)
    EventLog1(address msgSender, string eventName, string indexed eventNameHash, bytes32 indexed topic1,              EventLogData eventData)
    EventLog2(address msgSender, string eventName, string indexed eventNameHash, bytes32 indexed topic1, bytes32 indexed topic2, EventLogData eventData)

``EventLogData`` holds seven item groups (address, uint, int, bool, bytes32, bytes, string), each with
``items`` (``(string key, T value)[]``) and ``arrayItems`` (``(string key, T[] value)[]``). The event
name is both a plain string in the data and ``keccak256(name)`` in topic 1, so ``eth_getLogs`` can
filter on names.

Units (gmx-synthetics conventions): USD amounts carry 30 decimals (``1e30`` = 1 USD); a token price is
USD per *smallest unit* of the token times ``1e30`` (so ``amount_raw * price_raw / 1e30`` is USD without
knowing the token's decimals); ``pnlToPoolFactor`` and ``maxPnlFactor`` are fractions with 30 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak

VENUE = "gmx_v2"

_GROUPS = ("address", "uint256", "int256", "bool", "bytes32", "bytes", "string")
GROUP_NAMES = ("address", "uint", "int", "bool", "bytes32", "bytes", "string")


def _group_type(t: str) -> str:
    return f"((string,{t})[],(string,{t}[])[])"


EVENT_LOG_DATA_TYPE = "(" + ",".join(_group_type(t) for t in _GROUPS) + ")"

EVENT_LOG_SIGNATURE = f"EventLog(address,string,string,{EVENT_LOG_DATA_TYPE})"
EVENT_LOG1_SIGNATURE = f"EventLog1(address,string,string,bytes32,{EVENT_LOG_DATA_TYPE})"
EVENT_LOG2_SIGNATURE = f"EventLog2(address,string,string,bytes32,bytes32,{EVENT_LOG_DATA_TYPE})"


def topic_hex(data: bytes) -> str:
    return "0x" + data.hex()


EVENT_LOG_TOPIC = topic_hex(keccak(text=EVENT_LOG_SIGNATURE))
EVENT_LOG1_TOPIC = topic_hex(keccak(text=EVENT_LOG1_SIGNATURE))
EVENT_LOG2_TOPIC = topic_hex(keccak(text=EVENT_LOG2_SIGNATURE))
EMITTER_TOPICS = {EVENT_LOG_TOPIC: 0, EVENT_LOG1_TOPIC: 1, EVENT_LOG2_TOPIC: 2}


def event_name_topic(name: str) -> str:
    """Topic 1 of every EventEmitter log: keccak256 of the event name (an indexed string)."""
    return topic_hex(keccak(text=name))


# Order.OrderType and Order.SecondaryOrderType (contracts/order/Order.sol), by enum position.
ORDER_TYPES = (
    "MarketSwap", "LimitSwap", "MarketIncrease", "LimitIncrease", "MarketDecrease", "LimitDecrease",
    "StopLossDecrease", "Liquidation", "StopIncrease",
)
ORDER_TYPE_LIQUIDATION = ORDER_TYPES.index("Liquidation")
ORDER_TYPE_MARKET_DECREASE = ORDER_TYPES.index("MarketDecrease")
SECONDARY_ORDER_TYPE_ADL = 1

# the events the forensics needs (filtered on topic 1 in eth_getLogs)
POSITION_INCREASE = "PositionIncrease"
POSITION_DECREASE = "PositionDecrease"
ORDER_EXECUTED = "OrderExecuted"
ADL_STATE_UPDATED = "AdlStateUpdated"
FORENSIC_EVENTS = (POSITION_INCREASE, POSITION_DECREASE, ORDER_EXECUTED, ADL_STATE_UPDATED)

USD_SCALE = 10**30


class DecodeError(ValueError):
    """A log that is not a well-formed EventEmitter event."""


@dataclass(frozen=True)
class EventLogData:
    """The decoded key/value bag: ``items[group][key] = value``; ``arrays[group][key] = [values]``."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrays: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def get(self, group: str, key: str, default: Any = None) -> Any:
        return self.items.get(group, {}).get(key, default)

    def need(self, group: str, key: str) -> Any:
        try:
            return self.items[group][key]
        except KeyError:
            raise DecodeError(f"missing {group} item {key!r}") from None


@dataclass(frozen=True)
class GmxEvent:
    variant: int  # 0, 1 or 2: EventLog, EventLog1, EventLog2
    msg_sender: str
    event_name: str
    topic1: str | None
    topic2: str | None
    data: EventLogData


def _norm(group: str, value: Any) -> Any:
    if group == "address":
        return value.lower()
    if group in ("bytes32", "bytes"):
        return "0x" + bytes(value).hex()
    return value


def _hex_bytes(text: str | bytes) -> bytes:
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def decode_event_log_data(payload: Any) -> EventLogData:
    items: dict[str, dict[str, Any]] = {}
    arrays: dict[str, dict[str, list[Any]]] = {}
    for group, (kv, kv_arrays) in zip(GROUP_NAMES, payload, strict=True):
        g = {}
        for key, value in kv:
            if key in g:
                raise DecodeError(f"duplicate {group} item {key!r}")
            g[key] = _norm(group, value)
        items[group] = g
        arrays[group] = {key: [_norm(group, v) for v in values] for key, values in kv_arrays}
    return EventLogData(items, arrays)


def decode_log(topics: list[str], data: str | bytes) -> GmxEvent:
    """Decode one EventEmitter log (topics as 0x hex, data as 0x hex or bytes)."""
    if not topics:
        raise DecodeError("log has no topics")
    variant = EMITTER_TOPICS.get(topics[0].lower())
    if variant is None:
        raise DecodeError(f"topic0 {topics[0]} is not an EventEmitter EventLog/EventLog1/EventLog2")
    if len(topics) != 2 + variant:
        raise DecodeError(f"EventLog{variant or ''} needs {2 + variant} topics, got {len(topics)}")
    try:
        sender, name, payload = abi_decode(["address", "string", EVENT_LOG_DATA_TYPE], _hex_bytes(data))
    except Exception as exc:  # eth_abi raises several types for malformed data
        raise DecodeError(f"undecodable EventLogData: {type(exc).__name__}: {exc}") from None
    if event_name_topic(name) != topics[1].lower():
        raise DecodeError(f"eventName {name!r} does not match its indexed hash {topics[1]}")
    return GmxEvent(
        variant=variant,
        msg_sender=sender.lower(),
        event_name=name,
        topic1=topics[2].lower() if variant >= 1 else None,
        topic2=topics[3].lower() if variant == 2 else None,
        data=decode_event_log_data(payload),
    )


def encode_event_log_data(
    *,
    address: dict[str, str] | None = None,
    uint: dict[str, int] | None = None,
    int_: dict[str, int] | None = None,
    bool_: dict[str, bool] | None = None,
    bytes32: dict[str, bytes] | None = None,
    bytes_: dict[str, bytes] | None = None,
    string: dict[str, str] | None = None,
) -> tuple:
    """The Python value of an ``EventLogData`` (for contract calls in tests and fixtures)."""
    groups = (address, uint, int_, bool_, bytes32, bytes_, string)
    return tuple((list((k, v) for k, v in (g or {}).items()), []) for g in groups)


# --- units ------------------------------------------------------------------------------------------------


def usd(raw: int) -> Decimal:
    """30-decimal USD integer -> Decimal USD, exact."""
    with localcontext() as ctx:
        ctx.prec = 90
        return Decimal(raw) / USD_SCALE


def token_amount(raw: int, decimals: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 90
        return Decimal(raw) / (Decimal(10) ** decimals)


def price_per_token(price_raw: int, decimals: int) -> Decimal:
    """GMX price (USD per smallest unit x 1e30) -> USD per whole token."""
    with localcontext() as ctx:
        ctx.prec = 90
        return Decimal(price_raw) * (Decimal(10) ** decimals) / USD_SCALE


def value_usd(amount_raw: int, price_raw: int) -> Decimal:
    """Token amount (smallest units) x GMX price -> USD, without needing the token's decimals."""
    with localcontext() as ctx:
        ctx.prec = 90
        return Decimal(amount_raw) * Decimal(price_raw) / USD_SCALE


# --- typed views of the events the forensics uses ---------------------------------------------------------


@dataclass(frozen=True)
class PositionChange:
    """A PositionIncrease or PositionDecrease, with the position's state *after* the change."""

    kind: str  # 'increase' | 'decrease'
    account: str
    market: str
    collateral_token: str
    is_long: bool
    order_type: int
    order_key: str
    position_key: str
    size_in_usd: int  # after, 1e30 USD (entry notional of what is still open)
    size_in_tokens: int  # after, index-token smallest units
    collateral_amount: int  # after, collateral smallest units
    size_delta_usd: int
    size_delta_in_tokens: int
    execution_price: int  # GMX price units
    index_price_min: int
    index_price_max: int
    collateral_price_min: int
    collateral_price_max: int
    base_pnl_usd: int | None  # decreases only, 1e30 USD
    price_impact_usd: int | None

    @property
    def order_type_name(self) -> str:
        return ORDER_TYPES[self.order_type] if 0 <= self.order_type < len(ORDER_TYPES) else f"unknown:{self.order_type}"


def position_change(ev: GmxEvent) -> PositionChange:
    if ev.event_name not in (POSITION_INCREASE, POSITION_DECREASE):
        raise DecodeError(f"{ev.event_name} is not a position event")
    d = ev.data
    dec = ev.event_name == POSITION_DECREASE
    return PositionChange(
        kind="decrease" if dec else "increase",
        account=d.need("address", "account"),
        market=d.need("address", "market"),
        collateral_token=d.need("address", "collateralToken"),
        is_long=bool(d.need("bool", "isLong")),
        order_type=int(d.need("uint", "orderType")),
        order_key=d.get("bytes32", "orderKey") or "",
        position_key=d.get("bytes32", "positionKey") or "",
        size_in_usd=int(d.need("uint", "sizeInUsd")),
        size_in_tokens=int(d.need("uint", "sizeInTokens")),
        collateral_amount=int(d.need("uint", "collateralAmount")),
        size_delta_usd=int(d.need("uint", "sizeDeltaUsd")),
        size_delta_in_tokens=int(d.need("uint", "sizeDeltaInTokens")),
        execution_price=int(d.need("uint", "executionPrice")),
        index_price_min=int(d.need("uint", "indexTokenPrice.min")),
        index_price_max=int(d.need("uint", "indexTokenPrice.max")),
        collateral_price_min=int(d.need("uint", "collateralTokenPrice.min")),
        collateral_price_max=int(d.need("uint", "collateralTokenPrice.max")),
        base_pnl_usd=int(d.need("int", "basePnlUsd")) if dec else None,
        price_impact_usd=d.get("int", "priceImpactUsd"),
    )


@dataclass(frozen=True)
class AdlState:
    market: str
    is_long: bool
    pnl_to_pool_factor: int  # 1e30 fraction, signed
    max_pnl_factor: int  # 1e30 fraction
    should_enable_adl: bool


def adl_state(ev: GmxEvent) -> AdlState:
    if ev.event_name != ADL_STATE_UPDATED:
        raise DecodeError(f"{ev.event_name} is not AdlStateUpdated")
    if ev.topic1 is None:
        raise DecodeError("AdlStateUpdated without topic1 (market)")
    d = ev.data
    return AdlState(
        market="0x" + ev.topic1[-40:],
        is_long=bool(d.need("bool", "isLong")),
        pnl_to_pool_factor=int(d.need("int", "pnlToPoolFactor")),
        max_pnl_factor=int(d.need("uint", "maxPnlFactor")),
        should_enable_adl=bool(d.need("bool", "shouldEnableAdl")),
    )


def order_executed(ev: GmxEvent) -> tuple[str, str, int]:
    """(order key, account, secondaryOrderType) of an OrderExecuted event."""
    if ev.event_name != ORDER_EXECUTED:
        raise DecodeError(f"{ev.event_name} is not OrderExecuted")
    d = ev.data
    return d.need("bytes32", "key"), d.need("address", "account"), int(d.need("uint", "secondaryOrderType"))
