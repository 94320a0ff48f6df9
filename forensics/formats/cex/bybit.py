"""Bybit v5 wire shapes and normalizers (venue-apis.md §3).

Side convention: ``allLiquidation.S`` is the **liquidated position's** side (``Buy`` = a long was
liquidated), the opposite of Binance. Own executions (``execType`` BustTrade / AdlTrade) carry the
order side. Linear sizes are base-coin units; times are ms ints or ms strings.
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
    liquidated_side_from_position,
    ms_any,
    mul,
    obj,
    order_side_letter,
    raw_json,
    symbol,
    text,
)

VENUE = "bybit"
ADL_RANK_MAX = 5
EXEC_TYPES = frozenset(
    {
        "Trade",
        "AdlTrade",
        "Funding",
        "BustTrade",
        "Delivery",
        "Settle",
        "BlockTrade",
        "MovePosition",
        "FutureSpread",
        "CorporateAction",
        "ForwardSplitSettle",
        "ReverseSplitSettle",
        "Dividend",
        "UNKNOWN",
    }
)


class WireEnvelope(TypedDict):
    retCode: int
    retMsg: str
    result: dict[str, Any]
    retExtInfo: dict[str, Any]
    time: int


class WireAllLiquidationItem(TypedDict):
    T: int
    s: str
    S: Literal["Buy", "Sell"]
    v: str
    p: str


class WireAllLiquidation(TypedDict):
    topic: str
    type: str
    ts: int
    data: list[WireAllLiquidationItem]


class WireExecution(TypedDict):
    symbol: str
    side: Literal["Buy", "Sell"]
    orderId: str
    execId: str
    execTime: str
    execType: str
    execPrice: str
    execQty: str
    execValue: str
    execFee: str
    markPrice: str
    isMaker: bool
    orderLinkId: NotRequired[str]
    closedSize: NotRequired[str]


class WirePosition(TypedDict):
    symbol: str
    side: Literal["Buy", "Sell", ""]
    size: str
    avgPrice: str
    positionValue: str
    markPrice: str
    unrealisedPnl: str
    liqPrice: str
    leverage: str
    tradeMode: int
    adlRankIndicator: int
    positionIdx: int
    updatedTime: str


class WireInsuranceItem(TypedDict):
    coin: str
    symbols: str
    balance: str
    value: str


class WireAdlAlertItem(TypedDict):
    """REST ``/v5/market/adlAlert`` list item (names per docs prose; nesting UNCONFIRMED)."""

    coin: str
    symbol: str
    balance: str
    maxBalance: str
    insurancePnlRatio: str
    pnlRatio: str
    adlTriggerThreshold: str
    adlStopRatio: str


def all_liquidation_rows(msg: WireAllLiquidation | Any) -> list[dict[str, Any]]:
    """WS ``allLiquidation.{symbol}`` message -> ``cex_liquidations`` rows (position-side convention)."""
    msg = obj(msg, "allLiquidation message")
    data = msg.get("data")
    if not isinstance(data, list):
        raise RecordError("allLiquidation data is not a list")
    return [all_liquidation_row(d) for d in data]


def all_liquidation_row(d: WireAllLiquidationItem | Any) -> dict[str, Any]:
    d = obj(d, "allLiquidation item")
    sym = symbol(d.get("s"))
    raw_side = d.get("S")
    side = liquidated_side_from_position(raw_side)
    t = ms_any(d.get("T"), "T")
    qty = dec(d.get("v"), "v")
    px = dec(d.get("p"), "p")
    return liq_row(
        symbol_=sym,
        time_ms=t,
        event_id=event_hash(sym, t, raw_side, d.get("v"), d.get("p")),
        raw_side=raw_side,
        side_meaning="position",
        liquidated_position_side=side,
        price=px,
        price_kind="bankruptcy",
        qty=qty,
        qty_unit="base",
        size_base=qty,
        notional_usd=mul(qty, px),
        item=d,
    )


def execution_rows(item: WireExecution | Any, account: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Own execution -> (``cex_liquidations`` row for BustTrade/AdlTrade else None, ``fills`` row)."""
    item = obj(item, "execution item")
    et = item.get("execType")
    if et not in EXEC_TYPES:
        raise RecordError(f"unknown execType {str(et)[:20]!r}")
    sym = symbol(item.get("symbol"))
    raw_side = item.get("side")
    letter = order_side_letter(raw_side)
    exec_id = text(item.get("execId"), "execId", max_len=64)
    order_id = text(item.get("orderId"), "orderId", required=False, max_len=64)
    t = ms_any(item.get("execTime"), "execTime")
    px = dec(item.get("execPrice"), "execPrice")
    qty = dec(item.get("execQty"), "execQty")
    mark = dec(item.get("markPrice"), "markPrice", required=False) if item.get("markPrice") else None
    fee = dec(item.get("execFee"), "execFee", required=False) if item.get("execFee") else None
    is_liq, is_adl = et == "BustTrade", et == "AdlTrade"
    fill = fill_row(
        symbol_=sym,
        user=account,
        time_ms=t,
        fill_id=exec_id,
        hash_=order_id,
        side=letter,
        px=px,
        sz=qty,
        dir_=et,
        is_liquidation=is_liq,
        is_liquidated_leg=is_liq,
        is_adl=is_adl,
        fee=fee,
        crossed=(not item["isMaker"]) if isinstance(item.get("isMaker"), bool) else None,
        mark_px=mark,
        cloid=text(item.get("orderLinkId"), "orderLinkId", required=False, max_len=64),
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
            qty_unit="base",
            size_base=qty,
            notional_usd=mul(qty, px),
            is_adl=is_adl,
            account=account,
            item=item,
            status="Filled",
        )
    return liq, fill


def position_rows(item: WirePosition | Any, account: str, time_ms: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Own position -> (``adl_ranks`` row, ``position_snapshots`` row or None when flat)."""
    item = obj(item, "position item")
    sym = symbol(item.get("symbol"))
    rank = item.get("adlRankIndicator")
    if isinstance(rank, str) and rank.isdigit():
        rank = int(rank)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= ADL_RANK_MAX:
        raise RecordError(f"adlRankIndicator out of range 0..{ADL_RANK_MAX}")
    side_raw = item.get("side")
    if side_raw not in ("Buy", "Sell", "", "None", None):
        raise RecordError(f"unknown position side {str(side_raw)[:20]!r}")
    side = {"Buy": "long", "Sell": "short"}.get(side_raw or "", "both")
    size = dec(item.get("size"), "size")
    signed = -size if side == "short" else size
    rank_row = {
        "kind": "account_rank",
        "account": account,
        "symbol": sym,
        "position_side": side,
        "time_ms": time_ms,
        "rank": rank,
        "rank_max": ADL_RANK_MAX,
        "percentile": rank / ADL_RANK_MAX,
        "position_size": signed,
        "raw_json": raw_json(item),
    }
    pos = None
    if size:
        trade_mode = item.get("tradeMode")
        lev = item.get("leverage")
        pos = {
            "user": account,
            "coin": sym,
            "time_ms": time_ms,
            "szi": signed,
            "entry_px": dec(item.get("avgPrice"), "avgPrice", required=False),
            "position_value": dec(item.get("positionValue") or None, "positionValue", required=False),
            "unrealized_pnl": dec(item.get("unrealisedPnl") or None, "unrealisedPnl", required=False),
            "liquidation_px": dec(item.get("liqPrice") or None, "liqPrice", required=False),
            "leverage_type": "isolated" if trade_mode == 1 else "cross",
            "leverage": int(float(lev)) if isinstance(lev, str) and lev.replace(".", "", 1).isdigit() else None,
        }
    return rank_row, pos


def insurance_rows(result: dict[str, Any] | Any) -> list[dict[str, Any]]:
    """``/v5/market/insurance`` result -> ``insurance_fund`` rows (one per pool)."""
    result = obj(result, "insurance result")
    t = ms_any(result.get("updatedTime"), "updatedTime")
    items = result.get("list")
    if not isinstance(items, list):
        raise RecordError("insurance list is not a list")
    return [insurance_row(i, t) for i in items]


def insurance_row(item: WireInsuranceItem | Any, time_ms: int) -> dict[str, Any]:
    item = obj(item, "insurance item")
    syms = item.get("symbols")
    if not isinstance(syms, str):
        raise RecordError("insurance symbols is not a string")
    names = sorted(symbol(s.strip()) for s in syms.split(",") if s.strip()) if syms else []
    return {
        "pool": ",".join(names) or "(all)",
        "asset": symbol(item.get("coin"), "coin"),
        "kind": "balance",
        "time_ms": time_ms,
        "balance": dec(item.get("balance"), "balance"),
        "balance_usd": dec(item.get("value"), "value", required=False),
        "symbols": ",".join(names),
    }


def adl_alert_row(item: WireAdlAlertItem | Any, time_ms: int) -> dict[str, Any]:
    """REST adlAlert item (or WS item with short keys c/s/b/mb/i_pr/pr/adl_tt/adl_sr) -> ``adl_alerts`` row."""
    item = obj(item, "adlAlert item")
    if "s" in item and "symbol" not in item:  # WS short keys
        item = {
            "coin": item.get("c"),
            "symbol": item.get("s"),
            "balance": item.get("b"),
            "maxBalance": item.get("mb"),
            "insurancePnlRatio": item.get("i_pr"),
            "pnlRatio": item.get("pr"),
            "adlTriggerThreshold": item.get("adl_tt"),
            "adlStopRatio": item.get("adl_sr"),
        }
    bal = dec(item.get("balance"), "balance")
    ipr = dec(item.get("insurancePnlRatio"), "insurancePnlRatio")
    pr = dec(item.get("pnlRatio"), "pnlRatio")
    tt = dec(item.get("adlTriggerThreshold"), "adlTriggerThreshold")
    return {
        "symbol": symbol(item.get("symbol")),
        "coin": symbol(item.get("coin"), "coin"),
        "time_ms": time_ms,
        "balance": bal,
        "max_balance": dec(item.get("maxBalance"), "maxBalance", required=False),
        "insurance_pnl_ratio": ipr,
        "pnl_ratio": pr,
        "adl_trigger_threshold": tt,
        "adl_stop_ratio": dec(item.get("adlStopRatio"), "adlStopRatio", required=False),
        "adl_triggered": bool(pr <= ipr and bal < tt),
    }
