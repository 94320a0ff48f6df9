"""``hyperliquid-archive/asset_ctxs/<YYYYMMDD>.csv(.lz4)``: one row per (minute, coin) (reference §8).

Header ``time,coin,funding,open_interest,prev_day_px,day_ntl_vlm,premium,oracle_px,mark_px,mid_px,
impact_bid_px,impact_ask_px``; ``time`` is ``2024-01-01T00:00:00Z``; values are unquoted decimals (exact
from their text). Columns are found by name, so an added or reordered column does not shift values. A row
is one ``asset_ctxs`` row; rows that do not parse are quarantined with the reason.

The archive has one mark per minute: inside a minute the replay takes marks from ``liquidation.markPx``
of liquidation/ADL legs, then trade prices (``forensics.reconstruct.marks``; candidates carry ``mark_source``).
"""

from __future__ import annotations

import csv
from typing import Any

from forensics.formats.records import RecordError, coin_name, dec, node_time_ms

REQUIRED = ("time", "coin", "mark_px")
_OPTIONAL = {
    "funding": "funding",
    "open_interest": "open_interest",
    "prev_day_px": "prev_day_px",
    "day_ntl_vlm": "day_ntl_vlm",
    "premium": "premium",
    "oracle_px": "oracle_px",
    "mid_px": "mid_px",
    "impact_bid_px": "impact_bid_px",
    "impact_ask_px": "impact_ask_px",
}
#: the archive's cadence: one observation per coin per minute
ARCHIVE_CADENCE_MS = 60_000


def parse_header(line: str) -> list[str]:
    """Column names of a header line; raises RecordError naming what is missing."""
    names = [c.strip() for c in next(csv.reader([line]))]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise RecordError(f"asset_ctxs CSV header lacks {', '.join(missing)}")
    return names


def is_archive_header(line: str) -> bool:
    try:
        parse_header(line)
    except (RecordError, StopIteration, csv.Error):
        return False
    return True


def row(names: list[str], line: str) -> dict[str, Any]:
    """One CSV data line -> an ``asset_ctxs`` row. Raises RecordError with the reason."""
    try:
        values = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        raise RecordError("malformed CSV line") from None
    if len(values) != len(names):
        raise RecordError(f"CSV line has {len(values)} fields, header has {len(names)}")
    v = dict(zip(names, values))
    out: dict[str, Any] = {
        "coin": coin_name(v["coin"]),
        "time_ms": node_time_ms(v["time"], "time"),
        "mark_px": dec(v["mark_px"] or None, "mark_px"),
    }
    if out["mark_px"] <= 0:
        raise RecordError("mark_px is not positive")
    for col, target in _OPTIONAL.items():
        out[target] = dec(v.get(col) or None, col, required=False)
    return out
