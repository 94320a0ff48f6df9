"""Legacy node fill streams, converted to ``node_fills_by_block`` lines for the one fill normalizer.

* ``node_fills`` (2025-05-25 .. 2025-07-27): one ``[user, fill]`` pair per line, the fill as in §3; no block
  fields. Each line becomes a pseudo-block of one event with no block number (the replay then orders by
  time and tid).
* ``node_trades`` (2025-03-22 .. 2025-06-21, sparse): one trade per line, ``side_info[0]`` the buyer and
  ``side_info[1]`` the seller, ``side`` the aggressor's. Each trade becomes two fills: ``crossed = (leg side
  == trade side)``, ``startPosition = start_pos``, ``dir`` derived from ``start_pos`` and the side (spot:
  Buy/Sell), ``tid`` synthesized from a hash of (time, coin, px, sz, both oids) (top bit set, so it never
  equals a venue tid), ``time`` = the ISO time floored to ms. Fee, closedPnl and liquidation flags cannot be
  recovered from trades and stay NULL.

A trade line that cannot be converted is one quarantined record; a converted one is two fill records.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from forensics.formats.records import RecordError, node_time_ms

_TID_FLAG = 1 << 63


def pseudo_block(events: list[Any], block_time: str | None = None) -> str:
    body: dict[str, Any] = {"events": events}
    if block_time is not None:
        body["block_time"] = block_time
    return orjson.dumps(body).decode()


def node_fills_line(text: str) -> str:
    """One legacy ``[user, fill]`` line -> a block line with that one event (text is not re-encoded)."""
    return '{"events":[' + text + "]}"


def _is_spot(coin: str) -> bool:
    return coin.startswith("@") or "/" in coin


def derive_dir(coin: str, side: str, start: Decimal, sz: Decimal) -> str:
    if _is_spot(coin):
        return "Buy" if side == "B" else "Sell"
    if side == "B":
        if start >= 0:
            return "Open Long"
        return "Short > Long" if sz > -start else "Close Short"
    if start <= 0:
        return "Open Short"
    return "Long > Short" if sz > start else "Close Long"


def synthetic_tid(trade: dict[str, Any]) -> int:
    info = trade.get("side_info") or [{}, {}]
    key = "|".join(
        str(x)
        for x in (
            trade.get("time"),
            trade.get("coin"),
            trade.get("px"),
            trade.get("sz"),
            info[0].get("oid") if isinstance(info[0], dict) else None,
            info[1].get("oid") if len(info) > 1 and isinstance(info[1], dict) else None,
        )
    )
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") | _TID_FLAG


def trade_to_events(trade: Any) -> tuple[list[Any], str]:
    """A ``node_trades`` record -> (two ``[user, fill]`` events, block_time). Raises RecordError."""
    if not isinstance(trade, dict):
        raise RecordError("trade line is not a JSON object")
    info = trade.get("side_info")
    if not isinstance(info, list) or len(info) != 2 or not all(isinstance(s, dict) for s in info):
        raise RecordError("side_info is not a [buyer, seller] pair of objects")
    side = trade.get("side")
    if side not in ("A", "B"):
        raise RecordError("unknown side value")
    coin, px, sz = trade.get("coin"), trade.get("px"), trade.get("sz")
    if not isinstance(coin, str) or not isinstance(sz, str) or not isinstance(px, str):
        raise RecordError("coin, px or sz missing or not a string")
    time_ms = node_time_ms(trade.get("time"), "time")
    try:
        size = Decimal(sz)
    except InvalidOperation:
        raise RecordError("non-numeric sz") from None
    tid = synthetic_tid(trade)
    events = []
    for leg, s in zip(("B", "A"), info):
        try:
            start = Decimal(str(s.get("start_pos")))
        except InvalidOperation:
            raise RecordError("non-numeric start_pos") from None
        if not start.is_finite() or not size.is_finite():
            raise RecordError("non-finite start_pos or sz")
        fill = {
            "coin": coin,
            "px": px,
            "sz": sz,
            "side": leg,
            "time": time_ms,
            "startPosition": s.get("start_pos"),
            "dir": derive_dir(coin, leg, start, size),
            "hash": trade.get("hash"),
            "oid": s.get("oid"),
            "crossed": leg == side,
            "tid": tid,
            "twapId": s.get("twap_id"),
        }
        if s.get("cloid") is not None:
            fill["cloid"] = s.get("cloid")
        events.append([s.get("user"), fill])
    return events, trade["time"]


def node_trades_line(text: str) -> str:
    """One ``node_trades`` line -> a block line with its two legs. Raises RecordError with the reason."""
    try:
        trade = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise RecordError("malformed JSON line") from None
    events, block_time = trade_to_events(trade)
    return pseudo_block(events, block_time)
