"""Shared helpers of the CEX normalizers: exact decimals, venue time formats, safe symbols, side rules.

Pure functions (no I/O, no httpx/dagster). Every helper raises :class:`RecordError` with a short reason
that the ingest stores in ``quarantine``.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Any, Literal, overload

import orjson

from forensics.formats import records
from forensics.formats.records import RAW_TEXT_LIMIT, RecordError, dec
from forensics.tables.model import rows_to_arrow

__all__ = [
    "RecordError",
    "dec",
    "event_hash",
    "iso_ms",
    "liquidated_side_from_order",
    "liquidated_side_from_position",
    "ms_any",
    "raw_json",
    "rows_to_arrow",
    "surrogate_tid",
    "symbol",
    "text",
]

_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MS_MIN, _MS_MAX = 946_684_800_000, 4_102_444_800_000  # 2000-01-01 .. 2100-01-01
RAW_LIMIT = RAW_TEXT_LIMIT


def symbol(value: Any, field: str = "symbol") -> str:
    """A venue instrument name; anything that could shape a path or markup (``../x``, ``<b>``) is rejected."""
    if not isinstance(value, str) or not value:
        raise RecordError(f"missing or invalid {field}")
    if not _SYMBOL.match(value) or ".." in value:
        raise RecordError(f"hostile or malformed {field} {value[:40]!r}")
    return value


@overload
def text(value: Any, field: str, *, required: Literal[True] = ..., max_len: int = ...) -> str: ...
@overload
def text(value: Any, field: str, *, required: bool, max_len: int = ...) -> str | None: ...
def text(value: Any, field: str, *, required: bool = True, max_len: int = 128) -> str | None:
    """A short text field as given (ids, statuses); None only when not required."""
    if value is None or value == "":
        if required:
            raise RecordError(f"missing {field}")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise RecordError(f"invalid {field}")
    s = str(value)
    if len(s) > max_len or any(ch in s for ch in "<>\x00"):
        raise RecordError(f"hostile or malformed {field}")
    return s


def ms_any(value: Any, field: str = "time") -> int:
    """Epoch ms from an int or a digit string (Binance/Bybit/OKX/Deribit), range-checked."""
    if isinstance(value, bool):
        raise RecordError(f"{field} is not epoch milliseconds")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not (_MS_MIN <= value <= _MS_MAX):
        raise RecordError(f"{field} is not epoch milliseconds")
    return value


def iso_ms(value: Any, field: str = "timestamp") -> int:
    """Epoch ms from an ISO-8601 string (BitMEX, dYdX: ``2025-07-25T05:11:09.800Z``), within 2000-2100."""
    try:
        out = records.iso_ms(value, field)
    except RecordError:
        raise RecordError(f"{field} is not an ISO-8601 time") from None
    if not (_MS_MIN <= out <= _MS_MAX):
        raise RecordError(f"{field} out of range")
    return out


def liquidated_side_from_order(raw_side: Any) -> str:
    """Order-side convention (Binance, OKX side, BitMEX, dYdX): SELL closes a long."""
    s = raw_side.lower() if isinstance(raw_side, str) else None
    if s == "sell":
        return "long"
    if s == "buy":
        return "short"
    raise RecordError(f"unknown side {str(raw_side)[:20]!r}")


def liquidated_side_from_position(raw_side: Any) -> str:
    """Position-side convention (Bybit allLiquidation ``S``): Buy = a long was liquidated."""
    s = raw_side.lower() if isinstance(raw_side, str) else None
    if s == "buy":
        return "long"
    if s == "sell":
        return "short"
    raise RecordError(f"unknown side {str(raw_side)[:20]!r}")


def order_side_letter(raw_side: Any) -> str:
    """Fills convention: 'B' (owner bought) / 'A' (owner sold)."""
    s = raw_side.lower() if isinstance(raw_side, str) else None
    if s == "buy":
        return "B"
    if s == "sell":
        return "A"
    raise RecordError(f"unknown side {str(raw_side)[:20]!r}")


def raw_json(item: Any) -> str:
    text_ = orjson.dumps(item, default=str, option=orjson.OPT_SORT_KEYS).decode()
    return text_[:RAW_LIMIT]


def event_hash(*parts: Any) -> str:
    """A stable id for records the venue gives no id (OKX details, Bybit allLiquidation)."""
    return "h:" + hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]


def surrogate_tid(fill_id: str) -> int:
    """A 60-bit number from a textual id, for ``fills.tid`` when the venue's trade id is not numeric."""
    if fill_id.isdigit() and int(fill_id) < 2**64:
        return int(fill_id)
    return int(hashlib.sha256(fill_id.encode()).hexdigest()[:15], 16)


def mul(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None:
        return None
    return (a * b).quantize(Decimal("1e-10"))


def div(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None or b == 0:
        return None
    return (a / b).quantize(Decimal("1e-10"))


def obj(item: Any, what: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RecordError(f"{what} is not a JSON object")
    return item


def fill_row(
    *,
    symbol_: str,
    user: str,
    time_ms: int,
    fill_id: str,
    side: str,
    px: Decimal,
    sz: Decimal,
    dir_: str,
    is_liquidation: bool,
    is_liquidated_leg: bool,
    is_adl: bool,
    oid: int | None = None,
    hash_: str | None = None,
    tid: int | None = None,
    closed_pnl: Decimal | None = None,
    fee: Decimal | None = None,
    fee_token: str | None = None,
    crossed: bool | None = None,
    mark_px: Decimal | None = None,
    cloid: str | None = None,
) -> dict[str, Any]:
    """A row of the shared ``fills`` table for a CEX own-account fill.

    CEX conventions: ``user`` is the own-account label; ``fill_id`` the venue's execution/order/bill id;
    ``tid`` the numeric trade id, or a 60-bit hash of ``fill_id`` when the venue's id is not numeric (so
    views that group legs by tid stay correct); ``oid`` the numeric order id; ``hash`` the venue's
    non-numeric order id (Bybit/OKX UUIDs); ``dir`` the venue's own type text ('LIQUIDATION', 'ADL',
    'BustTrade', 'AdlTrade', 'bill:5/104', 'LIQUIDATED', ...).
    """
    return {
        "coin": symbol_,
        "user": user,
        "time_ms": time_ms,
        "tid": tid if tid is not None else surrogate_tid(fill_id),
        "fill_id": fill_id,
        "oid": oid,
        "hash": hash_,
        "side": side,
        "px": px,
        "sz": sz,
        "dir": dir_,
        "closed_pnl": closed_pnl,
        "fee": fee,
        "fee_token": fee_token,
        "crossed": crossed,
        "cloid": cloid,
        "is_liquidation": is_liquidation,
        "is_liquidated_leg": is_liquidated_leg,
        "liquidation_mark_px": mark_px,
        "is_adl": is_adl,
    }


def liq_row(
    *,
    symbol_: str,
    time_ms: int,
    event_id: str,
    raw_side: Any,  # as the venue sent it; each normalizer has checked it with its side rule
    side_meaning: str,
    liquidated_position_side: str,
    price: Decimal,
    price_kind: str,
    qty: Decimal,
    qty_unit: str,
    size_base: Decimal | None,
    notional_usd: Decimal | None,
    item: Any,
    contract_value: Decimal | None = None,
    order_price: Decimal | None = None,
    status: str | None = None,
    is_adl: bool = False,
    loss_usd: Decimal | None = None,
    account: str | None = None,
    time_source: str = "exchange",
) -> dict[str, Any]:
    """A ``cex_liquidations`` row (see forensics.tables.cex for units and side conventions)."""
    return {
        "symbol": symbol_,
        "time_ms": time_ms,
        "time_source": time_source,
        "event_id": event_id,
        "raw_side": raw_side,
        "side_meaning": side_meaning,
        "liquidated_position_side": liquidated_position_side,
        "price": price,
        "price_kind": price_kind,
        "order_price": order_price,
        "qty": qty,
        "qty_unit": qty_unit,
        "contract_value": contract_value,
        "size_base": size_base,
        "notional_usd": notional_usd,
        "status": status,
        "is_adl": is_adl,
        "loss_usd": loss_usd,
        "account": account,
        "raw_json": raw_json(item),
    }
