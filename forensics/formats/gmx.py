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

Layouts. GMX changed what some events carry as it redeployed the libraries that emit them (the
``deployments/<chain>/*.json`` history of gmx-synthetics, each with its verified source):

* ``OrderExecuted`` (``OrderEventUtils.emitOrderExecuted``): ``key`` (the first deployment: EventLog1
  with only the order key), ``key_secondary`` (EventLog1, key + ``secondaryOrderType``), and
  ``key_account_secondary`` (EventLog2 on key and account, + ``account``).
* ``PositionIncrease`` (``PositionEventUtils.emitPositionIncrease``): ``price_impact``
  (``priceImpactUsd``) until v2.2, ``pending_price_impact`` (``pendingPriceImpactUsd``: v2.2 stores the
  increase's impact on the position and charges it on close) since.

Which layout a log may carry is a matter of its block: a chain's :class:`LayoutSchedule` lists from which
block each layout was shipped (``[[gmx.layouts]]`` in the chain registry). A log is decoded by the layout
it carries if that layout had been shipped by its block (older libraries keep emitting until their
handlers are retired, so an older layout stays valid); a layout seen before it was shipped is an error.
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
    "MarketSwap",
    "LimitSwap",
    "MarketIncrease",
    "LimitIncrease",
    "MarketDecrease",
    "LimitDecrease",
    "StopLossDecrease",
    "Liquidation",
    "StopIncrease",
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
class Layout:
    """One shape an event was emitted in: the EventLog variant and the items that identify it."""

    event: str
    name: str
    variant: int  # 1 or 2: EventLog1 / EventLog2
    items: tuple[tuple[str, str], ...]  # (group, key) present in this layout

    def matches(self, ev: GmxEvent) -> bool:
        return ev.variant == self.variant and all(k in ev.data.items.get(g, {}) for g, k in self.items)


LAYOUTS: dict[str, tuple[Layout, ...]] = {
    ORDER_EXECUTED: (
        Layout(ORDER_EXECUTED, "key", 1, (("bytes32", "key"),)),
        Layout(ORDER_EXECUTED, "key_secondary", 1, (("bytes32", "key"), ("uint", "secondaryOrderType"))),
        Layout(
            ORDER_EXECUTED,
            "key_account_secondary",
            2,
            (("bytes32", "key"), ("address", "account"), ("uint", "secondaryOrderType")),
        ),
    ),
    POSITION_INCREASE: (
        Layout(POSITION_INCREASE, "price_impact", 1, (("int", "priceImpactUsd"),)),
        Layout(POSITION_INCREASE, "pending_price_impact", 1, (("int", "pendingPriceImpactUsd"),)),
    ),
}


def layout_of(ev: GmxEvent) -> Layout:
    """The most specific layout of ``ev.event_name`` whose items ``ev`` carries."""
    found = [lay for lay in LAYOUTS.get(ev.event_name, ()) if lay.matches(ev)]
    if not found:
        names = ", ".join(lay.name for lay in LAYOUTS.get(ev.event_name, ()))
        keys = sorted(f"{g}:{k}" for g, kv in ev.data.items.items() for k in kv)
        raise DecodeError(
            f"{ev.event_name} (EventLog{ev.variant}) carries none of the layouts GMX shipped "
            f"({names}); items: {', '.join(keys) or 'none'}"
        )
    return max(found, key=lambda lay: len(lay.items))


@dataclass(frozen=True)
class LayoutSchedule:
    """From which block each layout was shipped, per event (ascending); an event absent here may carry
    any known layout (test chains, chains whose history is not in the registry)."""

    shipped: dict[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: list[tuple[str, str, int]]) -> LayoutSchedule:
        """From ``(event, layout, from_block)`` entries; unknown events or layout names are errors."""
        out: dict[str, list[tuple[int, str]]] = {}
        for event, name, block in entries:
            if name not in {lay.name for lay in LAYOUTS.get(event, ())}:
                known = {e: [lay.name for lay in ls] for e, ls in LAYOUTS.items()}
                raise ValueError(f"unknown GMX layout {event}/{name} (known: {known})")
            out.setdefault(event, []).append((int(block), name))
        return cls({e: tuple(sorted(v)) for e, v in out.items()})

    def expected(self, event: str, block: int) -> str | None:
        """The newest layout shipped by ``block`` (None when the schedule says nothing of ``event``)."""
        shipped = [name for start, name in self.shipped.get(event, ()) if start <= block]
        return shipped[-1] if shipped else None

    def check(self, ev: GmxEvent, block: int) -> Layout:
        """The layout ``ev`` carries, if it had been shipped by ``block``; else :class:`DecodeError`."""
        lay = layout_of(ev)
        schedule = self.shipped.get(ev.event_name)
        if not schedule:
            return lay
        first = {name: start for start, name in reversed(schedule)}
        if lay.name not in first:
            raise DecodeError(
                f"{ev.event_name} at block {block} carries the {lay.name} layout, which this chain's "
                "registry does not list"
            )
        if block < first[lay.name]:
            raise DecodeError(
                f"{ev.event_name} at block {block} carries the {lay.name} layout, first shipped at "
                f"block {first[lay.name]}"
            )
        return lay


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
    price_impact_usd: int | None  # increases: priceImpactUsd, or v2.2's pendingPriceImpactUsd
    price_impact_key: str | None  # which of the two the event carried

    @property
    def order_type_name(self) -> str:
        return ORDER_TYPES[self.order_type] if 0 <= self.order_type < len(ORDER_TYPES) else f"unknown:{self.order_type}"


def position_change(
    ev: GmxEvent, *, block: int | None = None, schedule: LayoutSchedule | None = None
) -> PositionChange:
    """The typed view of a position event; an increase's price-impact item is read by its layout (checked
    against ``schedule`` at ``block`` when given)."""
    if ev.event_name not in (POSITION_INCREASE, POSITION_DECREASE):
        raise DecodeError(f"{ev.event_name} is not a position event")
    d = ev.data
    dec = ev.event_name == POSITION_DECREASE
    if dec:
        impact_key = "priceImpactUsd" if "priceImpactUsd" in d.items.get("int", {}) else None
    else:
        lay = schedule.check(ev, block) if schedule is not None and block is not None else layout_of(ev)
        impact_key = lay.items[0][1]
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
        price_impact_usd=d.get("int", impact_key) if impact_key else None,
        price_impact_key=impact_key,
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


@dataclass(frozen=True)
class OrderExecuted:
    key: str
    account: str | None  # not in the 2023 layouts
    secondary_order_type: int | None  # not in the first layout
    layout: str

    @property
    def is_adl(self) -> bool | None:
        """True/False from ``secondaryOrderType``; None when the layout does not say."""
        return None if self.secondary_order_type is None else self.secondary_order_type == SECONDARY_ORDER_TYPE_ADL


def order_executed(ev: GmxEvent, *, block: int | None = None, schedule: LayoutSchedule | None = None) -> OrderExecuted:
    """An OrderExecuted event in whichever layout it carries (checked against ``schedule`` at ``block``)."""
    if ev.event_name != ORDER_EXECUTED:
        raise DecodeError(f"{ev.event_name} is not OrderExecuted")
    lay = schedule.check(ev, block) if schedule is not None and block is not None else layout_of(ev)
    d = ev.data
    key = d.need("bytes32", "key")
    if ev.topic1 is not None and ev.topic1 != key:
        raise DecodeError(f"OrderExecuted key {key} differs from its topic1 {ev.topic1}")
    secondary = d.get("uint", "secondaryOrderType")
    return OrderExecuted(
        key=key,
        account=d.get("address", "account"),
        secondary_order_type=int(secondary) if secondary is not None else None,
        layout=lay.name,
    )
