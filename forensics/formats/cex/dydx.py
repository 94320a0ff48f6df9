"""dYdX v4 indexer wire shapes and normalizers (venue-apis.md §7).

Public trades: ``type`` LIQUIDATED / DELEVERAGED mark liquidation and deleveraging trades; ``side`` is the
taker's side and the taker is the liquidated (or deleveraged, bankrupt) subaccount, so SELL = a long was
liquidated. Fills by address: LIQUIDATED (taker, liquidated), LIQUIDATION (maker of a liquidation),
DELEVERAGED (bankrupt subaccount), OFFSETTING (the profitable subaccount that absorbed it: the ADL'd one).
Sizes are base units; times ISO-8601 strings.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from forensics.formats.cex.common import (
    RecordError,
    dec,
    fill_row,
    iso_ms,
    liq_row,
    liquidated_side_from_order,
    mul,
    obj,
    order_side_letter,
    symbol,
    text,
)

VENUE = "dydx"
TRADE_TYPES = frozenset(
    {"LIMIT", "MARKET", "LIQUIDATED", "DELEVERAGED", "TWAP_SUBORDER", "STOP_LIMIT", "TAKE_PROFIT_LIMIT"}
)
LIQ_TRADE_TYPES = frozenset({"LIQUIDATED", "DELEVERAGED"})
FILL_TYPES = frozenset({"LIMIT", "MARKET", "LIQUIDATED", "LIQUIDATION", "DELEVERAGED", "OFFSETTING", "TWAP_SUBORDER"})


class WireTrade(TypedDict):
    id: str
    side: Literal["BUY", "SELL"]
    size: str
    price: str
    type: str
    createdAt: str
    createdAtHeight: str


class WireFill(TypedDict):
    id: str
    side: Literal["BUY", "SELL"]
    liquidity: Literal["TAKER", "MAKER"]
    type: str
    market: str
    marketType: str
    price: str
    size: str
    fee: str
    createdAt: str
    createdAtHeight: str
    orderId: str | None
    clientMetadata: str | None
    subaccountNumber: int
    affiliateRevShare: NotRequired[str]


def trade_type(trade: Any) -> str:
    t = trade.get("type") if isinstance(trade, dict) else None
    if t not in TRADE_TYPES:
        raise RecordError(f"unknown trade type {str(t)[:20]!r}")
    return t


def trade_row(trade: WireTrade | Any, market: str) -> dict[str, Any]:
    """A LIQUIDATED / DELEVERAGED public trade -> ``cex_liquidations`` row."""
    trade = obj(trade, "trade")
    kind = trade_type(trade)
    if kind not in LIQ_TRADE_TYPES:
        raise RecordError(f"trade type {kind} is not a liquidation")
    raw_side = trade.get("side")
    px = dec(trade.get("price"), "price")
    qty = dec(trade.get("size"), "size")
    return liq_row(
        symbol_=symbol(market, "market"),
        time_ms=iso_ms(trade.get("createdAt"), "createdAt"),
        event_id=text(trade.get("id"), "id", max_len=64),
        raw_side=raw_side,
        side_meaning="taker",
        liquidated_position_side=liquidated_side_from_order(raw_side),
        price=px,
        price_kind="fill",
        qty=qty,
        qty_unit="base",
        size_base=qty,
        notional_usd=mul(qty, px),
        is_adl=kind == "DELEVERAGED",
        item=trade,
        status="filled",
    )


def fill_row_of(fill: WireFill | Any, address: str) -> dict[str, Any]:
    """A fill of ``address`` (any type) -> ``fills`` row."""
    fill = obj(fill, "fill")
    kind = fill.get("type")
    if kind not in FILL_TYPES:
        raise RecordError(f"unknown fill type {str(kind)[:20]!r}")
    liq = kind in ("LIQUIDATED", "LIQUIDATION", "DELEVERAGED", "OFFSETTING")
    return fill_row(
        symbol_=symbol(fill.get("market"), "market"),
        user=address,
        time_ms=iso_ms(fill.get("createdAt"), "createdAt"),
        fill_id=text(fill.get("id"), "id", max_len=80),
        hash_=text(fill.get("orderId"), "orderId", required=False, max_len=80),
        side=order_side_letter(fill.get("side")),
        px=dec(fill.get("price"), "price"),
        sz=dec(fill.get("size"), "size"),
        dir_=kind,
        is_liquidation=liq,
        is_liquidated_leg=kind in ("LIQUIDATED", "DELEVERAGED"),
        is_adl=kind == "OFFSETTING",
        fee=dec(fill.get("fee"), "fee", required=False),
        fee_token="USDC",
        crossed=fill.get("liquidity") == "TAKER",
    )
