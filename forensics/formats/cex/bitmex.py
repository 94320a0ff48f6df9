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
    RecordError,
    dec,
    div,
    fill_row,
    iso_ms,
    liq_row,
    liquidated_side_from_order,
    mul,
    obj,
    order_side_letter,
    raw_json,
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


# --- own account (signed: ``api-expires`` / ``api-key`` / ``api-signature``) ------------------------------


class WireExecution(TypedDict, total=False):
    execID: str
    orderID: str
    symbol: str
    side: Literal["Buy", "Sell"]
    lastQty: int
    lastPx: float
    execType: str
    ordType: str
    text: str
    timestamp: str


class WirePosition(TypedDict, total=False):
    symbol: str
    currentQty: int
    avgEntryPrice: float
    liquidationPrice: float
    leverage: float
    crossMargin: bool
    unrealisedPnl: int
    deleveragePercentile: float | None
    timestamp: str


def execution_kind(item: Any) -> str | None:
    """'liquidation', 'adl' or 'trade' for a ``Trade`` execution; None for funding, settlement and the rest
    (kept in raw only). BitMEX marks liquidation fills by ``text``/``ordType`` and ADL by "Deleverage"
    in ``text`` (venue-apis.md §5: UNCONFIRMED)."""
    if not isinstance(item, dict) or item.get("execType") != "Trade":
        return None
    note = f"{item.get('text') or ''} {item.get('ordType') or ''}".lower()
    if "deleverag" in note:
        return "adl"
    if "liquidat" in note:
        return "liquidation"
    return "trade"


def execution_rows(item: WireExecution | Any, account: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Own ``Trade`` execution -> (``cex_liquidations`` row for a liquidation or ADL fill else None, ``fills``
    row). Sizes stay in contracts (``qty_unit = 'contracts'``)."""
    item = obj(item, "execution")
    kind = execution_kind(item)
    if kind is None:
        raise RecordError(f"not a Trade execution (execType {str(item.get('execType'))[:20]!r})")
    sym = symbol(item.get("symbol"))
    raw_side = item.get("side")
    exec_id = text(item.get("execID"), "execID", max_len=64)
    t = iso_ms(item.get("timestamp"))
    px = dec(item.get("lastPx"), "lastPx")
    qty = dec(item.get("lastQty"), "lastQty")
    is_liq, is_adl = kind == "liquidation", kind == "adl"
    fill = fill_row(
        symbol_=sym,
        user=account,
        time_ms=t,
        fill_id=exec_id,
        hash_=text(item.get("orderID"), "orderID", required=False, max_len=64),
        side=order_side_letter(raw_side),
        px=px,
        sz=qty,
        dir_={"trade": "Trade", "liquidation": "Liquidation", "adl": "Deleverage"}[kind],
        is_liquidation=is_liq,
        is_liquidated_leg=is_liq,
        is_adl=is_adl,
    )
    liq = None
    if is_liq or is_adl:
        liq = liq_row(
            symbol_=sym,
            time_ms=t,
            event_id=exec_id,
            raw_side=raw_side,
            side_meaning="order",
            liquidated_position_side=liquidated_side_from_order(raw_side),
            price=px,
            price_kind="fill",
            qty=qty,
            qty_unit="contracts",
            size_base=None,
            notional_usd=None,
            is_adl=is_adl,
            account=account,
            item=item,
            status="Filled",
        )
    return liq, fill


def position_rows(item: WirePosition | Any, account: str, time_ms: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Own position -> (``adl_ranks`` row with ``deleveragePercentile``, ``position_snapshots`` row or None
    when flat). Sizes in contracts."""
    item = obj(item, "position")
    sym = symbol(item.get("symbol"))
    qty = dec(item.get("currentQty"), "currentQty")
    pct = item.get("deleveragePercentile")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 1):
        raise RecordError("deleveragePercentile outside [0, 1]")
    side = "long" if qty > 0 else "short" if qty < 0 else "both"
    rank_row = {
        "kind": "account_rank",
        "account": account,
        "symbol": sym,
        "position_side": side,
        "time_ms": time_ms,
        "rank": None,
        "rank_max": None,
        "percentile": pct,
        "position_size": qty,
        "raw_json": raw_json(item),
    }
    pos = None
    if qty:
        lev = item.get("leverage")
        pos = {
            "user": account,
            "coin": sym,
            "time_ms": time_ms,
            "szi": qty,
            "entry_px": dec(item.get("avgEntryPrice"), "avgEntryPrice", required=False),
            "liquidation_px": dec(item.get("liquidationPrice"), "liquidationPrice", required=False),
            "leverage_type": "cross" if item.get("crossMargin") else "isolated",
            "leverage": int(lev) if isinstance(lev, (int, float)) and not isinstance(lev, bool) else None,
        }
    return rank_row, pos
