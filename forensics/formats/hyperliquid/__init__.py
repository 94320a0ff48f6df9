"""Hyperliquid wire shapes and their normalization into the canonical tables, one module per source role:

* :mod:`.node_fills` — ``node_fills_by_block`` lines and info-API fills (set-wise in DuckDB), clearinghouseState
  and metaAndAssetCtxs JSONL, API ledger items;
* :mod:`.misc_events` — ``misc_events_by_block`` (Funding, LedgerUpdate, staking and system events);
* :mod:`.legacy` — legacy ``node_fills`` and ``node_trades`` lines, converted to by-block lines;
* :mod:`.snapshot_export` — the clearinghouse snapshot export (account values, positions by market);
* :mod:`.asset_ctxs_archive` — the archive's per-minute ``asset_ctxs`` CSV.
"""

from .node_fills import (  # noqa: F401  (re-exported: the package keeps the old module's names)
    _BLOCK_STRUCT,
    _FILL_STRUCT,
    ACCOUNT_SNAPSHOTS,
    ASSET_CTXS,
    FILLS,
    POSITION_SNAPSHOTS,
    RAW_TEXT_LIMIT,
    VENUE,
    FillBatch,
    RecordError,
    WireFill,
    WireNodeFillsBlock,
    _plain_node_fills,
    address,
    asset_ctx_rows,
    coin_name,
    dec,
    ledger_rows,
    meta_and_asset_ctxs_rows,
    ms,
    normalize_api_fills,
    normalize_large_block,
    normalize_node_lines,
    rows_to_arrow,
    snapshot_rows,
    split_large_lines,
)
