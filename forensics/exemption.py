"""Which accounts were skipped by ADL more often than chance allows under the inferred rule?

Null model: the venue applies the inferred queue rule with noise of the fitted Plackett-Luce
temperature. Per step, Gumbel-top-k Monte Carlo (exact Plackett-Luce sampling without replacement)
gives each eligible account its inclusion probability p(a, e); without an exemption, the account's
number of selections is Poisson-binomial(p(a, e)), so the p-value of a deficit is P(X <= observed),
computed exactly. Benjamini-Hochberg q-values control the false discovery rate across accounts.
Flagged accounts are then left out of the temperature fit (they bias it) and the test runs again.
Methods: adl-methods.md §3.3. A flag is a statistical anomaly, not an accusation: its evidence lists
the steps, ranks and any legitimate-skip reason the data show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats

from forensics.inference import StepArrays, fit_temperature, utilities
from forensics.rules import RULES, score_pools

# Candidates this far (in utility) below the k-th best of a step are never drawn in practice
# (probability < e^-30); they keep p = 0 without being simulated.
CUTOFF = 30.0


@dataclass
class ExemptionResult:
    rule: str
    temperature: float
    draws: int
    q_threshold: float
    accounts: pl.DataFrame  # one row per eligible account
    evidence: dict[str, list[dict]] = field(default_factory=dict)
    iterations: list[dict] = field(default_factory=list)

    @property
    def flagged(self) -> pl.DataFrame:
        return self.accounts.filter(pl.col("flagged")).sort("q_value")


def inclusion_probabilities(z: np.ndarray, sa: StepArrays, theta: float, draws: int, seed: int) -> np.ndarray:
    """p(candidate row is among the step's selected) under Plackett-Luce(theta * z), by Gumbel-top-k."""
    rng = np.random.default_rng(seed)
    p = np.zeros(len(z))
    for a, b in zip(sa.starts, sa.ends):
        k = int(sa.selected[a:b].sum())
        n = b - a
        if k == 0:
            continue
        if k >= n:
            p[a:b] = 1.0
            continue
        u = theta * z[a:b]
        kth = np.partition(u, n - k)[n - k]
        live = np.flatnonzero(u >= kth - CUTOFF)
        if len(live) <= k:
            p[a + live] = 1.0
            continue
        g = u[live][None, :] + rng.gumbel(size=(draws, len(live)))
        top = np.argpartition(-g, k - 1, axis=1)[:, :k]
        counts = np.bincount(top.ravel(), minlength=len(live))
        # +0.5 / +1 keeps every probability strictly inside (0, 1): MC never proves certainty
        p[a + live] = (counts + 0.5) / (draws + 1.0)
    return p


def _smooth(p: np.ndarray, n: int) -> np.ndarray:
    return np.clip(p, 0.5 / (n + 1), 1 - 0.5 / (n + 1))


def cyclic_probabilities(sa: StepArrays) -> np.ndarray:
    """Random start + cyclic walk: every candidate of a step is covered with probability k/n."""
    p = np.zeros(len(sa.selected))
    for a, b in zip(sa.starts, sa.ends):
        k = int(sa.selected[a:b].sum())
        p[a:b] = _smooth(np.full(b - a, k / (b - a)), b - a) if k else 0.0
    return p


def allocation_probabilities(sa: StepArrays, weights: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """Pro-rata: candidates whose predicted share is at least the smallest observed cut should all be
    touched; their probability is the step's observed rate among them (calibrated, conservative)."""
    p = np.zeros(len(sa.selected))
    for a, b in zip(sa.starts, sa.ends):
        sel = sa.selected[a:b]
        w = np.nan_to_num(weights[a:b], nan=0.0)
        total = closed[a:b].sum()
        if not sel.any() or w.sum() <= 0:
            continue
        pred = total * w / w.sum()
        expected = pred >= closed[a:b][sel].min()
        for group in (expected, ~expected):
            if group.any():
                p[a:b][group] = _smooth(np.full(group.sum(), sel[group].mean()), int(group.sum()))
    return p


def poisson_binomial_cdf(ps: np.ndarray, k: int) -> float:
    """P(X <= k) for X = sum of independent Bernoulli(ps), exactly (dynamic programming, O(n k))."""
    dist = np.zeros(k + 2)
    dist[0] = 1.0
    for p in ps:
        dist[1:] = dist[1:] * (1 - p) + dist[:-1] * p
        dist[0] *= 1 - p
    return float(min(1.0, dist[: k + 1].sum()))


def _account_table(sa: StepArrays, p: np.ndarray) -> pl.DataFrame:
    df = pl.DataFrame({"user": sa.users, "step_id": sa.frame["step_id"], "p": p, "selected": sa.selected})
    agg = df.group_by("user").agg(
        eligible_steps=pl.len(),
        expected_selections=pl.col("p").sum(),
        observed_selections=pl.col("selected").sum(),
        ps=pl.col("p"),
    )
    pvals = []
    for ps, obs, exp in zip(agg["ps"].to_list(), agg["observed_selections"].to_list(),
                            agg["expected_selections"].to_list()):
        # one-sided: only a deficit of selections is evidence of an exemption; a surplus is not tested
        pvals.append(1.0 if obs >= exp else poisson_binomial_cdf(np.asarray(ps), int(obs)))
    agg = agg.drop("ps").with_columns(p_value=pl.Series(pvals, dtype=pl.Float64))
    q = stats.false_discovery_control(agg["p_value"].to_numpy(), method="bh") if agg.height else np.array([])
    return agg.with_columns(q_value=pl.Series(q, dtype=pl.Float64))


def exemption_test(
    pools: pl.DataFrame,
    rule: str,
    *,
    draws: int = 1000,
    q: float = 0.05,
    seed: int = 0,
    iterations: int = 2,
    exclude_from_fit: set[str] | None = None,
) -> ExemptionResult:
    """Test every eligible account under ``rule``; flag q <= ``q``; re-fit without flags and repeat."""
    kind = RULES[rule].kind
    scored = score_pools(pools, [RULES[rule]]) if kind == "queue" else pools.with_columns(
        pl.lit(0.0).alias(f"score_{rule}")
    )
    sa = StepArrays.from_pools(scored)
    z = utilities(sa.frame[f"score_{rule}"].to_numpy().astype(float), sa.starts, sa.ends)
    history: list[dict] = []
    theta = float("nan")
    if kind != "queue":
        if rule == "random_cyclic":
            p = cyclic_probabilities(sa)
        else:
            weights = sa.frame.select(RULES[rule].weight())[:, 0].to_numpy().astype(float)
            p = allocation_probabilities(sa, weights, sa.frame["closed_size"].to_numpy().astype(float))
        table = _account_table(sa, p).with_columns(flagged=pl.col("q_value") <= q)
        history.append({"iteration": 0, "null": "cyclic coverage k/n" if rule == "random_cyclic"
                        else "pro-rata touch rate", "flagged": int(table["flagged"].sum())})
    excluded = set(exclude_from_fit or ())
    for it in range(iterations if kind == "queue" else 0):
        fit_arrays = sa if not excluded else StepArrays.from_pools(scored.filter(~pl.col("user").is_in(list(excluded))))
        fit_z = z if not excluded else utilities(
            fit_arrays.frame[f"score_{rule}"].to_numpy().astype(float), fit_arrays.starts, fit_arrays.ends
        )
        theta, ll = fit_temperature(fit_z, fit_arrays)
        p = inclusion_probabilities(z, sa, theta, draws, seed + it)
        table = _account_table(sa, p).with_columns(flagged=pl.col("q_value") <= q)
        flagged = set(table.filter(pl.col("flagged"))["user"].to_list())
        history.append({"iteration": it, "temperature": theta, "log_likelihood": ll,
                        "excluded_from_fit": len(excluded), "flagged": len(flagged)})
        if flagged <= excluded:
            break
        excluded |= flagged
    result = ExemptionResult(rule, theta, draws, q, table.sort("p_value"), iterations=history)
    result.evidence = evidence(sa, z, result.flagged["user"].to_list())
    return result


def evidence(sa: StepArrays, z: np.ndarray, users: list[str], limit: int = 50) -> dict[str, list[dict]]:
    """Per flagged account, the steps where it was eligible but skipped: its rank there, the lowest-ranked
    selected account, and any legitimate-skip reason the data show."""
    frame = sa.frame.with_columns(rank=pl.Series(1.0 - z))
    wanted = set(users)
    lowest = (
        frame.filter(pl.col("selected"))
        .sort("rank", descending=True)
        .group_by("step_id", maintain_order=True)
        .first()
        .select("step_id", lowest_selected_user="user", lowest_selected_rank="rank", k=pl.lit(None))
    )
    sel_count = frame.group_by("step_id").agg(selected_count=pl.col("selected").sum(), pool_size=pl.len())
    rows = (
        frame.filter(pl.col("user").is_in(list(wanted)) & ~pl.col("selected"))
        .join(lowest.drop("k"), on="step_id", how="left")
        .join(sel_count, on="step_id", how="left")
        .sort(["user", "rank"])
    )
    out: dict[str, list[dict]] = {u: [] for u in users}
    cols = ["step_id", "coin", "rank", "pool_size", "selected_count", "lowest_selected_user", "lowest_selected_rank",
            "skip_reason", "size", "notional_usd", "leverage", "upnl_usd"]
    cols = [c for c in cols if c in rows.columns]
    for r in rows.select(["user", *cols]).iter_rows(named=True):
        if len(out[r["user"]]) < limit:
            u = r.pop("user")
            r["ranked_above_lowest_selected"] = r["lowest_selected_rank"] is not None and r["rank"] < r["lowest_selected_rank"]
            out[u].append(r)
    return out
