"""The clearinghouse snapshot export used by the public Oct-10 reconstructions (reference §10).

Files (each one JSON array; names carry the snapshot's block and epoch ms):

* ``account_value_snapshot_<block>_<ms>.json``: ``[{user, account_value, total_long_notional, total_short_notional}]``
* ``perp_positions_by_market_<block>_<ms>.json``: ``[{market_name: "hyperliquid:COIN", snapshot_id, position_count,
  positions: [{user, size, notional_size, funding_pnl, entry_price, is_cross, leverage, liquidation_price,
  account_value}]}]``
* ``spot_balances__<block>_<ms>.json``: spot balances (schema unconfirmed; counted, not used for perp cash)

Numbers are JSON numbers (not strings); they are read exactly from their JSON text (``parse_float=Decimal``).
What the export does not carry is derived by these rules (docs/snapshot_export.md), and every derived row
says so in its ``derivation`` column:

* mark = ``notional_size / |size|``; unrealized PnL = ``size * (mark - entry_price)``;
* isolated margin (the position's own collateral, excluding PnL) = ``|size| * entry_price / leverage``
  (the initial margin of opening at the entry), so ``margin_used = that + unrealized PnL``; cross positions
  ``margin_used = notional / leverage``;
* ``account_value`` is taken as the whole account's equity, cross plus isolated (``scope="total"``, as
  HyperReplay and HyperMultiAssetedADL read it); ``scope="cross"`` instead adds each isolated position's
  derived equity to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, Literal, overload

from forensics.formats.records import RecordError, address, coin_name, dec

EXPORT_KINDS = ("account_values", "perp_positions", "spot_balances")
_NAME_TIME = re.compile(r"_(\d+)_(\d{13})\.json(?:\.lz4)?$")
_SNAPSHOT_ID = re.compile(r"custom_(\d{13})")
_DECODER = json.JSONDecoder(parse_float=Decimal)
_WS = " \t\r\n"

DERIVED_POSITION = "export: upnl = size*(notional/|size| - entry); cross margin = notional/leverage"
DERIVED_ISOLATED = (
    "export: upnl = size*(notional/|size| - entry); isolated margin = |size|*entry/leverage + upnl "
    "(collateral not in the export)"
)
DERIVED_ACCOUNT = "export: account_value as reported (scope total: cross + isolated equity)"
DERIVED_ACCOUNT_CROSS = "export: account_value = reported cross value + derived isolated equity (scope cross)"


class ExportError(ValueError):
    """The file is not a readable export array."""


#: how the reason of an item the file ends in starts (:func:`is_truncation`): the file was cut short
TRUNCATED = "truncated export"
#: what is left of a file cut inside a literal or a number (json reports "Expecting value" at its start)
_CUT_SCALAR = re.compile(r"-?[0-9.eE+-]*|t(r(ue?)?)?|f(a(l(se?)?)?)?|n(u(ll?)?)?")


def is_truncation(reason: str) -> bool:
    """True when an item's reason says the file ends before its array closes (an interrupted copy), not that
    the item is malformed."""
    return reason.startswith(TRUNCATED)


def _ends_inside(text: str, exc: json.JSONDecodeError) -> bool:
    """True when the parser ran out of ``text`` inside the value (the rest is an unterminated string, nothing
    at all, or the start of a literal or number) instead of meeting a character that cannot be there."""
    return exc.msg.startswith("Unterminated string") or bool(_CUT_SCALAR.fullmatch(text[exc.pos :].rstrip()))


def time_from_name(name: str) -> tuple[int | None, int | None]:
    """(block, epoch ms) from ``..._<block>_<ms>.json``; (None, None) when the name carries neither."""
    m = _NAME_TIME.search(name)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def iter_array_items(chunks: Iterable[bytes]) -> Iterator[tuple[int, Any, str | None]]:
    """Stream the items of one top-level JSON array from byte chunks, constant memory in the array's length:
    yields ``(index, item, None)``, or ``(index, None, reason)`` for an item that does not parse (then stops,
    since the array cannot be resynchronised). Raises ExportError when the text is not an array."""
    it = iter(chunks)
    buf = ""
    pos = 0
    started = False
    index = 0
    tail = b""
    exhausted = False

    def more() -> bool:
        nonlocal buf, pos, tail, exhausted
        if exhausted:
            return False
        try:
            chunk = next(it)
        except StopIteration:
            exhausted = True
            if tail:
                buf, pos = buf[pos:] + tail.decode("utf-8", "replace"), 0
                tail = b""
            return False
        data = tail + chunk
        cut = len(data)
        while cut > 0 and (data[cut - 1] & 0xC0) == 0x80:  # keep a split UTF-8 sequence for the next chunk
            cut -= 1
        if cut > 0 and data[cut - 1] >= 0xC0:
            cut -= 1
        tail = data[cut:]
        buf, pos = buf[pos:] + data[:cut].decode("utf-8", "replace"), 0
        return True

    while True:
        while pos < len(buf) and buf[pos] in _WS:
            pos += 1
        if pos >= len(buf):
            if more():
                continue
            if not started:
                raise ExportError("empty file: expected a JSON array")
            yield index, None, f"{TRUNCATED}: the array never closes"
            return
        ch = buf[pos]
        if not started:
            if ch != "[":
                raise ExportError("not a JSON array")
            started = True
            pos += 1
            continue
        if ch == "]":
            return
        if ch == ",":
            pos += 1
            continue
        try:
            item, end = _DECODER.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if more():
                continue
            if _ends_inside(buf, exc):
                yield index, None, f"{TRUNCATED}: the file ends inside item {index + 1}"
            else:
                yield index, None, f"malformed export item: {exc.msg}"
            return
        if end >= len(buf) and not exhausted:  # a number at the end may continue in the next chunk
            if more():
                continue
        pos = end
        yield index, item, None
        index += 1


@overload
def _num(value: Any, name: str, *, required: Literal[True] = ...) -> Decimal: ...
@overload
def _num(value: Any, name: str, *, required: bool) -> Decimal | None: ...
def _num(value: Any, name: str, *, required: bool = True) -> Decimal | None:
    if isinstance(value, bool):
        raise RecordError(f"non-numeric {name}")
    if isinstance(value, (int, Decimal)):
        value = str(value)
    return dec(value, name, required=required)


def account_row(item: Any, time_ms: int, *, scope: str = "total") -> dict[str, Any]:
    """One ``account_value_snapshot`` item -> an ``account_snapshots`` row (``positions`` filled in later)."""
    if not isinstance(item, dict):
        raise RecordError("account_value item is not an object")
    long_, short = (_num(item.get(k), k, required=False) for k in ("total_long_notional", "total_short_notional"))
    return {
        "user": address(item.get("user")),
        "time_ms": time_ms,
        "account_value": _num(item.get("account_value"), "account_value"),
        "total_ntl_pos": None if long_ is None and short is None else (long_ or 0) + (short or 0),
        "positions": 0,
        "derivation": DERIVED_ACCOUNT if scope == "total" else DERIVED_ACCOUNT_CROSS,
    }


def market_rows(item: Any, time_ms: int | None) -> tuple[int, list[dict[str, Any]], list[tuple[int, str, Any]]]:
    """One ``perp_positions_by_market`` item -> (snapshot ms, position rows, rejected positions as
    (index, reason, raw)). Raises RecordError when the market object itself is unusable."""
    if not isinstance(item, dict):
        raise RecordError("market item is not an object")
    name = item.get("market_name")
    if not isinstance(name, str) or not name:
        raise RecordError("missing market_name")
    coin = coin_name(name.split(":", 1)[1] if name.startswith("hyperliquid:") else name)
    m = _SNAPSHOT_ID.search(str(item.get("snapshot_id", "")))
    if time_ms is None and m:
        time_ms = int(m.group(1))
    if time_ms is None:
        raise RecordError("no snapshot time: neither the file name (_<block>_<ms>.json) nor snapshot_id has it")
    positions = item.get("positions")
    if not isinstance(positions, list):
        raise RecordError("market positions is not a list")
    rows, bad = [], []
    for k, p in enumerate(positions, start=1):
        try:
            rows.append(position_row(p, coin, time_ms))
        except RecordError as exc:
            bad.append((k, str(exc), p))
    return time_ms, rows, bad


def position_row(p: Any, coin: str, time_ms: int) -> dict[str, Any]:
    if not isinstance(p, dict):
        raise RecordError("position is not an object")
    size = _num(p.get("size"), "size")
    if size == 0:
        raise RecordError("position size is zero")
    notional = _num(p.get("notional_size"), "notional_size")
    entry = _num(p.get("entry_price"), "entry_price")
    lev = p.get("leverage")
    if isinstance(lev, bool) or not isinstance(lev, (int, Decimal)) or lev <= 0 or lev != int(lev):
        raise RecordError("leverage is not a positive integer")
    is_cross = p.get("is_cross")
    if not isinstance(is_cross, bool):
        raise RecordError("is_cross is not a boolean")
    mark = abs(notional / size)
    upnl = size * (mark - entry)
    margin = notional / int(lev) if is_cross else abs(size) * entry / int(lev) + upnl
    q = dec  # the lake's 10-decimal scale
    return {
        "user": address(p.get("user")),
        "time_ms": time_ms,
        "coin": coin,
        "szi": size,
        "entry_px": entry,
        "position_value": abs(notional),
        "unrealized_pnl": q(str(upnl), "unrealized_pnl"),
        "liquidation_px": _num(p.get("liquidation_price"), "liquidation_price", required=False),
        "margin_used": q(str(margin), "margin_used"),
        "leverage_type": "cross" if is_cross else "isolated",
        "leverage": int(lev),
        "cum_funding_since_open": _num(p.get("funding_pnl"), "funding_pnl", required=False),
        "derivation": DERIVED_POSITION if is_cross else DERIVED_ISOLATED,
    }


def sniff_export(item: Any) -> str | None:
    """Which export file a first array item belongs to (by its fields), or None."""
    if not isinstance(item, dict):
        return None
    if "market_name" in item and "positions" in item:
        return "perp_positions"
    if "account_value" in item and "user" in item and "size" not in item:
        return "account_values"
    if "user" in item and any(k in item for k in ("balances", "token", "coin", "total", "hold")):
        return "spot_balances"
    return None
