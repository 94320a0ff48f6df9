"""Canonical lake tables: one place that says what every column means and in what unit.

Conventions, for every table:

* Times are UTC. ``*_ms`` columns are epoch milliseconds (BIGINT); ``TIMESTAMP`` columns are naive
  UTC (DuckDB/Dagster partition slicing breaks on ``TIMESTAMPTZ``, dagster #30171).
* Money, prices and sizes are exact ``DECIMAL(38,10)`` (products such as px x sz stay in range) parsed from the venue's decimal strings; never
  floats in the lake. Analysis code casts to float where it needs speed.
* Sizes are in base-coin units and signed where the name says so (``start_position``, ``szi``).
* USD means the venue's quote collateral (USDC on Hyperliquid).
* Every normalized table is hive-partitioned by ``venue=`` and ``date=`` (UTC day of the row's
  event time); neither is ever taken from a free-text field of the data.

The same ``Table`` objects generate the Arrow schemas the writers enforce, the typed empty views the
catalog falls back to, and the column documentation (``liqf schema``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

DECIMAL = "DECIMAL(38,10)"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "UBIGINT": pa.uint64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP_NS": pa.timestamp("ns"),
    DECIMAL: pa.decimal128(38, 10),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str
    nullable: bool = True

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    # "normalized": written by ingest; "derived": a catalog view over normalized tables
    layer: str = "normalized"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns])

    def empty_select_sql(self) -> str:
        """A typed, empty SELECT with this table's columns (catalog fallback when no file exists yet)."""
        cols = ", ".join(f"CAST(NULL AS {c.type}) AS {quote_ident(c.name)}" for c in self.columns)
        return f"SELECT {cols} WHERE false"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


C = Column

_PARTITION = (
    C("venue", "VARCHAR", "Venue id from the pipeline (e.g. 'hyperliquid'); hive partition key.", False),
    C("date", "DATE", "UTC day of the row's event time; hive partition key.", False),
)
_LINEAGE = (
    C("source", "VARCHAR", "Input kind: 'node_fills_by_block', 'api:userFills', 'api:userFillsByTime', ...", False),
    C("source_key", "VARCHAR", "Stable id of the input (file or API request) the row came from.", False),
)

FILLS = Table(
    "fills",
    "One row per fill leg. Hyperliquid reports both legs of every trade (same tid); unique on (venue, user, fill_id).",
    (
        *_PARTITION,
        C("coin", "VARCHAR", "Venue symbol as given: perp 'BTC', spot '@107' or 'PURR/USDC', HIP-3 'dex:NAME'.", False),
        C("user", "VARCHAR", "Fill owner address, lower-case 0x hex.", False),
        C("time", "TIMESTAMP", "Fill time (UTC, ms precision).", False),
        C("time_ms", "BIGINT", "Fill time, epoch ms, as reported.", False),
        C("block_number", "BIGINT", "L1 block (node files only; NULL from the info API)."),
        C("block_time", "TIMESTAMP_NS", "Block time, ns precision (node files only)."),
        C("local_time", "TIMESTAMP_NS", "Node receive time, ns precision (node files only)."),
        C("event_index", "INTEGER", "Position of the fill within its block's events (replay order within a block)."),
        C("tid", "UBIGINT", "Trade id; both legs of a trade share it (absent in pre-2024 info API responses)."),
        C("fill_id", "VARCHAR", "Identity of the fill for its owner: tid as text, or 'legacy:<md5>' of hash, oid, time, px, sz, startPosition when the venue gave no tid.", False),
        C("oid", "UBIGINT", "Order id of the fill owner's order."),
        C("hash", "VARCHAR", "L1 transaction hash (0x000..0 for TWAP fills)."),
        C("side", "VARCHAR", "'B' (owner bought) or 'A' (owner sold).", False),
        C("px", DECIMAL, "Fill price, USD per coin.", False),
        C("sz", DECIMAL, "Fill size, coin units, unsigned.", False),
        C("start_position", DECIMAL, "Owner's signed position in the coin before this fill, coin units."),
        C("dir", "VARCHAR", "Venue direction text: 'Open Long', 'Close Short', 'Long > Short', 'Auto-Deleveraging', ...", False),
        C("closed_pnl", DECIMAL, "Realized PnL of the closed part, USD, excluding fee."),
        C("fee", DECIMAL, "Fee paid by the owner incl. builder fee, in fee_token; negative = rebate."),
        C("fee_token", "VARCHAR", "Fee token, e.g. 'USDC'."),
        C("builder_fee", DECIMAL, "Builder fee part of fee, if reported."),
        C("crossed", "BOOLEAN", "True when the owner's order took liquidity."),
        C("cloid", "VARCHAR", "Client order id, if any."),
        C("twap_id", "BIGINT", "TWAP id, if the fill came from a TWAP."),
        C("is_liquidation", "BOOLEAN", "Fill carries a liquidation object or a 'Liquidated ...' dir (both legs).", False),
        C("is_liquidated_leg", "BOOLEAN", "This leg is the liquidated account's own (liquidatedUser == user or 'Liquidated ...' dir).", False),
        C("liquidated_user", "VARCHAR", "liquidation.liquidatedUser (the bankrupt account; the vault for ADL legs)."),
        C("liquidation_mark_px", DECIMAL, "liquidation.markPx, USD per coin."),
        C("liquidation_method", "VARCHAR", "'market' (against the book) or 'backstop' (vault takeover / ADL)."),
        C("is_adl", "BOOLEAN", "dir == 'Auto-Deleveraging': the deleveraged winner's leg.", False),
        *_LINEAGE,
    ),
    key=("venue", "user", "fill_id"),
)

LIQUIDATIONS = Table(
    "liquidations",
    "Derived view: one row per liquidated leg of a non-ADL trade (the ADL legs' vault side is excluded "
    "to avoid the double counting seen in published Oct-10 totals).",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("date", "DATE", "UTC day.", False),
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("liquidated_user", "VARCHAR", "Account that was liquidated.", False),
        C("time", "TIMESTAMP", "Fill time (UTC).", False),
        C("time_ms", "BIGINT", "Fill time, epoch ms.", False),
        C("block_number", "BIGINT", "L1 block, when known."),
        C("tid", "UBIGINT", "Trade id.", False),
        C("side", "VARCHAR", "Liquidated leg's side ('A' = a long was closed).", False),
        C("liquidated_position_side", "VARCHAR", "'long' or 'short': the side of the position that was liquidated.", False),
        C("px", DECIMAL, "Fill price, USD.", False),
        C("sz", DECIMAL, "Size closed, coin units.", False),
        C("notional_usd", DECIMAL, "px x sz, USD.", False),
        C("mark_px", DECIMAL, "Mark price at liquidation, USD."),
        C("method", "VARCHAR", "'market' or 'backstop'."),
        C("counterparty", "VARCHAR", "Owner of the other leg of the trade, when known."),
        C("closed_pnl", DECIMAL, "Realized PnL of the liquidated leg, USD."),
    ),
    key=("venue", "liquidated_user", "tid"),
    layer="derived",
)

ADL_FILLS = Table(
    "adl_fills",
    "Derived view: one row per auto-deleveraged winner leg (dir == 'Auto-Deleveraging').",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("date", "DATE", "UTC day.", False),
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("user", "VARCHAR", "Deleveraged (winning) account.", False),
        C("time", "TIMESTAMP", "Fill time (UTC).", False),
        C("time_ms", "BIGINT", "Fill time, epoch ms.", False),
        C("block_number", "BIGINT", "L1 block, when known."),
        C("event_index", "INTEGER", "Position within the block."),
        C("tid", "UBIGINT", "Trade id.", False),
        C("side", "VARCHAR", "Winner leg's side ('B' closes a short).", False),
        C("adl_position_side", "VARCHAR", "'long' or 'short': the winner's position that was reduced.", False),
        C("px", DECIMAL, "ADL price, USD.", False),
        C("sz", DECIMAL, "Size closed, coin units.", False),
        C("notional_usd", DECIMAL, "px x sz, USD.", False),
        C("start_position", DECIMAL, "Winner's signed position before the ADL fill."),
        C("closed_pnl", DECIMAL, "Winner's realized PnL on the ADL fill, USD."),
        C("mark_px", DECIMAL, "liquidation.markPx at the ADL, USD."),
        C("liquidated_user", "VARCHAR", "Bankrupt counterparty (the liquidator vault on Hyperliquid)."),
        C("is_partial", "BOOLEAN", "The fill left part of the winner's position open."),
    ),
    key=("venue", "user", "tid"),
    layer="derived",
)

LEDGER_EVENTS = Table(
    "ledger_events",
    "Non-funding ledger updates, one shape for the info API (userNonFundingLedgerUpdates) and the node's "
    "misc_events_by_block (LedgerUpdate deltas, one row per address in `users`; staking variants CDeposit, "
    "CWithdrawal, Delegation, ValidatorRewards recorded with category 'staking'). Perp cash effects are "
    "applied by the replay (forensics/reconstruct/cash.py, docs/ledger_cash.md), never stored as truth.",
    (
        *_PARTITION,
        C("user", "VARCHAR", "Account address the row is about (API: the queried user; node: each of `users`; "
          "'system' for events without an account).", False),
        C("time", "TIMESTAMP", "Event time (UTC).", False),
        C("time_ms", "BIGINT", "Event time, epoch ms.", False),
        C("hash", "VARCHAR", "L1 transaction hash (all zeros for system events)."),
        C("type", "VARCHAR", "delta.type as given ('deposit', 'withdraw', 'liquidation', 'vaultDeposit', ...), "
          "or the misc variant name for staking/system events ('CDeposit', 'Delegation', ...).", False),
        C("usdc", DECIMAL, "USDC amount of the delta when it has one (signed as reported)."),
        C("account_value", DECIMAL, "Liquidation events: account value at liquidation, USD."),
        C("liquidated_ntl_pos", DECIMAL, "Liquidation events: liquidated notional, USD."),
        C("leverage_type", "VARCHAR", "Liquidation events: 'Cross' or 'Isolated'."),
        C("delta_json", "VARCHAR", "The whole delta object as JSON text (fields vary by type)."),
        C("block_number", "BIGINT", "Node: L1 block of the event (NULL from the API)."),
        C("event_index", "INTEGER", "Node: 1-based index of the event in its block's `events` (NULL from the API)."),
        C("destination", "VARCHAR", "Transfers: receiving address (delta.destination, or delta.vault for vault flows)."),
        C("fee", DECIMAL, "Fee of the delta when it has one, in its token (USDC unless `token` says otherwise)."),
        C("token", "VARCHAR", "Token of the delta when it names one (send, spotTransfer, rewardsClaim, ...)."),
        C("amount", DECIMAL, "Token amount of the delta when it has one (send, spotTransfer, staking, ...)."),
        C("to_perp", "BOOLEAN", "accountClassTransfer / perpDexClassTransfer: toPerp."),
        C("category", "VARCHAR", "'perp_cash' (known USDC effect), 'unconfirmed' (effect chosen by a setting), "
          "'spot', 'staking', 'summary' (liquidation), 'system', or 'unknown' (API types not in the reference).", False),
        C("event_id", "VARCHAR", "Identity of the event for this account across sources (node misc file or info "
          "API): sha256 of user, hash, time_ms, type and delta_json, 32 hex (misc_events.ledger_event_id).", False),
        *_LINEAGE,
    ),
    key=("venue", "event_id"),
)

FUNDING_PAYMENTS = Table(
    "funding_payments",
    "Hourly funding settlements per (user, coin) from misc_events_by_block Funding deltas. "
    "funding_amount > 0 = the user received funding (it is added to cash).",
    (
        *_PARTITION,
        C("user", "VARCHAR", "Account address.", False),
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("time", "TIMESTAMP", "Settlement time (UTC; the event's block time).", False),
        C("time_ms", "BIGINT", "Settlement time, epoch ms.", False),
        C("block_number", "BIGINT", "L1 block of the Funding event."),
        C("event_index", "INTEGER", "1-based index of the Funding event in its block."),
        C("delta_index", "INTEGER", "1-based index of the delta in the event's `deltas`.", False),
        C("funding_amount", DECIMAL, "USDC paid to (+) or by (-) the user.", False),
        C("szi", DECIMAL, "Signed position size the funding was computed on, coin units."),
        C("funding_rate", DECIMAL, "Funding rate applied (fraction; + = longs pay)."),
        *_LINEAGE,
    ),
    key=("venue", "user", "coin", "time_ms"),
)

LIQUIDATION_EVENTS = Table(
    "liquidation_events",
    "Account-level liquidation summaries (misc_events_by_block LedgerUpdate 'liquidation'): no cash "
    "effect; the replay checks its account value against them (never overrides with them).",
    (
        *_PARTITION,
        C("user", "VARCHAR", "Liquidated account.", False),
        C("time", "TIMESTAMP", "Event time (UTC).", False),
        C("time_ms", "BIGINT", "Event time, epoch ms.", False),
        C("block_number", "BIGINT", "L1 block of the event."),
        C("event_index", "INTEGER", "1-based index of the event in its block."),
        C("hash", "VARCHAR", "L1 transaction hash."),
        C("account_value", DECIMAL, "accountValue: the account's equity when liquidated, USD."),
        C("liquidated_ntl_pos", DECIMAL, "liquidatedNtlPos: notional liquidated, USD."),
        C("leverage_type", "VARCHAR", "'Cross' or 'Isolated'."),
        C("position_count", "INTEGER", "Number of liquidated positions.", False),
        C("liquidated_positions", "VARCHAR", "liquidatedPositions as JSON text: [{coin, szi}] with szi exact strings."),
        *_LINEAGE,
    ),
    key=("venue", "user", "time_ms", "block_number", "event_index"),
)

POSITION_SNAPSHOTS = Table(
    "position_snapshots",
    "One row per (user, coin) open position at snapshot time, from clearinghouseState.",
    (
        *_PARTITION,
        C("user", "VARCHAR", "Account address.", False),
        C("time", "TIMESTAMP", "Snapshot time (UTC).", False),
        C("time_ms", "BIGINT", "Snapshot time, epoch ms.", False),
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("szi", DECIMAL, "Signed position size, coin units (negative = short).", False),
        C("entry_px", DECIMAL, "Average entry price, USD."),
        C("position_value", DECIMAL, "|szi| x mark, USD."),
        C("unrealized_pnl", DECIMAL, "Unrealized PnL, USD."),
        C("return_on_equity", DECIMAL, "Venue's ROE (unrealized PnL / margin)."),
        C("liquidation_px", DECIMAL, "Estimated liquidation price, USD (NULL when none)."),
        C("margin_used", DECIMAL, "Margin allocated, USD."),
        C("leverage_type", "VARCHAR", "'cross' or 'isolated'.", False),
        C("leverage", "INTEGER", "Configured leverage."),
        C("isolated_raw_usd", DECIMAL, "Isolated margin rawUsd, USD (isolated only)."),
        C("max_leverage", "INTEGER", "Coin's max leverage."),
        C("cum_funding_all_time", DECIMAL, "Cumulative funding paid, all time, USD."),
        C("cum_funding_since_open", DECIMAL, "Cumulative funding since the position opened, USD."),
        C("derivation", "VARCHAR", "NULL when every value is as reported; else the documented rule that derived "
          "the values the source lacks (clearinghouse export: see docs/snapshot_export.md)."),
        *_LINEAGE,
    ),
    key=("venue", "user", "coin", "time_ms"),
)

ACCOUNT_SNAPSHOTS = Table(
    "account_snapshots",
    "One row per user at snapshot time: the account-level margin summary of clearinghouseState.",
    (
        *_PARTITION,
        C("user", "VARCHAR", "Account address.", False),
        C("time", "TIMESTAMP", "Snapshot time (UTC).", False),
        C("time_ms", "BIGINT", "Snapshot time, epoch ms.", False),
        C("account_value", DECIMAL, "marginSummary.accountValue, USD (cross + isolated)."),
        C("total_ntl_pos", DECIMAL, "marginSummary.totalNtlPos, USD."),
        C("total_raw_usd", DECIMAL, "marginSummary.totalRawUsd, USD."),
        C("total_margin_used", DECIMAL, "marginSummary.totalMarginUsed, USD."),
        C("cross_account_value", DECIMAL, "crossMarginSummary.accountValue, USD."),
        C("cross_maintenance_margin_used", DECIMAL, "crossMaintenanceMarginUsed, USD."),
        C("withdrawable", DECIMAL, "Withdrawable USD."),
        C("positions", "INTEGER", "Number of open positions.", False),
        C("derivation", "VARCHAR", "NULL when every value is as reported; else the rule that derived the rest "
          "(clearinghouse export: see docs/snapshot_export.md)."),
        *_LINEAGE,
    ),
    key=("venue", "user", "time_ms"),
)

ASSET_CTXS = Table(
    "asset_ctxs",
    "Per-coin market context over time (metaAndAssetCtxs): mark, oracle, mid, funding, open interest.",
    (
        *_PARTITION,
        C("coin", "VARCHAR", "Venue symbol (meta.universe[i].name).", False),
        C("time", "TIMESTAMP", "Observation time (UTC).", False),
        C("time_ms", "BIGINT", "Observation time, epoch ms.", False),
        C("mark_px", DECIMAL, "Mark price, USD."),
        C("oracle_px", DECIMAL, "Oracle price, USD."),
        C("mid_px", DECIMAL, "Book mid, USD (NULL when no book)."),
        C("funding", DECIMAL, "Current hourly funding rate (fraction)."),
        C("premium", DECIMAL, "Premium (fraction)."),
        C("open_interest", DECIMAL, "Open interest, coin units."),
        C("prev_day_px", DECIMAL, "Price 24 h ago, USD."),
        C("day_ntl_vlm", DECIMAL, "24 h notional volume, USD."),
        C("day_base_vlm", DECIMAL, "24 h volume, coin units."),
        C("impact_bid_px", DECIMAL, "Impact bid price, USD."),
        C("impact_ask_px", DECIMAL, "Impact ask price, USD."),
        C("sz_decimals", "INTEGER", "Size decimals of the coin."),
        C("max_leverage", "INTEGER", "Max leverage of the coin."),
        C("only_isolated", "BOOLEAN", "Coin trades isolated-only."),
        *_LINEAGE,
    ),
    key=("venue", "coin", "time_ms"),
)

FUNDING_RATES = Table(
    "funding_rates",
    "Funding rate history per coin (fundingHistory).",
    (
        *_PARTITION,
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("time", "TIMESTAMP", "Funding time (UTC).", False),
        C("time_ms", "BIGINT", "Funding time, epoch ms.", False),
        C("funding_rate", DECIMAL, "Funding rate (fraction per interval).", False),
        C("premium", DECIMAL, "Premium (fraction)."),
        *_LINEAGE,
    ),
    key=("venue", "coin", "time_ms"),
)

VAULT_EQUITY = Table(
    "vault_equity",
    "Vault (HLP and liquidator vaults) account value and PnL history from vaultDetails.portfolio.",
    (
        *_PARTITION,
        C("vault", "VARCHAR", "Vault address.", False),
        C("vault_name", "VARCHAR", "Vault name as reported."),
        C("window", "VARCHAR", "Portfolio window the point came from: 'day', 'week', 'allTime', ...", False),
        C("time", "TIMESTAMP", "Point time (UTC).", False),
        C("time_ms", "BIGINT", "Point time, epoch ms.", False),
        C("account_value", DECIMAL, "Vault account value, USD."),
        C("pnl", DECIMAL, "Cumulative PnL over the window, USD."),
        *_LINEAGE,
    ),
    key=("venue", "vault", "window", "time_ms"),
)

QUARANTINE = Table(
    "quarantine",
    "Input records that could not be normalized, with the reason. Partitioned by the UTC day of ingestion.",
    (
        *_PARTITION,
        C("target_table", "VARCHAR", "Table the record was meant for.", False),
        C("source", "VARCHAR", "Input kind (see fills.source).", False),
        C("source_key", "VARCHAR", "Stable id of the input.", False),
        C("source_name", "VARCHAR", "Human-readable input name (file name or endpoint).", False),
        C("line_number", "BIGINT", "1-based line in the decompressed input (or item index in a response)."),
        C("item_index", "INTEGER", "Index of the event within the line, when the line itself parsed."),
        C("reason", "VARCHAR", "Why the record was rejected.", False),
        C("raw", "VARCHAR", "The raw record text (truncated to 8 KiB)."),
        C("ingested_at", "TIMESTAMP", "When the ingest ran (UTC).", False),
    ),
)

INGEST_RUNS = Table(
    "ingest_runs",
    "One row per ingested input: what was read, written and quarantined (the reconciliation ledger).",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("source", "VARCHAR", "Input kind.", False),
        C("source_key", "VARCHAR", "Stable id of the input.", False),
        C("source_name", "VARCHAR", "Input name.", False),
        C("sha256", "VARCHAR", "SHA-256 of the input bytes as received.", False),
        C("bytes", "BIGINT", "Input size in bytes as received.", False),
        C("records_read", "BIGINT", "Records read (fills, positions, contexts... according to the source).", False),
        C("rows_written", "BIGINT", "Rows written to normalized tables.", False),
        C("rows_quarantined", "BIGINT", "Records sent to quarantine.", False),
        C("tables_json", "VARCHAR", "Per-table written row counts, JSON.", False),
        C("ingested_at", "TIMESTAMP", "When the ingest ran (UTC).", False),
        C("code_version", "VARCHAR", "liquidation-forensics version (and git commit when known)."),
    ),
    key=("venue", "source_key"),
    layer="meta",
)

ANALYSIS_INPUTS = Table(
    "analysis_inputs",
    "The input versions an analysis was computed from: one row per (analysis, normalized table, input) it read. "
    "Compared with the lake's current inputs (pipelines.lineage) to say when analytics are stale.",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("analysis", "VARCHAR", "What was computed (e.g. 'adl_reconstruct': adl_steps, adl_pools and what derives from them).", False),
        C("input_table", "VARCHAR", "Normalized table read.", False),
        C("input_key", "VARCHAR", "source_key of the input whose rows were read.", False),
        C("rows", "BIGINT", "Rows that input held in the table.", False),
        C("digest", "VARCHAR", "SHA-256 of that input's part files' bytes (in path order).", False),
        C("computed_at", "TIMESTAMP", "When the analysis ran (UTC).", False),
    ),
    key=("venue", "analysis", "input_table", "input_key"),
    layer="meta",
)

# --- analytics (written under analytics/<table>/venue=<v>/part-<key>.parquet; floats for speed) -------

ADL_STEPS = Table(
    "adl_steps",
    "One row per ADL action (a step): consecutive ADL legs of one transaction against one liquidated account, "
    "coin and side, in replay order (without a hash: one such run). The unit of rule identification.",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("step_id", "BIGINT", "Global action order (replay order of the first leg).", False),
        C("step_group", "BIGINT", "step_id of the first action of the same (block, coin, liquidated account, liquidated side).", False),
        C("wave_id", "BIGINT", "Wave of the step: steps closer than the gap threshold (default 5 s) share a wave.", False),
        C("block_number", "BIGINT", "L1 block of the step (NULL when only API fills exist)."),
        C("time_ms", "BIGINT", "Time of the first ADL leg, epoch ms.", False),
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("liquidated_user", "VARCHAR", "The bankrupt account (the liquidator vault on Hyperliquid).", False),
        C("liquidated_side", "VARCHAR", "'long' or 'short': side of the liquidated position.", False),
        C("adl_side", "VARCHAR", "'long' or 'short': side of the winners' positions that were reduced.", False),
        C("action_hash", "VARCHAR", "Transaction hash of the action's legs (NULL when the data carry none)."),
        C("legs", "BIGINT", "ADL legs (winner fills) in the step.", False),
        C("closed_size", "DOUBLE", "Total size closed, coin units.", False),
        C("notional_usd", "DOUBLE", "Sum of px x sz over the legs, USD.", False),
        C("mark_px", "DOUBLE", "liquidation.markPx of the step's legs (first leg), USD."),
        C("first_tid", "UBIGINT", "Trade id of the action's first leg (replay order)."),
        C("pool_size", "BIGINT", "Eligible candidates reconstructed for the step.", False),
        C("unmatched_counter_legs", "BIGINT", "Legs of the liquidated account (vault) in the step's block and coin "
          "whose winner leg is missing: > 0 means the data lost ADL fills, so the step is left out of the "
          "exemption test.", False),
    ),
    key=("venue", "step_id"),
    layer="analytics",
)

ADL_POOLS = Table(
    "adl_pools",
    "One row per (ADL step, eligible candidate): every account with an open opposite-side position in the coin "
    "just before the step, with the features every known ranking rule needs and the outcome.",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("step_id", "BIGINT", "ADL step (adl_steps.step_id).", False),
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("user", "VARCHAR", "Candidate account.", False),
        C("side", "VARCHAR", "'long' or 'short' (the candidate's position side).", False),
        C("size", "DOUBLE", "|position| before the step, coin units.", False),
        C("entry_px", "DOUBLE", "Average entry price, USD."),
        C("mark_px", "DOUBLE", "Mark price used for the step, USD.", False),
        C("mark_source", "VARCHAR", "'asset_ctxs', 'adl_mark' (markPx of the step's legs) or 'last_trade'.", False),
        C("notional_usd", "DOUBLE", "size x mark, USD.", False),
        C("upnl_usd", "DOUBLE", "Unrealized PnL at mark, USD."),
        C("pnl_pct_price", "DOUBLE", "Signed price return since entry: (mark/entry - 1) for longs, (1 - mark/entry) for shorts."),
        C("pnl_pct_margin", "DOUBLE", "Unrealized PnL / margin allocated to the position (ROE)."),
        C("account_value_usd", "DOUBLE", "Account value at mark (cash + unrealized PnL of all positions), USD."),
        C("wallet_balance_usd", "DOUBLE", "Cash (wallet balance) without unrealized PnL, USD."),
        C("leverage", "DOUBLE", "notional / account value (Hyperliquid's leverage in the ADL index)."),
        C("margin_leverage", "DOUBLE", "Configured leverage of the position."),
        C("effective_leverage", "DOUBLE", "BitMEX effective leverage: notional / (account value - bankruptcy distance)."),
        C("margin_mode", "VARCHAR", "'cross' or 'isolated'."),
        C("maintenance_margin_usd", "DOUBLE", "Maintenance margin of the position, USD."),
        C("position_age_ms", "BIGINT", "Time since the position was opened (or flipped), ms; NULL when opened before the snapshot."),
        C("selected", "BOOLEAN", "The candidate was auto-deleveraged in this step.", False),
        C("fill_order", "INTEGER", "1-based replay order of the candidate's first ADL leg within the action (NULL if not selected)."),
        C("closed_size", "DOUBLE", "Size closed by ADL in this step, coin units.", False),
        C("partial", "BOOLEAN", "Selected but only part of the position was closed.", False),
        C("skip_reason", "VARCHAR", "A legitimate reason visible in the data for not selecting it (NULL if none)."),
        C("lot_size", "DOUBLE", "The coin's size step 10^-szDecimals (NULL when the asset contexts do not say)."),
        C("account_maintenance_margin_usd", "DOUBLE", "Maintenance margin of all the account's positions, USD "
          "(Binance's margin ratio uses the account's, not the position's)."),
    ),
    key=("venue", "step_id", "user"),
    layer="analytics",
)

ADL_RULE_FITS = Table(
    "adl_rule_fits",
    "One row per candidate rule: how well it explains the observed ADL actions on rank evidence "
    "(forensics.audit.identify); cost = exemptions needed + residual skips + shape violations, lowest wins.",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("rule", "VARCHAR", "Rule name (forensics.audit.rules.RULES).", False),
        C("kind", "VARCHAR", "'queue', 'cyclic' or 'allocation'.", False),
        C("steps", "BIGINT", "ADL actions with a decision (something selected).", False),
        C("opportunities", "BIGINT", "Candidate rows ranked above the action's cut with no legitimate reason to pass them over.", False),
        C("skips", "BIGINT", "Opportunities that were not selected.", False),
        C("exemptions_needed", "BIGINT", "Accounts the exemption test flags under the rule (the exempt set it needs).", False),
        C("residual_skips", "BIGINT", "Skips of accounts the test does not flag.", False),
        C("shape_violations", "BIGINT", "Selections the rule cannot produce (below the cut, partial above it, off the allocation by > 1 lot).", False),
        C("cost", "BIGINT", "exemptions_needed + residual_skips + shape_violations.", False),
        C("residual_rate", "DOUBLE", "(residual skips + shape violations) / (unflagged opportunities + selections)."),
        C("skip_rate", "DOUBLE", "Calibrated skip probability of unflagged candidates above a cut."),
        C("tested_accounts", "BIGINT", "Accounts with at least one opportunity.", False),
        C("fits", "BOOLEAN", "Residual rate and exempt share small enough to call the rule consistent.", False),
        C("same_order_as", "VARCHAR", "Rules that order every action identically on these data (comma-separated)."),
        C("violation_rate", "DOUBLE", "Mean per-action share of (unselected, selected) pairs where the unselected one ranks higher."),
        C("auc", "DOUBLE", "1 - violation rate: probability a selected candidate outranks an unselected one."),
        C("top_k_precision", "DOUBLE", "Mean share of the selected that are in the rule's top k (k = number selected)."),
        C("kendall_tau", "DOUBLE", "Diagnostic (sampled actions): Kendall tau between fill order and rule order among the selected."),
        C("ndcg", "DOUBLE", "Diagnostic (sampled actions): NDCG@k with closed size as relevance."),
        C("log_likelihood", "DOUBLE", "Diagnostic (sampled actions): Plackett-Luce log-likelihood of the fill orders."),
        C("temperature", "DOUBLE", "Diagnostic: fitted Plackett-Luce temperature (per queue position)."),
        C("aic", "DOUBLE", "Diagnostic: 2 - 2 log-likelihood (one fitted parameter)."),
        C("allocation_fit", "DOUBLE", "Allocation rules: 1 - L1 error of predicted cuts / (2 x closed) among the selected."),
        C("is_best", "BOOLEAN", "The identified rule.", False),
        C("verdict", "VARCHAR", "The identification's verdict sentence (same on every row).", False),
        C("window_from_ms", "BIGINT", "Start of the analysed window, epoch ms (NULL = everything)."),
        C("window_to_ms", "BIGINT", "End of the analysed window, epoch ms (NULL = everything)."),
    ),
    key=("venue", "rule"),
    layer="analytics",
)

EXEMPTION_FLAGS = Table(
    "exemption_flags",
    "One row per account in any ADL pool: how often the identified rule ranked it above the venue's cut "
    "(opportunities) and how often it was passed over there (skips), against a skip rate calibrated on the "
    "unflagged accounts; exact binomial p and Benjamini-Hochberg q values. A flag is a statistical anomaly, "
    "not an accusation.",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("user", "VARCHAR", "Account.", False),
        C("rule", "VARCHAR", "Rule the test assumed.", False),
        C("eligible_steps", "BIGINT", "ADL actions where the account was in the eligible pool.", False),
        C("opportunities", "BIGINT", "Actions where it ranked above the cut with no legitimate reason to be passed over.", False),
        C("skips", "BIGINT", "Opportunities where it was not selected.", False),
        C("expected_skips", "DOUBLE", "opportunities x skip_rate.", False),
        C("expected_selections", "DOUBLE", "Selections expected had it been skipped only at the calibrated rate.", False),
        C("observed_selections", "BIGINT", "Actions where it was actually deleveraged.", False),
        C("p_value", "DOUBLE", "P(X >= skips) for X ~ Binomial(opportunities, skip_rate).", False),
        C("q_value", "DOUBLE", "Benjamini-Hochberg adjusted p-value across the accounts tested.", False),
        C("flagged", "BOOLEAN", "q_value <= the threshold and at least two skips.", False),
        C("tested", "BOOLEAN", "The account had at least one opportunity.", False),
        C("skip_rate", "DOUBLE", "The calibrated skip rate of the null (same on every row).", False),
        C("evidence_json", "VARCHAR", "Flagged accounts: every action where it was above the cut and not selected "
          "(rank, cut rank, scores, the cut's account, legitimate-skip reasons), JSON."),
    ),
    key=("venue", "user"),
    layer="analytics",
)

LIQUIDATION_CHECKS = Table(
    "liquidation_checks",
    "Each liquidation summary (liquidation_events) against the replay's account value at that instant (after the "
    "block's misc events, before its fills): a check of the reconstruction, never an override.",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("user", "VARCHAR", "Liquidated account.", False),
        C("block_number", "BIGINT", "L1 block of the summary."),
        C("time_ms", "BIGINT", "Summary time, epoch ms.", False),
        C("leverage_type", "VARCHAR", "'Cross' (cross account value) or 'Isolated' (the position's equity)."),
        C("reported", "DOUBLE", "accountValue as reported, USD."),
        C("replayed", "DOUBLE", "The replay's value at the same instant, USD (NULL without a snapshot wallet)."),
        C("error", "DOUBLE", "replayed - reported, USD."),
        C("rel_error", "DOUBLE", "|error| / |reported|."),
    ),
    key=("venue", "user", "time_ms", "block_number"),
    layer="analytics",
)

NORMALIZED_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        FILLS,
        LEDGER_EVENTS,
        FUNDING_PAYMENTS,
        LIQUIDATION_EVENTS,
        POSITION_SNAPSHOTS,
        ACCOUNT_SNAPSHOTS,
        ASSET_CTXS,
        FUNDING_RATES,
        VAULT_EQUITY,
        QUARANTINE,
    )
}
DERIVED_TABLES: dict[str, Table] = {t.name: t for t in (LIQUIDATIONS, ADL_FILLS)}
META_TABLES: dict[str, Table] = {t.name: t for t in (INGEST_RUNS, ANALYSIS_INPUTS)}
ANALYTICS_TABLES: dict[str, Table] = {t.name: t for t in (ADL_STEPS, ADL_POOLS, ADL_RULE_FITS, EXEMPTION_FLAGS,
                                                          LIQUIDATION_CHECKS)}
ALL_TABLES: dict[str, Table] = {**NORMALIZED_TABLES, **DERIVED_TABLES, **META_TABLES, **ANALYTICS_TABLES}

# Hyperliquid `dir` values seen in public data (venue-apis.md §1.2). Anything else is quarantined so a
# format change is noticed instead of silently mis-classified.
HYPERLIQUID_DIRS: frozenset[str] = frozenset(
    {
        "Open Long",
        "Open Short",
        "Close Long",
        "Close Short",
        "Long > Short",
        "Short > Long",
        "Auto-Deleveraging",
        "Settlement",
        "Liquidated Cross Long",
        "Liquidated Cross Short",
        "Liquidated Isolated Long",
        "Liquidated Isolated Short",
        "Buy",
        "Sell",
        "Spot Dust Conversion",
    }
)
LIQUIDATION_METHODS: frozenset[str] = frozenset({"market", "backstop"})


def _register_areas() -> None:
    # areas keep their tables in their own modules (imported here, after Table exists)
    from forensics import schema_accounting, schema_cex, schema_onchain, schema_stress

    for module in (schema_cex, schema_onchain, schema_accounting, schema_stress):
        for name, table in module.TABLES.items():
            if name in ALL_TABLES:
                raise ValueError(f"table {name!r} defined twice")
            ALL_TABLES[name] = table
            {"normalized": NORMALIZED_TABLES, "analytics": ANALYTICS_TABLES, "derived": DERIVED_TABLES,
             "meta": META_TABLES}[table.layer][name] = table


_register_areas()


def describe(table: str | None = None) -> str:
    """Markdown documentation of one or all tables."""
    tables = [ALL_TABLES[table]] if table else list(ALL_TABLES.values())
    out: list[str] = []
    for t in tables:
        out.append(f"### `{t.name}` ({t.layer})\n\n{t.doc}\n")
        if t.key:
            out.append(f"Key: ({', '.join(t.key)})\n")
        out.append("| column | type | meaning |\n|---|---|---|")
        out.extend(f"| `{c.name}` | {c.type} | {c.doc} |" for c in t.columns)
        out.append("")
    return "\n".join(out)
