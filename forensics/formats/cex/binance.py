"""Binance USDⓈ-M futures wire shapes and normalizers (venue-apis.md §2).

Side convention: ``S``/``side`` is the **liquidation order** side, so ``SELL`` = a long was liquidated.
Sizes are base-coin units; times epoch ms ints.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from forensics.formats.cex.common import (
    RecordError,
    dec,
    event_hash,
    fill_row,
    liq_row,
    liquidated_side_from_order,
    ms_any,
    mul,
    obj,
    order_side_letter,
    raw_json,
    symbol,
    text,
)

VENUE = "binance"
ADL_QUANTILE_MAX = 4
ADL_RISK_RATINGS = frozenset({"low", "medium", "high"})
POSITION_SIDES = {"LONG": "long", "SHORT": "short", "BOTH": "both"}


class WireForceOrderInner(TypedDict):
    s: str
    S: Literal["BUY", "SELL"]
    o: str
    f: str
    q: str
    p: str
    ap: str
    X: str
    l: str  # noqa: E741 - wire name
    z: str
    T: int


class WireForceOrderEvent(TypedDict):
    """WS ``<symbol>@forceOrder`` / ``!forceOrder@arr`` message."""

    e: Literal["forceOrder"]
    E: int
    o: WireForceOrderInner


class WireForceOrder(TypedDict):
    """``GET /fapi/v1/forceOrders`` item (signed, own account)."""

    orderId: int
    symbol: str
    status: str
    clientOrderId: str
    price: str
    avgPrice: str
    origQty: str
    executedQty: str
    cumQuote: str
    timeInForce: str
    type: str
    reduceOnly: bool
    closePosition: bool
    side: Literal["BUY", "SELL"]
    positionSide: Literal["BOTH", "LONG", "SHORT"]
    stopPrice: str
    workingType: str
    origType: str
    time: int
    updateTime: int


class WireAdlQuantile(TypedDict):
    symbol: str
    adlQuantile: dict[str, int]


class WireSymbolAdlRisk(TypedDict):
    symbol: str
    adlRisk: str
    updateTime: int


class WireInsuranceAsset(TypedDict):
    asset: str
    marginBalance: str
    updateTime: int


class WireInsurancePool(TypedDict):
    symbols: list[str]
    assets: list[WireInsuranceAsset]


class WirePremiumIndex(TypedDict):
    symbol: str
    markPrice: str
    indexPrice: str
    lastFundingRate: str
    time: int
    estimatedSettlePrice: NotRequired[str]
    interestRate: NotRequired[str]
    nextFundingTime: NotRequired[int]


class WireOpenInterest(TypedDict):
    symbol: str
    openInterest: str
    time: int


def force_order_event_row(msg: WireForceOrderEvent | Any) -> dict[str, Any]:
    """A public liquidation-stream message -> ``cex_liquidations`` row (price = average fill price)."""
    o = obj(obj(msg, "forceOrder message").get("o"), "forceOrder.o")
    sym = symbol(o.get("s"))
    raw_side = o.get("S")
    side = liquidated_side_from_order(raw_side)
    t = ms_any(o.get("T"), "o.T")
    avg = dec(o.get("ap"), "o.ap")
    order_px = dec(o.get("p"), "o.p")
    filled = dec(o.get("z"), "o.z")
    price = avg if avg else order_px
    status = text(o.get("X"), "o.X", max_len=32)
    return liq_row(
        symbol_=sym,
        time_ms=t,
        event_id=event_hash(sym, t, raw_side, o.get("q"), o.get("z"), o.get("ap")),
        raw_side=raw_side,
        side_meaning="order",
        liquidated_position_side=side,
        price=price,
        price_kind="avg" if avg else "order",
        order_price=order_px,
        qty=filled,
        qty_unit="base",
        size_base=filled,
        notional_usd=mul(filled, price),
        status=status,
        item=msg,
    )


def force_order_kind(item: dict[str, Any]) -> str:
    """'LIQUIDATION', 'ADL' or 'SETTLEMENT' from ``clientOrderId``
    (autoclose- / adl_autoclose / settlement_autoclose-)."""
    cid = item.get("clientOrderId")
    if not isinstance(cid, str):
        raise RecordError("missing clientOrderId")
    if cid == "adl_autoclose" or cid.startswith("adl_autoclose"):
        return "ADL"
    if cid.startswith("settlement_autoclose-"):
        return "SETTLEMENT"
    if cid.startswith("autoclose-"):
        return "LIQUIDATION"
    raise RecordError(f"unknown forceOrders clientOrderId kind {cid[:30]!r}")


def force_order_rows(item: WireForceOrder | Any, account: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An own ``forceOrders`` item -> (``cex_liquidations`` row, ``fills`` row or None when nothing executed)."""
    item = obj(item, "forceOrders item")
    kind = force_order_kind(item)
    sym = symbol(item.get("symbol"))
    raw_side = item.get("side")
    letter = order_side_letter(raw_side)
    pos_side = item.get("positionSide")
    if pos_side not in POSITION_SIDES:
        raise RecordError(f"unknown positionSide {str(pos_side)[:20]!r}")
    side = POSITION_SIDES[pos_side] if pos_side != "BOTH" else liquidated_side_from_order(raw_side)
    oid = item.get("orderId")
    if isinstance(oid, bool) or not isinstance(oid, int) or oid < 0:
        raise RecordError("missing or invalid orderId")
    t = ms_any(item.get("updateTime", item.get("time")), "updateTime")
    avg = dec(item.get("avgPrice"), "avgPrice")
    price = dec(item.get("price"), "price")
    qty = dec(item.get("executedQty"), "executedQty")
    status = text(item.get("status"), "status", max_len=32)
    px = avg if avg else price
    liq = liq_row(
        symbol_=sym,
        time_ms=t,
        event_id=str(oid),
        raw_side=raw_side,
        side_meaning="order",
        liquidated_position_side=side,
        price=px,
        price_kind="avg" if avg else "order",
        order_price=price,
        qty=qty,
        qty_unit="base",
        size_base=qty,
        notional_usd=mul(qty, px),
        status=status,
        is_adl=kind == "ADL",
        account=account,
        item=item,
    )
    fill = None
    if qty:
        fill = fill_row(
            symbol_=sym,
            user=account,
            time_ms=t,
            fill_id=str(oid),
            tid=oid,
            oid=oid,
            side=letter,
            px=px,
            sz=qty,
            dir_=kind,
            is_liquidation=kind == "LIQUIDATION",
            is_liquidated_leg=kind == "LIQUIDATION",
            is_adl=kind == "ADL",
            cloid=text(item.get("clientOrderId"), "clientOrderId"),
        )
    return liq, fill


def adl_quantile_rows(item: WireAdlQuantile | Any, account: str, time_ms: int) -> list[dict[str, Any]]:
    """``adlQuantile`` item -> ``adl_ranks`` rows (LONG/SHORT/BOTH; the HEDGE key is only a flag)."""
    item = obj(item, "adlQuantile item")
    sym = symbol(item.get("symbol"))
    q = obj(item.get("adlQuantile"), "adlQuantile")
    rows = []
    for key, value in q.items():
        if key == "HEDGE":
            continue
        if key not in POSITION_SIDES:
            raise RecordError(f"unknown adlQuantile key {str(key)[:20]!r}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ADL_QUANTILE_MAX:
            raise RecordError(f"adlQuantile {key} out of range 0..{ADL_QUANTILE_MAX}")
        rows.append(
            {
                "kind": "account_rank",
                "account": account,
                "symbol": sym,
                "position_side": POSITION_SIDES[key],
                "time_ms": time_ms,
                "rank": value,
                "rank_max": ADL_QUANTILE_MAX,
                "percentile": value / ADL_QUANTILE_MAX,
                "raw_json": raw_json(item),
            }
        )
    return rows


def symbol_adl_risk_row(item: WireSymbolAdlRisk | Any) -> dict[str, Any]:
    item = obj(item, "symbolAdlRisk item")
    sym = symbol(item.get("symbol"))
    rating = item.get("adlRisk")
    rating = rating.lower() if isinstance(rating, str) else None
    if rating not in ADL_RISK_RATINGS:
        raise RecordError(f"unknown adlRisk {str(item.get('adlRisk'))[:20]!r}")
    return {
        "kind": "symbol_risk",
        "account": "",
        "symbol": sym,
        "position_side": "any",
        "time_ms": ms_any(item.get("updateTime"), "updateTime"),
        "rating": rating,
        "raw_json": raw_json(item),
    }


def insurance_rows(pool: WireInsurancePool | Any) -> list[dict[str, Any]]:
    """One insurance pool object -> one ``insurance_fund`` row per asset."""
    pool = obj(pool, "insuranceBalance pool")
    syms = pool.get("symbols")
    if not isinstance(syms, list) or not syms:
        raise RecordError("insuranceBalance pool has no symbols")
    names = sorted(symbol(s) for s in syms)
    assets = pool.get("assets")
    if not isinstance(assets, list) or not assets:
        raise RecordError("insuranceBalance pool has no assets")
    rows = []
    for a in assets:
        a = obj(a, "insuranceBalance asset")
        rows.append(
            {
                "pool": ",".join(names),
                "asset": symbol(a.get("asset"), "asset"),
                "kind": "balance",
                "time_ms": ms_any(a.get("updateTime"), "updateTime"),
                "balance": dec(a.get("marginBalance"), "marginBalance"),
                "symbols": ",".join(names),
            }
        )
    return rows


def market_row(premium: WirePremiumIndex | Any, open_interest: WireOpenInterest | Any | None) -> dict[str, Any]:
    """``premiumIndex`` (+ ``openInterest`` of the same symbol) -> ``cex_market`` row."""
    p = obj(premium, "premiumIndex")
    sym = symbol(p.get("symbol"))
    oi = None
    if open_interest is not None:
        o = obj(open_interest, "openInterest")
        if o.get("symbol") != sym:
            raise RecordError("openInterest symbol does not match premiumIndex")
        oi = dec(o.get("openInterest"), "openInterest")
    return {
        "symbol": sym,
        "time_ms": ms_any(p.get("time"), "time"),
        "mark_px": dec(p.get("markPrice"), "markPrice"),
        "index_px": dec(p.get("indexPrice"), "indexPrice", required=False),
        "funding_rate": dec(p.get("lastFundingRate"), "lastFundingRate", required=False),
        "open_interest": oi,
    }
