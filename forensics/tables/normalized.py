"""Normalized tables written by ingest (fills, ledger, funding, snapshots, contexts, vault equity, quarantine)
and the derived views over fills (``liquidations``, ``adl_fills``). Conventions: :mod:`forensics.tables.model`."""

from __future__ import annotations

from forensics.tables.model import DECIMAL, LATEST_INGEST, LINEAGE, PARTITION, REPULLED, Column, Dedup, Table

C = Column

FILLS = Table(
    "fills",
    "One row per fill leg. Hyperliquid reports both legs of every trade (same tid); unique on (venue, user, fill_id).",
    (
        *PARTITION,
        C("coin", "VARCHAR", "Venue symbol as given: perp 'BTC', spot '@107' or 'PURR/USDC', HIP-3 'dex:NAME'.", False),
        C("user", "VARCHAR", "Fill owner address, lower-case 0x hex.", False),
        C("time", "TIMESTAMP", "Fill time (UTC, ms precision).", False),
        C("time_ms", "BIGINT", "Fill time, epoch ms, as reported.", False),
        C("block_number", "BIGINT", "L1 block (node files only; NULL from the info API)."),
        C("block_time", "TIMESTAMP_NS", "Block time, ns precision (node files only)."),
        C("local_time", "TIMESTAMP_NS", "Node receive time, ns precision (node files only)."),
        C("event_index", "INTEGER", "Position of the fill within its block's events (replay order within a block)."),
        C("tid", "UBIGINT", "Trade id; both legs of a trade share it (absent in pre-2024 info API responses)."),
        C(
            "fill_id",
            "VARCHAR",
            "Identity of the fill for its owner: tid as text, or 'legacy:<md5>' of hash, oid, time, px, sz, "
            "startPosition when the venue gave no tid.",
            False,
        ),
        C("oid", "UBIGINT", "Order id of the fill owner's order."),
        C("hash", "VARCHAR", "L1 transaction hash (0x000..0 for TWAP fills)."),
        C("side", "VARCHAR", "'B' (owner bought) or 'A' (owner sold).", False),
        C("px", DECIMAL, "Fill price, USD per coin.", False),
        C("sz", DECIMAL, "Fill size, coin units, unsigned.", False),
        C("start_position", DECIMAL, "Owner's signed position in the coin before this fill, coin units."),
        C(
            "dir",
            "VARCHAR",
            "Venue direction text: 'Open Long', 'Close Short', 'Long > Short', 'Auto-Deleveraging', ...",
            False,
        ),
        C("closed_pnl", DECIMAL, "Realized PnL of the closed part, USD, excluding fee."),
        C("fee", DECIMAL, "Fee paid by the owner incl. builder fee, in fee_token; negative = rebate."),
        C("fee_token", "VARCHAR", "Fee token, e.g. 'USDC'."),
        C("builder_fee", DECIMAL, "Builder fee part of fee, if reported."),
        C("crossed", "BOOLEAN", "True when the owner's order took liquidity."),
        C("cloid", "VARCHAR", "Client order id, if any."),
        C("twap_id", "BIGINT", "TWAP id, if the fill came from a TWAP."),
        C(
            "is_liquidation",
            "BOOLEAN",
            "Fill carries a liquidation object or a 'Liquidated ...' dir (both legs).",
            False,
        ),
        C(
            "is_liquidated_leg",
            "BOOLEAN",
            "This leg is the liquidated account's own (liquidatedUser == user or 'Liquidated ...' dir).",
            False,
        ),
        C("liquidated_user", "VARCHAR", "liquidation.liquidatedUser (the bankrupt account; the vault for ADL legs)."),
        C("liquidation_mark_px", DECIMAL, "liquidation.markPx, USD per coin."),
        C("liquidation_method", "VARCHAR", "'market' (against the book) or 'backstop' (vault takeover / ADL)."),
        C("is_adl", "BOOLEAN", "dir == 'Auto-Deleveraging': the deleveraged winner's leg.", False),
        *LINEAGE,
    ),
    key=("venue", "user", "fill_id"),
    dedup=Dedup(
        ("(source = 'node_fills_by_block') DESC", *LATEST_INGEST),
        "the same fill from node files and from the info API: node files win (they carry the block and the event "
        "order the replay needs); between inputs of one kind the input ingested last, then the highest source_key",
    ),
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
        C(
            "liquidated_position_side",
            "VARCHAR",
            "'long' or 'short': the side of the position that was liquidated.",
            False,
        ),
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
    dedup=Dedup((), "derived from the fills view, which already keeps one row per fill leg"),
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
    dedup=Dedup((), "derived from the fills view, which already keeps one row per fill leg"),
)

#: forensics.formats.hyperliquid.ledger.ledger_event_id in SQL (str(None or 0) is '' there, so NULL and 0 are '')
LEDGER_EVENT_ID_SQL = (
    "left(sha256(concat_ws(chr(31), coalesce(\"user\", ''), coalesce(hash, ''), "
    "coalesce(CAST(nullif(time_ms, 0) AS VARCHAR), ''), coalesce(type, ''), coalesce(delta_json, ''))), 32)"
)

LEDGER_EVENTS = Table(
    "ledger_events",
    "Non-funding ledger updates, one shape for the info API (userNonFundingLedgerUpdates) and the node's "
    "misc_events_by_block (LedgerUpdate deltas, one row per address in `users`; staking variants CDeposit, "
    "CWithdrawal, Delegation, ValidatorRewards recorded with category 'staking'). Perp cash effects are "
    "applied by the replay (forensics/reconstruct/cash.py, docs/ledger_cash.md), never stored as truth.",
    (
        *PARTITION,
        C(
            "user",
            "VARCHAR",
            "Account address the row is about (API: the queried user; node: each of `users`; "
            "'system' for events without an account).",
            False,
        ),
        C("time", "TIMESTAMP", "Event time (UTC).", False),
        C("time_ms", "BIGINT", "Event time, epoch ms.", False),
        C("hash", "VARCHAR", "L1 transaction hash (all zeros for system events)."),
        C(
            "type",
            "VARCHAR",
            "delta.type as given ('deposit', 'withdraw', 'liquidation', 'vaultDeposit', ...), "
            "or the misc variant name for staking/system events ('CDeposit', 'Delegation', ...).",
            False,
        ),
        C("usdc", DECIMAL, "USDC amount of the delta when it has one (signed as reported)."),
        C("account_value", DECIMAL, "Liquidation events: account value at liquidation, USD."),
        C("liquidated_ntl_pos", DECIMAL, "Liquidation events: liquidated notional, USD."),
        C("leverage_type", "VARCHAR", "Liquidation events: 'Cross' or 'Isolated'."),
        C("delta_json", "VARCHAR", "The whole delta object as JSON text (fields vary by type)."),
        C("block_number", "BIGINT", "Node: L1 block of the event (NULL from the API)."),
        C("event_index", "INTEGER", "Node: 1-based index of the event in its block's `events` (NULL from the API)."),
        C(
            "destination",
            "VARCHAR",
            "Transfers: receiving address (delta.destination, or delta.vault for vault flows).",
        ),
        C("fee", DECIMAL, "Fee of the delta when it has one, in its token (USDC unless `token` says otherwise)."),
        C("token", "VARCHAR", "Token of the delta when it names one (send, spotTransfer, rewardsClaim, ...)."),
        C("amount", DECIMAL, "Token amount of the delta when it has one (send, spotTransfer, staking, ...)."),
        C("to_perp", "BOOLEAN", "accountClassTransfer / perpDexClassTransfer: toPerp."),
        C(
            "category",
            "VARCHAR",
            "'perp_cash' (known USDC effect), 'unconfirmed' (effect chosen by a setting), "
            "'spot', 'staking', 'summary' (liquidation), 'system', or 'unknown' (API types not in the reference).",
            False,
        ),
        C(
            "event_id",
            "VARCHAR",
            "Identity of the event for this account across sources (node misc file or info API): SHA-256 of user, "
            "hash, time_ms, type and delta_json, 32 hex (formats.hyperliquid.ledger.ledger_event_id); readers "
            "compute it for parts written before the column existed.",
            False,
            derive_sql=LEDGER_EVENT_ID_SQL,
        ),
        *LINEAGE,
    ),
    key=("venue", "event_id"),
    dedup=Dedup(
        ("(source = 'misc_events_by_block') DESC", *LATEST_INGEST),
        "the same event from the node's misc files and from the info API (userNonFundingLedgerUpdates), or from "
        "overlapping inputs of one kind (re-pulled API windows, a node hour under two names), is one fact: node "
        "files first (they know the block and the event's index in it), then the input ingested last, then the "
        "highest source_key",
    ),
)

FUNDING_PAYMENTS = Table(
    "funding_payments",
    "Hourly funding settlements per (user, coin) from misc_events_by_block Funding deltas. "
    "funding_amount > 0 = the user received funding (it is added to cash).",
    (
        *PARTITION,
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
        *LINEAGE,
    ),
    key=("venue", "user", "coin", "time_ms"),
    dedup=REPULLED,
)

LIQUIDATION_EVENTS = Table(
    "liquidation_events",
    "Account-level liquidation summaries (misc_events_by_block LedgerUpdate 'liquidation'): no cash "
    "effect; the replay checks its account value against them (never overrides with them).",
    (
        *PARTITION,
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
        *LINEAGE,
    ),
    key=("venue", "user", "time_ms", "block_number", "event_index"),
    dedup=REPULLED,
)

POSITION_SNAPSHOTS = Table(
    "position_snapshots",
    "One row per (user, coin) open position at snapshot time, from clearinghouseState.",
    (
        *PARTITION,
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
        C(
            "derivation",
            "VARCHAR",
            "NULL when every value is as reported; else the documented rule that derived "
            "the values the source lacks (clearinghouse export: see docs/snapshot_export.md).",
        ),
        *LINEAGE,
    ),
    key=("venue", "user", "coin", "time_ms"),
    dedup=Dedup(
        LATEST_INGEST,
        "latest capture wins: two captures of one position at the same instant (a node snapshot and an API pull of "
        "the same state, a re-pulled window) hold the venue's state as each capture saw it; the one ingested last "
        "is the newest view, then the highest source_key",
    ),
)

ACCOUNT_SNAPSHOTS = Table(
    "account_snapshots",
    "One row per user at snapshot time: the account-level margin summary of clearinghouseState.",
    (
        *PARTITION,
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
        C(
            "derivation",
            "VARCHAR",
            "NULL when every value is as reported; else the rule that derived the rest "
            "(clearinghouse export: see docs/snapshot_export.md).",
        ),
        *LINEAGE,
    ),
    key=("venue", "user", "time_ms"),
    dedup=Dedup(
        LATEST_INGEST,
        "latest capture wins, as for position_snapshots (the account summary and its positions come from the same "
        "capture, so both tables keep rows of the same input)",
    ),
)

ASSET_CTXS = Table(
    "asset_ctxs",
    "Per-coin market context over time (metaAndAssetCtxs): mark, oracle, mid, funding, open interest.",
    (
        *PARTITION,
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
        *LINEAGE,
    ),
    key=("venue", "coin", "time_ms"),
    dedup=Dedup(
        LATEST_INGEST,
        "one coin at one instant from several inputs (a re-pulled metaAndAssetCtxs, the archive CSV and a JSONL of "
        "the same minute): the input ingested last wins, then the highest source_key",
    ),
)

FUNDING_RATES = Table(
    "funding_rates",
    "Funding rate history per coin (fundingHistory).",
    (
        *PARTITION,
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("time", "TIMESTAMP", "Funding time (UTC).", False),
        C("time_ms", "BIGINT", "Funding time, epoch ms.", False),
        C("funding_rate", DECIMAL, "Funding rate (fraction per interval).", False),
        C("premium", DECIMAL, "Premium (fraction)."),
        *LINEAGE,
    ),
    key=("venue", "coin", "time_ms"),
    dedup=REPULLED,
)

VAULT_EQUITY = Table(
    "vault_equity",
    "Vault (HLP and liquidator vaults) account value and PnL history from vaultDetails.portfolio.",
    (
        *PARTITION,
        C("vault", "VARCHAR", "Vault address.", False),
        C("vault_name", "VARCHAR", "Vault name as reported."),
        C("window", "VARCHAR", "Portfolio window the point came from: 'day', 'week', 'allTime', ...", False),
        C("time", "TIMESTAMP", "Point time (UTC).", False),
        C("time_ms", "BIGINT", "Point time, epoch ms.", False),
        C("account_value", DECIMAL, "Vault account value, USD."),
        C("pnl", DECIMAL, "Cumulative PnL over the window, USD."),
        *LINEAGE,
    ),
    key=("venue", "vault", "window", "time_ms"),
    dedup=REPULLED,
)

QUARANTINE = Table(
    "quarantine",
    "Input records that could not be normalized, with the reason. Partitioned by the UTC day of ingestion.",
    (
        *PARTITION,
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

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        FILLS,
        LIQUIDATIONS,
        ADL_FILLS,
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
