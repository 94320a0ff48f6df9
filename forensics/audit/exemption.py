"""Which accounts were passed over by ADL more often than the data's own noise allows?

Evidence is rank evidence (:mod:`forensics.audit.evidence`): per account, the number of episodes (the
ADL actions of one block and coin, which all see one state of the book) in which the rule ranked it
above the venue's cut with no legitimate reason to pass it over (``opportunities``), and how many of
those it was passed over in (``skips``). Null: every such
candidate is skipped independently with one probability ``skip_rate``, calibrated from the data as the
share of unflagged opportunities that were skipped (it absorbs mark noise, rounding and lost fills). The
p-value of an account is the exact binomial tail P(X >= skips | opportunities, skip_rate);
Benjamini-Hochberg q-values control the false discovery rate across the accounts tested; the skip rate
is first estimated without the accounts passed over in most of their opportunities (exempt accounts
are what raises it), then re-estimated without the flagged accounts until the flags are stable.
Accounts never above a cut are never tested, and one skip alone is never a flag (``MIN_SKIPS``): a
single pass-over cannot be told from a one-off. A flag is a statistical anomaly with its evidence, not an
accusation.

*Capped* ("soft") exemptions are tested the same way on other counts: a queue closes whole positions above
its cut (only the last one it touches in part), so a selection above the cut closed only in part takes less
than the rule implies. Per account, ``cap_opportunities`` (selections above the cut) and ``caps`` (those
closed in part) are tested against the calibrated share of partial closes above the cut among the other
accounts. A flag says its kind: ``skipped`` (passed over) or ``capped`` (taken from, but less).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats

MIN_SKIPS = 2
MAX_ITERATIONS = 10
EVIDENCE_LIMIT = 50


SKIPPED, CAPPED = "skipped", "capped"


@dataclass
class ExemptionResult:
    rule: str
    skip_rate: float
    q_threshold: float
    accounts: pl.DataFrame  # one row per account in any pool
    evidence: dict[str, list[dict]] = field(default_factory=dict)
    iterations: list[dict] = field(default_factory=list)
    cap_rate: float | None = None  # calibrated share of selections above the cut closed only in part

    @property
    def flagged(self) -> pl.DataFrame:
        return self.accounts.filter(pl.col("flagged")).sort(["evidence_q", "user"])

    @property
    def flagged_users(self) -> set[str]:
        return set(self.accounts.filter(pl.col("flagged"))["user"].to_list())


def _tail(n_c: int, n_g: int, x: int, r_c: float, r_g: float) -> float:
    """P(X_c + X_g >= x), X_c ~ Bin(n_c, r_c), X_g ~ Bin(n_g, r_g), exactly."""
    if n_g == 0:
        return float(stats.binom.sf(x - 1, n_c, r_c))
    pmf = np.convolve(stats.binom.pmf(np.arange(n_c + 1), n_c, r_c), stats.binom.pmf(np.arange(n_g + 1), n_g, r_g))
    return float(min(1.0, pmf[x:].sum()))


def _rate(skips: np.ndarray, opps: np.ndarray) -> float:
    # +0.5 / +1: a rate is never exactly 0 (no data prove the venue never errs)
    return float((skips.sum() + 0.5) / (opps.sum() + 1.0))


def _benjamini_hochberg(pv: np.ndarray, tested: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of the tested p-values (1 for the others). Only p-values below 1 are
    sorted: an account never passed over has p = 1, and so q = 1, whatever the others."""
    qv = np.ones(len(pv))
    m = int(tested.sum())
    idx = np.flatnonzero(tested & (pv < 1.0))
    if m == 0 or not len(idx):
        return qv
    order = idx[np.argsort(pv[idx], kind="stable")]
    adj = pv[order] * m / np.arange(1, len(order) + 1)
    qv[order] = np.minimum(np.minimum.accumulate(adj[::-1])[::-1], 1.0)
    return qv


def skip_test(counts: pl.DataFrame, *, q: float = 0.05) -> tuple[pl.DataFrame, float, list[dict]]:
    """(counts with p/q values and ``flagged``, the final skip rate of clean episodes, the iterations).

    Two calibrated rates: episodes whose account value the data vouch for, and those after the account
    lost a fill (at least the clean rate); an account's skips are tested against both, exactly."""
    opps = counts["opportunities"].to_numpy().astype(np.int64)
    skips = counts["skips"].to_numpy().astype(np.int64)
    cols = counts.columns
    g_opps = (
        counts["gap_opportunities"].to_numpy().astype(np.int64) if "gap_opportunities" in cols else np.zeros_like(opps)
    )
    g_skips = counts["gap_skips"].to_numpy().astype(np.int64) if "gap_skips" in cols else np.zeros_like(skips)
    c_opps, c_skips = opps - g_opps, skips - g_skips
    tested = opps > 0
    flagged = np.zeros(len(opps), dtype=bool)
    # the first estimate leaves out the accounts passed over in most of their opportunities: exempt accounts
    # are exactly what raises the skip rate, and where they are many a rate with them flags none of them
    suspects = (skips >= MIN_SKIPS) & (2 * skips >= opps)
    history: list[dict] = []
    rate = gap_rate = 0.0
    pv = qv = np.ones(len(opps))
    for it in range(MAX_ITERATIONS):
        base = ~(flagged | suspects) if it == 0 else ~flagged
        rate = _rate(c_skips[base], c_opps[base])
        gap_rate = max(rate, _rate(g_skips[base], g_opps[base])) if g_opps[base].sum() else rate
        pv = np.ones(len(opps))
        plain = tested & (skips > 0) & (g_opps == 0)
        pv[plain] = stats.binom.sf(skips[plain] - 1, opps[plain], rate)
        for i in np.flatnonzero(tested & (skips > 0) & (g_opps > 0)):
            pv[i] = _tail(int(c_opps[i]), int(g_opps[i]), int(skips[i]), rate, gap_rate)
        qv = _benjamini_hochberg(pv, tested)
        new = tested & (qv <= q) & (skips >= MIN_SKIPS)
        history.append(
            {
                "iteration": it,
                "skip_rate": rate,
                "skip_rate_after_lost_fill": gap_rate,
                "tested": int(tested.sum()),
                "flagged": int(new.sum()),
            }
        )
        if it > 0 and np.array_equal(new, flagged):
            break
        flagged = new
    out = counts.with_columns(
        pl.Series("expected_skips", c_opps * rate + g_opps * gap_rate, dtype=pl.Float64),
        pl.Series("p_value", pv, dtype=pl.Float64),
        pl.Series("q_value", qv, dtype=pl.Float64),
        pl.Series("flagged", flagged),
        pl.Series("tested", tested),
    )
    return out, rate, history


def exemption_test(counts: pl.DataFrame, rule: str, *, q: float = 0.05) -> ExemptionResult:
    """Test every account of ``counts`` (:meth:`forensics.audit.evidence.Evidence.account_counts`) for skips
    and, where the counts carry them, for capped takes; evidence is attached by the caller."""
    accounts, rate, history = skip_test(counts, q=q)
    accounts = accounts.with_columns(
        # selections expected had the account been skipped only at the calibrated rate
        (pl.col("observed_selections") + pl.col("skips") - pl.col("expected_skips")).alias("expected_selections"),
    )
    cap_rate = None
    if "caps" in counts.columns and int(counts["caps"].sum()) >= MIN_SKIPS:
        caps, cap_rate, _ = skip_test(
            counts.select(pl.col("cap_opportunities").alias("opportunities"), pl.col("caps").alias("skips")), q=q
        )
        accounts = accounts.with_columns(
            pl.Series("cap_p_value", caps["p_value"]),
            pl.Series("cap_q_value", caps["q_value"]),
            pl.Series("capped", caps["flagged"]),
        )
    else:
        accounts = accounts.with_columns(cap_p_value=pl.lit(1.0), cap_q_value=pl.lit(1.0), capped=pl.lit(False))
    accounts = accounts.with_columns(
        kind=pl.when(pl.col("flagged")).then(pl.lit(SKIPPED)).when(pl.col("capped")).then(pl.lit(CAPPED)),
        flagged=pl.col("flagged") | pl.col("capped"),
        evidence_q=pl.min_horizontal("q_value", "cap_q_value"),
    )
    return ExemptionResult(rule, rate, q, accounts, iterations=history, cap_rate=cap_rate)


EVIDENCE_FIELDS = (
    "step_id",
    "coin",
    "rank",
    "score",
    "cut_rank",
    "cut_score",
    "cut_user",
    "pool_size",
    "selected_count",
    "size",
    "notional_usd",
    "leverage",
    "upnl_usd",
    "account_value_usd",
    "mark_source",
    "skip_reason",
    "state_note",
    "state_detail",
    "closed_size",
)


def skip_evidence(ev: pl.DataFrame, users: list[str], limit: int = EVIDENCE_LIMIT) -> dict[str, list[dict]]:
    """Per account, the actions where it was above the cut and not selected: the skips (rank, cut rank,
    the cut's account and score) and the passes the data excuse (with the reason), skips first; then the
    actions where it was selected above the cut and closed only in part (``counted_as_cap``)."""
    if not users:
        return {}
    cols = [c for c in EVIDENCE_FIELDS if c in ev.columns]
    above = (pl.col("rank") < pl.col("cut_rank")).fill_null(False)
    capped = pl.col("selected") & pl.col("shape_violation") if "shape_violation" in ev.columns else pl.lit(False)
    rows = ev.filter(pl.col("user").is_in(users) & above & (~pl.col("selected") | capped))
    rows = rows.with_columns(_cap=capped).sort(
        ["user", "_cap", "skip", "step_id"], descending=[False, False, True, False]
    )
    out: dict[str, list[dict]] = {u: [] for u in users}
    for r in rows.select("user", "skip", "_cap", *cols).iter_rows(named=True):
        u = r.pop("user")
        if len(out[u]) < limit:
            r["counted_as_skip"] = r.pop("skip")
            r["counted_as_cap"] = r.pop("_cap")
            r["ranked_above_cut"] = True
            out[u].append(r)
    return out
