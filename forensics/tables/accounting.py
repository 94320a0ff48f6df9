"""Canonical tables of the accounting area; collected into forensics.tables.ALL_TABLES.

Written by ``pipelines/analysis/accounting.py`` (``forensics.accounting``); USD = venue quote collateral.
Definitions: docs/accounting.md (Chitra et al., adl-methods.md §2).
"""

from __future__ import annotations

from forensics.tables.model import UNIQUE, Column, Table

C = Column

_W = (C("venue", "VARCHAR", "Venue id.", False),)

ADL_WAVES = Table(
    "adl_waves",
    "One row per ADL wave (ADL legs clustered by a time gap, default 5 s): loser deficit, needed budget, "
    "production haircut per evaluation horizon, overshoot, under-coverage, payout ratio, concentration.",
    _W
    + (
        C("wave", "BIGINT", "0-based wave index within the analysed window.", False),
        C("start_ms", "BIGINT", "First ADL leg, epoch ms.", False),
        C("end_ms", "BIGINT", "Last ADL leg, epoch ms.", False),
        C("gap_seconds", "DOUBLE", "Gap threshold used to cut waves, s.", False),
        C("adl_legs", "BIGINT", "ADL legs (winners' fills) in the wave.", False),
        C("winners", "BIGINT", "Distinct deleveraged accounts.", False),
        C("coins", "BIGINT", "Distinct coins deleveraged.", False),
        C("adl_notional_usd", "DOUBLE", "Sum of px x |sz| over the legs, USD.", False),
        C("deficit_usd", "DOUBLE", "Loser deficit D_t = sum over liquidated accounts of (-equity)_+, USD.", False),
        C("max_loss_usd", "DOUBLE", "Largest single loser shortfall in the wave, USD.", False),
        C("losers", "BIGINT", "Liquidated accounts with a positive shortfall.", False),
        C("needed_usd", "DOUBLE", "Needed budget B_t = sum |markPx - px| x |sz| over the legs, USD.", False),
        C("capacity_usd", "DOUBLE", "Haircuttable capacity U_t = sum of positive uPnL of the eligible pool, USD."),
        C("needed_shortfall_usd", "DOUBLE", "Paper's budget at theta = 1: min(D_t, U_t), USD."),
        C("production_0ms", "DOUBLE", "Production haircut H_t at the wave end (two-pass replay), USD."),
        C("production_500ms", "DOUBLE", "H_t evaluated 0.5 s after the wave end, USD."),
        C("production_1000ms", "DOUBLE", "H_t evaluated 1 s after the wave end, USD."),
        C("production_2000ms", "DOUBLE", "H_t evaluated 2 s after the wave end, USD."),
        C("production_5000ms", "DOUBLE", "H_t evaluated 5 s after the wave end, USD."),
        C("overshoot_usd", "DOUBLE", "O_t = H_t(0) - B_t (signed), USD."),
        C("overshoot_500ms", "DOUBLE", "H_t(0.5 s) - B_t, USD."),
        C("overshoot_1000ms", "DOUBLE", "H_t(1 s) - B_t, USD."),
        C("overshoot_2000ms", "DOUBLE", "H_t(2 s) - B_t, USD."),
        C("overshoot_5000ms", "DOUBLE", "H_t(5 s) - B_t, USD."),
        C("under_coverage_usd", "DOUBLE", "(B_t - H_t(0))_+, USD."),
        C("realized_pnl_usd", "DOUBLE", "Sum of closedPnl of the legs (what winners were paid), USD."),
        C("owed_usd", "DOUBLE", "Profit at mark of the closed size: closedPnl + d (px - markPx), USD."),
        C("payout_ratio", "DOUBLE", "realized / owed ('paid $80 of $100' = 0.8)."),
        C("accounts_touched", "BIGINT", "Accounts with a positive production haircut."),
        C("gini", "DOUBLE", "Gini coefficient of the per-account production haircuts."),
        C("top1pct_share", "DOUBLE", "Share of the production haircut borne by the top 1% of touched accounts."),
        C("largest_haircut_usd", "DOUBLE", "Largest single production haircut, USD."),
        C("ptsr", "DOUBLE", "Top winner's surviving endowment / socialized loss (sum of haircuts)."),
        C("pmr", "DOUBLE", "Top winner's surviving endowment / largest single loser shortfall."),
    ),
    key=("venue", "wave"),
    layer="analytics",
    dedup=UNIQUE,
)

ADL_HAIRCUTS = Table(
    "adl_haircuts",
    "One row per (wave, deleveraged account): production haircut (two-pass replay) per horizon, needed "
    "budget of its legs, realized vs owed profit.",
    _W
    + (
        C("wave", "BIGINT", "adl_waves.wave.", False),
        C("user", "VARCHAR", "Deleveraged account.", False),
        C("legs", "BIGINT", "ADL legs of the account in the wave.", False),
        C("coins", "VARCHAR", "Comma-separated coins deleveraged.", False),
        C("closed_notional_usd", "DOUBLE", "Sum of px x |sz|, USD.", False),
        C("needed_usd", "DOUBLE", "Sum of |markPx - px| x |sz| over its legs, USD.", False),
        C("haircut_0ms", "DOUBLE", "(e^noADL - e^ADL)_+ at the wave end, USD."),
        C("haircut_500ms", "DOUBLE", "Same, 0.5 s after the wave end, USD."),
        C("haircut_1000ms", "DOUBLE", "Same, 1 s after, USD."),
        C("haircut_2000ms", "DOUBLE", "Same, 2 s after, USD."),
        C("haircut_5000ms", "DOUBLE", "Same, 5 s after, USD."),
        C("equity_delta_0ms", "DOUBLE", "e^noADL - e^ADL at the wave end before the (.)_+ clamp, USD."),
        C("realized_pnl_usd", "DOUBLE", "closedPnl of its legs, USD."),
        C("owed_usd", "DOUBLE", "Profit at mark of the closed size, USD."),
        C("payout_ratio", "DOUBLE", "realized / owed."),
        C("capacity_usd", "DOUBLE", "Positive uPnL before the wave (pools), else owed profit, USD."),
        C("equity_usd", "DOUBLE", "Account value at mark before the wave (pools), USD."),
        C("haircut_share_of_equity", "DOUBLE", "haircut_0ms / equity_usd."),
    ),
    key=("venue", "wave", "user"),
    layer="analytics",
    dedup=UNIQUE,
)

POLICY_COUNTERFACTUALS = Table(
    "policy_counterfactuals",
    "One row per (policy, wave): a counterfactual ADL policy raising the wave's needed budget from the "
    "reconstructed eligible pool, and production for comparison.",
    _W
    + (
        C(
            "policy",
            "VARCHAR",
            "'production', 'queue_<rule>', 'wealth_pro_rata', 'capped_pro_rata', "
            "'risk_aware_pro_rata', 'leverage_waterfill', 'contracts_pro_rata_int', 'minmax_ilp'.",
            False,
        ),
        C("wave", "BIGINT", "adl_waves.wave.", False),
        C("haircut_usd", "DOUBLE", "Total haircut the policy takes, USD.", False),
        C("target_usd", "DOUBLE", "Needed budget B_t it must raise, USD.", False),
        C("overshoot_usd", "DOUBLE", "haircut - target (negative = under-coverage), USD.", False),
        C("accounts_touched", "BIGINT", "Accounts with a positive haircut.", False),
        C("max_haircut_share", "DOUBLE", "Largest haircut / that account's equity (Chitra's max %)."),
        C("largest_haircut_usd", "DOUBLE", "Largest single haircut, USD."),
        C("gini", "DOUBLE", "Gini of per-account haircuts."),
        C("top1pct_share", "DOUBLE", "Share of the total taken from the top 1% of touched accounts."),
        C("ptsr", "DOUBLE", "Top winner's surviving endowment / socialized loss."),
        C("pmr", "DOUBLE", "Top winner's surviving endowment / largest loser shortfall."),
    ),
    key=("venue", "policy", "wave"),
    layer="analytics",
    dedup=UNIQUE,
)

CASCADE_TIMELINE = Table(
    "cascade_timeline",
    "One row per (block, coin) with liquidated legs or ADL legs: bursts, liquidation -> ADL matching and order.",
    _W
    + (
        C("block", "BIGINT", "L1 block (epoch ms when only API fills exist).", False),
        C("time_ms", "BIGINT", "First event of the block and coin, epoch ms.", False),
        C("coin", "VARCHAR", "Venue symbol.", False),
        C("liq_legs", "BIGINT", "Liquidated legs of non-ADL trades.", False),
        C("liq_size", "DOUBLE", "Their total |size|, coin units.", False),
        C("adl_legs", "BIGINT", "ADL legs (winners' fills).", False),
        C("adl_size", "DOUBLE", "Their total |size|, coin units.", False),
        C(
            "liquidations_first",
            "BOOLEAN",
            "Every liquidation of the block and coin precedes every ADL leg (NULL if one side is absent).",
        ),
        C("since_first_liquidation_s", "DOUBLE", "Seconds since the first liquidation of the window.", False),
        C("wave", "BIGINT", "adl_waves.wave containing the row (NULL outside waves)."),
    ),
    key=("venue", "block", "coin"),
    layer="analytics",
    dedup=UNIQUE,
)

BACKSTOP_COVERAGE = Table(
    "backstop_coverage",
    "The backstop (liquidator) vault per time bucket: positions and PnL from its fills, reported equity, "
    "cumulative loser deficit and coverage ratio.",
    _W
    + (
        C("vault", "VARCHAR", "Vault address.", False),
        C("time_ms", "BIGINT", "Bucket start, epoch ms.", False),
        C("position_notional_usd", "DOUBLE", "Sum of |position| x last price of positions opened in the window, USD."),
        C("trading_pnl_usd", "DOUBLE", "Cash flow + position value at the last price since the window start, USD."),
        C("realized_pnl_usd", "DOUBLE", "Cumulative closedPnl - fee of its fills, USD."),
        C("fills", "BIGINT", "Vault fills in the bucket.", False),
        C("equity_est_usd", "DOUBLE", "Snapshot account value + trading PnL (NULL without a snapshot), USD."),
        C("vault_equity_usd", "DOUBLE", "Latest ingested vault_equity point at or before the bucket, USD."),
        C("cumulative_deficit_usd", "DOUBLE", "Sum of adl_waves.deficit_usd of waves ended by then, USD.", False),
        C("coverage_ratio", "DOUBLE", "Vault equity (reported, else estimated) / cumulative deficit."),
        C("residual_shortfall_usd", "DOUBLE", "(cumulative deficit - vault equity)_+, USD.", False),
    ),
    key=("venue", "vault", "time_ms"),
    layer="analytics",
    dedup=UNIQUE,
)

TABLES: dict[str, Table] = {
    t.name: t for t in (ADL_WAVES, ADL_HAIRCUTS, POLICY_COUNTERFACTUALS, CASCADE_TIMELINE, BACKSTOP_COVERAGE)
}
