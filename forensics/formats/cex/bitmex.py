"""BitMEX wire shapes and normalizers (venue-apis.md §5).

``/liquidation`` lists only liquidation orders that are **open now**, without a timestamp: rows use the
pull's receive time (``time_source = 'received'``). ``side`` is the order side (Sell = long liquidated);
``leavesQty`` is in contracts: USD for inverse contracts (XBTUSD: 1 contract = 1 USD), base = contracts /
``underlyingToPositionMultiplier`` for linear ones; quanto sizes are left NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypedDict

from forensics.formats.cex.common import (
    dec,
    div,
    iso_ms,
    liq_row,
    liquidated_side_from_order,
    mul,
    obj,
    symbol,
    text,
)

VENUE = "bitmex"


class WireLiquidation(TypedDict):
    orderID: str
    symbol: str
    side: Literal["Buy", "Sell"]
    price: float
    leavesQty: int


class WireInsurance(TypedDict):
    currency: str
    timestamp: str
    walletBalance: int


class WireInstrument(TypedDict):
    symbol: str
    isInverse: bool
    isQuanto: bool
    underlyingToPositionMultiplier: float | None
    multiplier: float


@dataclass(frozen=True)
class Contract:
    inverse: bool
    quanto: bool
    per_base: Decimal | None  # contracts per 1 base unit (linear)


def instrument(item: WireInstrument | Any) -> tuple[str, Contract]:
    item = obj(item, "instrument")
    sym = symbol(item.get("symbol"))
    per = item.get("underlyingToPositionMultiplier")
    return sym, Contract(
        inverse=bool(item.get("isInverse")),
        quanto=bool(item.get("isQuanto")),
        per_base=dec(per, "underlyingToPositionMultiplier", required=False) if per else None,
    )


def liquidation_row(item: WireLiquidation | Any, received_ms: int, contracts: dict[str, Contract]) -> dict[str, Any]:
    item = obj(item, "liquidation item")
    sym = symbol(item.get("symbol"))
    raw_side = item.get("side")
    side = liquidated_side_from_order(raw_side)
    order_id = text(item.get("orderID"), "orderID", max_len=64)
    px = dec(item.get("price"), "price")
    qty = dec(item.get("leavesQty"), "leavesQty")
    c = contracts.get(sym)
    base = usd = ct = None
    if c is not None and not c.quanto:
        if c.inverse:
            ct, usd, base = Decimal(1), qty, div(qty, px)
        elif c.per_base:
            ct = div(Decimal(1), c.per_base)
            base = div(qty, c.per_base)
            usd = mul(base, px)
    return liq_row(
        symbol_=sym,
        time_ms=received_ms,
        time_source="received",
        event_id=order_id,
        raw_side=raw_side,
        side_meaning="order",
        liquidated_position_side=side,
        price=px,
        price_kind="order",
        order_price=px,
        qty=qty,
        qty_unit="contracts",
        contract_value=ct,
        size_base=base,
        notional_usd=usd,
        status="open",
        item=item,
    )


def insurance_row(item: WireInsurance | Any) -> dict[str, Any]:
    item = obj(item, "insurance item")
    cur = symbol(item.get("currency"), "currency")
    return {
        "pool": cur,
        "asset": cur,
        "kind": "balance",
        "time_ms": iso_ms(item.get("timestamp")),
        "balance": dec(item.get("walletBalance"), "walletBalance"),
    }
