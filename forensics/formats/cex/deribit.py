"""Deribit wire shapes and normalizers (venue-apis.md §6).

A trade is a liquidation when it carries ``liquidation`` ∈ {M, T, MT}: M = the maker side was under
liquidation, T = the taker side, MT = both. ``direction`` is the taker's side, so T -> the order side is
``direction`` and M -> the opposite. ``amount`` is USD for inverse perpetuals (BTC-PERPETUAL) and base
units for linear USDC/USDT ones (``BTC_USDC-PERPETUAL``). Bankruptcy settlements (funded by the
insurance fund, socialized losses) go to ``insurance_fund``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, NotRequired, TypedDict

from forensics.formats.cex.common import (
    RecordError,
    dec,
    div,
    fill_row,
    liq_row,
    liquidated_side_from_order,
    ms_any,
    mul,
    obj,
    order_side_letter,
    symbol,
    text,
)

VENUE = "deribit"
LIQUIDATION_FLAGS = frozenset({"M", "T", "MT"})


class WireTrade(TypedDict):
    trade_seq: int
    trade_id: str
    timestamp: int
    tick_direction: int
    price: float
    mark_price: NotRequired[float]
    index_price: float
    instrument_name: str
    direction: Literal["buy", "sell"]
    amount: float
    contracts: NotRequired[float]
    liquidation: NotRequired[Literal["M", "T", "MT"]]


class WireSettlement(TypedDict):
    type: Literal["bankruptcy", "settlement", "delivery"]
    timestamp: int
    funded: float
    session_bankrupcy: float  # sic
    session_profit_loss: float
    session_tax: float
    session_tax_rate: float
    socialized: float


def is_linear(instrument: str) -> bool:
    return "_USDC" in instrument or "_USDT" in instrument


def is_liquidation(trade: Any) -> bool:
    return isinstance(trade, dict) and "liquidation" in trade


def trade_row(trade: WireTrade | Any) -> dict[str, Any]:
    """A liquidation trade -> ``cex_liquidations`` row. Call only when :func:`is_liquidation`."""
    trade = obj(trade, "trade")
    flag = trade.get("liquidation")
    if flag not in LIQUIDATION_FLAGS:
        raise RecordError(f"unknown liquidation flag {str(flag)[:10]!r}")
    inst = symbol(trade.get("instrument_name"), "instrument_name")
    direction = trade.get("direction")
    taker_pos = liquidated_side_from_order(direction)  # taker sold -> taker was long
    side = {"T": taker_pos, "M": "short" if taker_pos == "long" else "long", "MT": "both"}[flag]
    px = dec(trade.get("price"), "price")
    amount = dec(trade.get("amount"), "amount")
    base: Decimal | None
    if is_linear(inst):
        unit, base, usd = "base", amount, mul(amount, px)
    else:
        unit, base, usd = "usd", div(amount, px), amount
    return liq_row(
        symbol_=inst,
        time_ms=ms_any(trade.get("timestamp"), "timestamp"),
        event_id=text(trade.get("trade_id"), "trade_id", max_len=64),
        raw_side=f"{direction}:{flag}",
        side_meaning="taker",
        liquidated_position_side=side,
        price=px,
        price_kind="fill",
        qty=amount,
        qty_unit=unit,
        size_base=base,
        notional_usd=usd,
        item=trade,
        status="filled",
    )


def settlement_row(item: WireSettlement | Any, instrument: str) -> dict[str, Any]:
    """A ``type=bankruptcy`` settlement -> ``insurance_fund`` row (change = -funded)."""
    item = obj(item, "settlement")
    if item.get("type") != "bankruptcy":
        raise RecordError(f"unexpected settlement type {str(item.get('type'))[:20]!r}")
    inst = symbol(instrument, "instrument_name")
    funded = dec(item.get("funded"), "funded")
    return {
        "pool": inst,
        "asset": inst.split("-")[0].split("_")[0],
        "kind": "bankruptcy",
        "time_ms": ms_any(item.get("timestamp"), "timestamp"),
        "change": -funded,
        "socialized_loss": dec(item.get("socialized"), "socialized", required=False),
    }


# --- own account (``public/auth`` client credentials, then ``Authorization: Bearer``) ---------------------


class WireUserTrade(TypedDict):
    trade_id: str
    trade_seq: int
    timestamp: int
    instrument_name: str
    direction: Literal["buy", "sell"]
    amount: float
    price: float
    order_id: str
    fee: NotRequired[float]
    liquidity: NotRequired[Literal["M", "T"]]
    liquidation: NotRequired[Literal["M", "T", "MT"]]


class WirePosition(TypedDict):
    instrument_name: str
    size: float
    direction: Literal["buy", "sell", "zero"]
    average_price: float
    estimated_liquidation_price: NotRequired[float | None]
    leverage: NotRequired[int]
    floating_profit_loss: NotRequired[float]
    kind: str


def user_trade_rows(trade: WireUserTrade | Any, account: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Own trade -> (``cex_liquidations`` row when it carries ``liquidation`` — the account's side was the one
    liquidated when its ``liquidity`` letter is in the flag — else None, ``fills`` row)."""
    trade = obj(trade, "user trade")
    inst = symbol(trade.get("instrument_name"), "instrument_name")
    direction = trade.get("direction")
    flag = trade.get("liquidation")
    if flag is not None and flag not in LIQUIDATION_FLAGS:
        raise RecordError(f"unknown liquidation flag {str(flag)[:10]!r}")
    mine = flag is not None and (trade.get("liquidity") or "T") in flag
    trade_id = text(trade.get("trade_id"), "trade_id", max_len=64)
    t = ms_any(trade.get("timestamp"), "timestamp")
    px = dec(trade.get("price"), "price")
    amount = dec(trade.get("amount"), "amount")
    unit, base, usd = ("base", amount, mul(amount, px)) if is_linear(inst) else ("usd", div(amount, px), amount)
    fill = fill_row(
        symbol_=inst,
        user=account,
        time_ms=t,
        fill_id=trade_id,
        hash_=text(trade.get("order_id"), "order_id", required=False, max_len=64),
        side=order_side_letter(direction),
        px=px,
        sz=amount,
        dir_=f"trade:{flag}" if flag else "trade",
        is_liquidation=flag is not None,
        is_liquidated_leg=mine,
        is_adl=False,
        fee=dec(trade.get("fee"), "fee", required=False),
    )
    liq = None
    if mine:
        liq = liq_row(
            symbol_=inst,
            time_ms=t,
            event_id=trade_id,
            raw_side=f"{direction}:{flag}",
            side_meaning="order",
            liquidated_position_side=liquidated_side_from_order(direction),
            price=px,
            price_kind="fill",
            qty=amount,
            qty_unit=unit,
            size_base=base,
            notional_usd=usd,
            item=trade,
            status="filled",
            account=account,
        )
    return liq, fill


def position_row(item: WirePosition | Any, account: str, time_ms: int) -> dict[str, Any] | None:
    """Own position -> ``position_snapshots`` row (``size`` signed, USD for inverse contracts), None when flat."""
    item = obj(item, "position")
    inst = symbol(item.get("instrument_name"), "instrument_name")
    size = dec(item.get("size"), "size")
    if not size:
        return None
    lev = item.get("leverage")
    return {
        "user": account,
        "coin": inst,
        "time_ms": time_ms,
        "szi": size,
        "entry_px": dec(item.get("average_price"), "average_price", required=False),
        "unrealized_pnl": dec(item.get("floating_profit_loss"), "floating_profit_loss", required=False),
        "liquidation_px": dec(item.get("estimated_liquidation_price"), "estimated_liquidation_price", required=False),
        "leverage_type": "cross",
        "leverage": lev if isinstance(lev, int) and not isinstance(lev, bool) else None,
    }
