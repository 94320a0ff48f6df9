"""Which accounts were passed over by ADL more often than the data's own noise allows?

Evidence is rank evidence (:mod:`forensics.audit.evidence`): per account, the number of episodes (the
ADL actions of one block and coin, which all see one state of the book) in which the rule ranked it
above the venue's cut with no legitimate reason to pass it over (``opportunities``), and how many of
those it was passed over in (``skips``). Null: every such
candidate is skipped independently with one probability ``skip_rate``, calibrated from the data as the
share of unflagged opportunities that were skipped (it absorbs mark noise, rounding and lost fills). The
p-value of an account is the exact binomial tail P(X >= skips | opportunities, skip_rate);
Benjamini-Hochberg q-values control the false discovery rate across the accounts tested; the skip rate
is then re-estimated without the flagged accounts and the test repeated until the flags are stable.
Accounts never above a cut are never tested, and one skip alone is never a flag (``MIN_SKIPS``): a
single pass-over cannot be told from a one-off. A flag is a statistical anomaly with its evidence, not an
accusation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats

MIN_SKIPS = 2
MAX_ITERATIONS = 10
EVIDENCE_LIMIT = 50


@dataclass
class ExemptionResult:
    rule: str
    skip_rate: float
    q_threshold: float
    accounts: pl.DataFrame  # one row per account in any pool
    evidence: dict[str, list[dict]] = field(default_factory=dict)
    iterations: list[dict] = field(default_factory=list)

    @property
    def flagged(self) -> pl.DataFrame:
        return self.accounts.filter(pl.col("flagged")).sort(["q_value", "user"])

    @property
    def flagged_users(self) -> set[str]:
        return set(self.accounts.filter(pl.col("flagged"))["user"].to_list())


def account_counts(ev: pl.DataFrame) -> pl.DataFrame:
    """Per account: actions in a pool and selections (in actions); opportunities and skips in *episodes*.

    An episode (``episode`` column; one per action when absent) is the set of actions that saw one state
    of the book: one block and coin. A position the data got wrong, or a mark off by a tick, looks the same
    to every action of the block, so those actions are one observation, not several: an episode is an
    opportunity when the account was above the cut in any of its actions, and a skip when it was passed
    over in every action where it was."""
    episode = "episode" if "episode" in ev.columns else "step_id"
    per = ev.group_by("user", episode).agg(
        pl.len().alias("actions"),
        pl.col("selected").sum().alias("selections"),
        pl.col("opportunity").any().alias("opportunity"),
        (pl.col("opportunity").any() & (pl.col("opportunity") & ~pl.col("skip")).sum().eq(0)).alias("skip"),
    )
    return per.group_by("user").agg(
        pl.col("actions").sum().cast(pl.Int64).alias("eligible_steps"),
        pl.col("opportunity").sum().cast(pl.Int64).alias("opportunities"),
        pl.col("skip").sum().cast(pl.Int64).alias("skips"),
        pl.col("selections").sum().cast(pl.Int64).alias("observed_selections"),
    ).sort("user")


def _pvalues(opps: np.ndarray, skips: np.ndarray, rate: float) -> np.ndarray:
    p = np.ones(len(opps))
    tested = (opps > 0) & (skips > 0)
    p[tested] = stats.binom.sf(skips[tested] - 1, opps[tested], rate)
    return p


def skip_test(counts: pl.DataFrame, *, q: float = 0.05) -> tuple[pl.DataFrame, float, list[dict]]:
    """(counts with skip_rate-based p/q values and ``flagged``, the final skip rate, the iterations)."""
    opps = counts["opportunities"].to_numpy().astype(np.int64)
    skips = counts["skips"].to_numpy().astype(np.int64)
    tested = opps > 0
    flagged = np.zeros(len(opps), dtype=bool)
    history: list[dict] = []
    rate = pv = qv = None
    for it in range(MAX_ITERATIONS):
        base = ~flagged
        # +0.5 / +1: the rate is never exactly 0 (no data proves the venue never errs)
        rate = (skips[base].sum() + 0.5) / (opps[base].sum() + 1.0)
        pv = _pvalues(opps, skips, rate)
        qv = np.ones(len(pv))
        if tested.any():
            qv[tested] = stats.false_discovery_control(pv[tested], method="bh")
        new = tested & (qv <= q) & (skips >= MIN_SKIPS)
        history.append({"iteration": it, "skip_rate": float(rate), "tested": int(tested.sum()),
                        "flagged": int(new.sum())})
        if np.array_equal(new, flagged):
            break
        flagged = new
    out = counts.with_columns(
        pl.Series("expected_skips", opps * rate, dtype=pl.Float64),
        pl.Series("p_value", pv, dtype=pl.Float64),
        pl.Series("q_value", qv, dtype=pl.Float64),
        pl.Series("flagged", flagged),
        pl.Series("tested", tested),
    )
    return out, float(rate), history


def exemption_test(ev: pl.DataFrame, rule: str, *, q: float = 0.05) -> ExemptionResult:
    """Test every account of the rule's evidence frame (:func:`forensics.audit.evidence.rule_evidence`)."""
    accounts, rate, history = skip_test(account_counts(ev), q=q)
    accounts = accounts.with_columns(
        # selections expected had the account been skipped only at the calibrated rate
        (pl.col("observed_selections") + pl.col("skips") - pl.col("expected_skips")).alias("expected_selections"),
    )
    result = ExemptionResult(rule, rate, q, accounts.sort(["p_value", "user"]), iterations=history)
    result.evidence = skip_evidence(ev, sorted(result.flagged_users))
    return result


EVIDENCE_FIELDS = ("step_id", "coin", "rank", "score", "cut_rank", "cut_score", "cut_user", "pool_size",
                   "selected_count", "size", "notional_usd", "leverage", "upnl_usd", "account_value_usd",
                   "mark_source", "skip_reason", "state_note", "state_detail")


def skip_evidence(ev: pl.DataFrame, users: list[str], limit: int = EVIDENCE_LIMIT) -> dict[str, list[dict]]:
    """Per account, the actions where it was above the cut and not selected: the skips (rank, cut rank,
    the cut's account and score) and the passes the data excuse (with the reason), skips first."""
    if not users:
        return {}
    cols = [c for c in EVIDENCE_FIELDS if c in ev.columns]
    rows = ev.filter(pl.col("user").is_in(users) & ~pl.col("selected")
                     & (pl.col("rank") < pl.col("cut_rank")).fill_null(False))
    rows = rows.sort(["user", "skip", "step_id"], descending=[False, True, False])
    out: dict[str, list[dict]] = {u: [] for u in users}
    for r in rows.select("user", "skip", *cols).iter_rows(named=True):
        u = r.pop("user")
        if len(out[u]) < limit:
            r["counted_as_skip"] = r.pop("skip")
            r["ranked_above_cut"] = True
            out[u].append(r)
    return out
