"""Hyperliquid's published formats and their normalization into the canonical tables, one module per
thing read:

* :mod:`.wire` — every wire shape as a TypedDict; :mod:`.constants` — enums and the vault addresses;
* :mod:`.node_fills` — ``node_fills_by_block`` lines and info-API fills (set-wise in DuckDB, with reasons);
  :mod:`.node_scan` — the compiled fast path for plain node lines;
* :mod:`.legacy` — legacy ``node_fills`` and ``node_trades`` lines, converted to by-block lines;
* :mod:`.misc_events` — ``misc_events_by_block`` (Funding, LedgerUpdate, staking and system events);
* :mod:`.ledger` — ledger delta types and rows (node LedgerUpdate and ``userNonFundingLedgerUpdates``);
* :mod:`.snapshot` — ``clearinghouseState`` JSONL; :mod:`.snapshot_export` — the clearinghouse export;
* :mod:`.asset_ctxs` — ``metaAndAssetCtxs``; :mod:`.asset_ctxs_archive` — the archive's per-minute CSV.

The package re-exports what the ingest uses, so callers write ``hl.snapshot_rows`` whatever the module.
"""

from forensics.formats.records import RAW_TEXT_LIMIT, RecordError, address, coin_name, dec, ms
from forensics.tables.model import rows_to_arrow

from .asset_ctxs import asset_ctx_rows, meta_and_asset_ctxs_rows
from .constants import LIQUIDATOR_VAULT, VENUE
from .ledger import ledger_rows
from .node_fills import (
    _BLOCK_STRUCT,
    _FILL_STRUCT,
    FillBatch,
    normalize_api_fills,
    normalize_large_block,
    normalize_node_lines,
    split_large_lines,
)
from .node_scan import ScannedLines, scan_node_lines
from .snapshot import snapshot_rows
from .wire import WireFill, WireNodeFillsBlock

__all__ = [
    "LIQUIDATOR_VAULT",
    "RAW_TEXT_LIMIT",
    "VENUE",
    "_BLOCK_STRUCT",
    "_FILL_STRUCT",
    "FillBatch",
    "RecordError",
    "ScannedLines",
    "WireFill",
    "WireNodeFillsBlock",
    "address",
    "asset_ctx_rows",
    "coin_name",
    "dec",
    "ledger_rows",
    "meta_and_asset_ctxs_rows",
    "ms",
    "normalize_api_fills",
    "normalize_large_block",
    "normalize_node_lines",
    "rows_to_arrow",
    "scan_node_lines",
    "snapshot_rows",
    "split_large_lines",
]
