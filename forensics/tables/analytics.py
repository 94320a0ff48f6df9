"""Analytics tables of the audit (reconstruction, rule identification, exemption test, liquidation checks),
written under ``analytics/<table>/venue=<v>/part-<key>.parquet``; floats for speed."""

from __future__ import annotations

from forensics.tables.model import UNIQUE, Column, Table

C = Column

ADL_STEPS = Table(
    "adl_steps",
    "One row per ADL action (a step): consecutive ADL legs of one transaction against one liquidated account, "
    "coin and side, in replay order (without a hash: one such run). The unit of rule identification.",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("step_id", "BIGINT", "Global action order (replay order of the first leg).", False),
        C(
            "step_group",
            "BIGINT",
            "step_id of the first action of the same (block, coin, liquidated account, liquidated side).",
            False,
        ),
        C(
            "wave_id",
            "BIGINT",
            "Wave of the step: steps closer than the gap threshold (default 5 s) share a wave.",
            False,
        ),
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
        C(
            "unmatched_counter_legs",
            "BIGINT",
            "Legs of the liquidated account (vault) in the step's block and coin "
            "whose winner leg is missing: > 0 means the data lost ADL fills, so the step is left out of the "
            "exemption test.",
            False,
        ),
    ),
    key=("venue", "step_id"),
    layer="analytics",
    dedup=UNIQUE,
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
        C(
            "pnl_pct_price",
            "DOUBLE",
            "Signed price return since entry: (mark/entry - 1) for longs, (1 - mark/entry) for shorts.",
        ),
        C("pnl_pct_margin", "DOUBLE", "Unrealized PnL / margin allocated to the position (ROE)."),
        C("account_value_usd", "DOUBLE", "Account value at mark (cash + unrealized PnL of all positions), USD."),
        C("wallet_balance_usd", "DOUBLE", "Cash (wallet balance) without unrealized PnL, USD."),
        C("leverage", "DOUBLE", "notional / account value (Hyperliquid's leverage in the ADL index)."),
        C("margin_leverage", "DOUBLE", "Configured leverage of the position."),
        C(
            "effective_leverage",
            "DOUBLE",
            "BitMEX effective leverage: notional / (account value - bankruptcy distance).",
        ),
        C("margin_mode", "VARCHAR", "'cross' or 'isolated'."),
        C("maintenance_margin_usd", "DOUBLE", "Maintenance margin of the position, USD."),
        C(
            "position_age_ms",
            "BIGINT",
            "Time since the position was opened (or flipped), ms; NULL when opened before the snapshot.",
        ),
        C("selected", "BOOLEAN", "The candidate was auto-deleveraged in this step.", False),
        C(
            "fill_order",
            "INTEGER",
            "1-based replay order of the candidate's first ADL leg within the action (NULL if not selected).",
        ),
        C("closed_size", "DOUBLE", "Size closed by ADL in this step, coin units.", False),
        C("partial", "BOOLEAN", "Selected but only part of the position was closed.", False),
        C("skip_reason", "VARCHAR", "A legitimate reason visible in the data for not selecting it (NULL if none)."),
        C("lot_size", "DOUBLE", "The coin's size step 10^-szDecimals (NULL when the asset contexts do not say)."),
        C(
            "account_maintenance_margin_usd",
            "DOUBLE",
            "Maintenance margin of all the account's positions, USD "
            "(Binance's margin ratio uses the account's, not the position's).",
        ),
        C(
            "state_note",
            "VARCHAR",
            "A reconstructed state the data contradict (state_contradicted: the owner's next fill reports another "
            "position) or cannot confirm (state_unconfirmed_lost_leg): never counted as a skip (NULL if none).",
        ),
        C(
            "account_gap",
            "BOOLEAN",
            "The account lost a fill before the step: its cash, so its account value, is uncertain.",
        ),
        C(
            "account_value_low_usd",
            "DOUBLE",
            "Lowest account value the marks allow: each coin's mark within its published precision and between "
            "the prices observed from its last published value to the next observation (the venue ranks on exact "
            "marks it publishes only per second, or per minute in the archive).",
        ),
        C("account_value_high_usd", "DOUBLE", "Highest account value the marks allow (see account_value_low_usd)."),
    ),
    key=("venue", "step_id", "user"),
    layer="analytics",
    dedup=UNIQUE,
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
        C(
            "opportunities",
            "BIGINT",
            "Candidate rows ranked above the action's cut with no legitimate reason to pass them over.",
            False,
        ),
        C("skips", "BIGINT", "Opportunities that were not selected.", False),
        C(
            "exemptions_needed",
            "BIGINT",
            "Accounts the exemption test flags under the rule (the exempt set it needs).",
            False,
        ),
        C("residual_skips", "BIGINT", "Skips of accounts the test does not flag.", False),
        C(
            "shape_violations",
            "BIGINT",
            "Selections the rule cannot produce (below the cut, partial above it, off the allocation by > 1 lot).",
            False,
        ),
        C("cost", "BIGINT", "exemptions_needed + residual_skips + shape_violations.", False),
        C(
            "cost_is_lower_bound",
            "BOOLEAN",
            "Not tested account by account: shape violations (less partial closes) alone put it past the best rule.",
        ),
        C("residual_rate", "DOUBLE", "(residual skips + shape violations) / (unflagged opportunities + selections)."),
        C("skip_rate", "DOUBLE", "Calibrated skip probability of unflagged candidates above a cut."),
        C("tested_accounts", "BIGINT", "Accounts with at least one opportunity.", False),
        C("fits", "BOOLEAN", "Residual rate and exempt share small enough to call the rule consistent.", False),
        C("same_order_as", "VARCHAR", "Rules that order every action identically on these data (comma-separated)."),
        C(
            "violation_rate",
            "DOUBLE",
            "Mean per-action share of (unselected, selected) pairs where the unselected one ranks higher.",
        ),
        C("auc", "DOUBLE", "1 - violation rate: probability a selected candidate outranks an unselected one."),
        C(
            "top_k_precision",
            "DOUBLE",
            "Mean share of the selected that are in the rule's top k (k = number selected).",
        ),
        C(
            "kendall_tau",
            "DOUBLE",
            "Diagnostic (sampled actions): Kendall tau between fill order and rule order among the selected.",
        ),
        C("ndcg", "DOUBLE", "Diagnostic (sampled actions): NDCG@k with closed size as relevance."),
        C("log_likelihood", "DOUBLE", "Diagnostic (sampled actions): Plackett-Luce log-likelihood of the fill orders."),
        C("temperature", "DOUBLE", "Diagnostic: fitted Plackett-Luce temperature (per queue position)."),
        C("aic", "DOUBLE", "Diagnostic: 2 - 2 log-likelihood (one fitted parameter)."),
        C(
            "allocation_fit",
            "DOUBLE",
            "Allocation rules: 1 - L1 error of predicted cuts / (2 x closed) among the selected.",
        ),
        C("is_best", "BOOLEAN", "The identified rule.", False),
        C("verdict", "VARCHAR", "The identification's verdict sentence (same on every row).", False),
        C("window_from_ms", "BIGINT", "Start of the analysed window, epoch ms (NULL = everything)."),
        C("window_to_ms", "BIGINT", "End of the analysed window, epoch ms (NULL = everything)."),
    ),
    key=("venue", "rule"),
    layer="analytics",
    dedup=UNIQUE,
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
        C(
            "opportunities",
            "BIGINT",
            "Actions where it ranked above the cut with no legitimate reason to be passed over.",
            False,
        ),
        C("skips", "BIGINT", "Opportunities where it was not selected.", False),
        C("expected_skips", "DOUBLE", "opportunities x skip_rate.", False),
        C(
            "expected_selections",
            "DOUBLE",
            "Selections expected had it been skipped only at the calibrated rate.",
            False,
        ),
        C("observed_selections", "BIGINT", "Actions where it was actually deleveraged.", False),
        C("p_value", "DOUBLE", "P(X >= skips) for X ~ Binomial(opportunities, skip_rate).", False),
        C("q_value", "DOUBLE", "Benjamini-Hochberg adjusted p-value across the accounts tested.", False),
        C(
            "flagged",
            "BOOLEAN",
            "Skipped (q_value <= the threshold and at least two skips) or capped (cap_q_value likewise).",
            False,
        ),
        C("tested", "BOOLEAN", "The account had at least one opportunity.", False),
        C("skip_rate", "DOUBLE", "The calibrated skip rate of the null (same on every row).", False),
        C("cap_opportunities", "BIGINT", "Actions where it was selected above the cut (a queue takes it whole)."),
        C("caps", "BIGINT", "Of those, the actions where it was closed only in part (a capped take)."),
        C("cap_p_value", "DOUBLE", "P(X >= caps) for X ~ Binomial(cap_opportunities, calibrated cap rate)."),
        C("cap_q_value", "DOUBLE", "Benjamini-Hochberg adjusted cap_p_value."),
        C("kind", "VARCHAR", "Flagged accounts: skipped (passed over) or capped (taken from, but less)."),
        C(
            "evidence_json",
            "VARCHAR",
            "Flagged accounts: every action where it was above the cut and not selected "
            "(rank, cut rank, scores, the cut's account, legitimate-skip reasons), JSON.",
        ),
    ),
    key=("venue", "user"),
    layer="analytics",
    dedup=UNIQUE,
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
    dedup=UNIQUE,
)

TABLES: dict[str, Table] = {
    t.name: t for t in (ADL_STEPS, ADL_POOLS, ADL_RULE_FITS, EXEMPTION_FLAGS, LIQUIDATION_CHECKS)
}
