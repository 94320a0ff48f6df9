"""Pure normalizers of CEX wire formats into the canonical tables (one module per venue).

Each venue module defines its wire shapes as TypedDicts and functions ``item -> row dict(s)`` that raise
:class:`RecordError` with a reason for anything they cannot normalize (malformed items, unknown enums,
hostile symbols). Row dicts carry ``time_ms``; :func:`rows_to_arrow` derives ``time`` and ``date``.
No I/O here: the pull and capture code lives in ``pipelines.ingest``.
"""

from forensics.formats.cex import binance, bitmex, bybit, deribit, dydx, okx
from forensics.formats.cex.common import RecordError, rows_to_arrow

NORMALIZERS = {m.VENUE: m for m in (binance, bybit, okx, bitmex, deribit, dydx)}

__all__ = ["NORMALIZERS", "RecordError", "binance", "bitmex", "bybit", "deribit", "dydx", "okx", "rows_to_arrow"]
