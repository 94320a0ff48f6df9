"""Diagnostics of the rule fit, for the report and for rules no library entry describes.

Off the critical path: the audit names the rule and flags accounts from rank evidence
(:mod:`forensics.audit.identify`). These measures describe how well each ordering rule explains the
observed fill order and are computed on a sample of actions by default (``max_steps``): Kendall tau
between fill order and score order among the selected, NDCG@k with closed size as relevance, and the
Plackett-Luce log-likelihood of the observed fill orders with a fitted temperature (AIC = 2 - 2 LL). A
conditional logit on log features (statsmodels) gives an undocumented-rule direction. Methods:
adl-methods.md §3.2.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import optimize, stats

from .rules import RULES
from .table import score_pools

MAX_TEMPERATURE = 20.0
# actions sampled for the fill-order diagnostics (whole actions, chosen independently of the outcomes)
DIAGNOSTIC_STEPS = 60


@dataclass
class StepArrays:
    """Pools grouped by step, as flat numpy arrays plus group offsets (sorted by step_id)."""

    step_ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    selected: np.ndarray
    fill_order: np.ndarray
    users: np.ndarray
    frame: pl.DataFrame

    @classmethod
    def from_pools(cls, pools: pl.DataFrame) -> StepArrays:
        frame = pools.sort(["step_id", "user"])
        steps = frame["step_id"].to_numpy()
        uniq, starts = np.unique(steps, return_index=True)
        ends = np.append(starts[1:], len(steps))
        return cls(
            step_ids=uniq,
            starts=starts,
            ends=ends,
            selected=frame["selected"].to_numpy().astype(bool),
            fill_order=frame["fill_order"].fill_null(0).to_numpy().astype(np.int64),
            users=frame["user"].to_numpy(),
            frame=frame,
        )


def utilities(scores: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per-step rank utilities: 0 for the top-scored candidate, -1 for the next, ... (ties share the
    average rank). Comparing rules on rank positions keeps the one-parameter Plackett-Luce model
    scale-free: the temperature says how many queue positions the venue's noise spans."""
    step = np.repeat(np.arange(len(starts)), ends - starts)
    clean = np.where(np.isfinite(scores), scores, -np.inf)
    rank = pl.DataFrame({"step": step, "neg": -clean}).select(pl.col("neg").rank("average").over("step"))
    return 1.0 - rank.to_series().to_numpy().astype(float)


class _PlackettLuce:
    """The theta-independent parts of the Plackett-Luce likelihood of the observed fill orders (top-k of
    each pool), so the temperature search only rescales: the unselected utilities of every informative
    step back to back, and the selected ones in fill order, each with ``np.*.reduceat`` offsets."""

    def __init__(self, z: np.ndarray, sa: StepArrays) -> None:
        rest, chosen, r_off, c_off = [], [], [], []
        n_rest = n_chosen = 0
        for a, b in zip(sa.starts, sa.ends):
            sel = sa.selected[a:b]
            k = int(sel.sum())
            if k == 0 or k == b - a:
                continue
            chosen_idx = np.flatnonzero(sel)
            order = chosen_idx[np.argsort(sa.fill_order[a:b][chosen_idx], kind="stable")]
            chosen.append(z[a:b][order])
            rest.append(z[a:b][~sel])
            r_off.append(n_rest)
            c_off.append(n_chosen)
            n_rest += b - a - k
            n_chosen += k
        self.rest = np.concatenate(rest) if rest else np.zeros(0)
        self.chosen = np.concatenate(chosen) if chosen else np.zeros(0)
        self.r_off = np.asarray(r_off, dtype=np.int64)
        self.c_off = np.asarray(c_off, dtype=np.int64)
        self.r_seg = np.repeat(np.arange(len(r_off)), np.diff(np.append(self.r_off, n_rest)))
        self.c_seg = np.repeat(np.arange(len(c_off)), np.diff(np.append(self.c_off, n_chosen)))
        self.c_last = np.append(self.c_off[1:], n_chosen) - 1  # last chosen row of each step

    def loglik(self, theta: float) -> float:
        if not len(self.chosen):
            return 0.0
        u_rest, u = theta * self.rest, theta * self.chosen
        m = np.maximum(np.maximum.reduceat(u_rest, self.r_off), np.maximum.reduceat(u, self.c_off))
        rest_sum = np.add.reduceat(np.exp(u_rest - m[self.r_seg]), self.r_off)
        e = np.exp(u - m[self.c_seg])
        # the chosen items not yet taken when each is drawn: itself and those after it in fill order, summed
        # per step from the last one (a global running sum minus its value would cancel to noise)
        tail = (
            pl.DataFrame({"s": self.c_seg[::-1], "e": e[::-1]})
            .select(pl.col("e").cum_sum().over("s"))["e"]
            .to_numpy()[::-1]
        )
        with np.errstate(divide="ignore"):
            log_denom = m[self.c_seg] + np.log(rest_sum[self.c_seg] + tail)
        for s in np.unique(self.c_seg[~np.isfinite(log_denom)]):  # underflow at a large theta: exact, per step
            rows = slice(self.c_off[s], self.c_last[s] + 1)
            r = u_rest[self.r_off[s] : (self.r_off[s + 1] if s + 1 < len(self.r_off) else len(u_rest))]
            exact = np.logaddexp(np.logaddexp.reduce(r), np.logaddexp.accumulate(u[rows][::-1])[::-1])
            log_denom[rows] = exact
        return float((u - log_denom).sum())


def fit_temperature(z: np.ndarray, sa: StepArrays) -> tuple[float, float]:
    """Maximum-likelihood temperature in [0, MAX_TEMPERATURE]; returns (theta, log-likelihood)."""
    model = _PlackettLuce(z, sa)
    res = optimize.minimize_scalar(
        lambda t: -model.loglik(t),
        bounds=(0.0, MAX_TEMPERATURE),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return float(res.x), float(-res.fun)


def _rank_metrics(scored: pl.DataFrame, col: str) -> pl.DataFrame:
    """Per-step AUC, violation rate, top-k precision and NDCG for one score column."""
    s = pl.col(col)
    per = scored.select(
        "step_id",
        "selected",
        "closed_size",
        s.rank("average").over("step_id").alias("r_avg"),
        s.rank("max").over("step_id").alias("r_max"),
        s.rank("max").over(["step_id", "selected"]).alias("r_max_sel"),
        s.rank("ordinal", descending=True).over("step_id").alias("pos"),
        pl.len().over("step_id").alias("n"),
        pl.col("selected").sum().over("step_id").alias("k"),
    ).filter((pl.col("k") > 0) & (pl.col("k") < pl.col("n")))
    per = per.with_columns(
        # unselected candidates scoring strictly above this selected one
        pl.when(pl.col("selected"))
        .then((pl.col("n") - pl.col("r_max")) - (pl.col("k") - pl.col("r_max_sel")))
        .otherwise(0)
        .alias("viol"),
        (pl.col("closed_size").cast(pl.Float64) / (pl.col("pos").cast(pl.Float64) + 1.0).log(2)).alias("dcg_term"),
    )
    by_step = per.group_by("step_id").agg(
        n=pl.col("n").first(),
        k=pl.col("k").first(),
        sum_r_sel=pl.col("r_avg").filter(pl.col("selected")).sum(),
        viol=pl.col("viol").sum(),
        topk=(pl.col("selected") & (pl.col("pos") <= pl.col("k"))).sum(),
        dcg=pl.col("dcg_term").filter(pl.col("pos") <= pl.col("k")).sum(),
        ideal=pl.col("closed_size").cast(pl.Float64).sort(descending=True).head(pl.col("k").first()),
    )
    by_step = by_step.with_columns(
        auc=(pl.col("sum_r_sel") - pl.col("k") * (pl.col("k") + 1) / 2) / (pl.col("k") * (pl.col("n") - pl.col("k"))),
        violation_rate=pl.col("viol") / (pl.col("k") * (pl.col("n") - pl.col("k"))),
        top_k_precision=pl.col("topk") / pl.col("k"),
        idcg=pl.col("ideal").list.eval(pl.element() / (pl.int_range(pl.len()) + 2).cast(pl.Float64).log(2)).list.sum(),
    )
    return by_step.with_columns(ndcg=pl.when(pl.col("idcg") > 0).then(pl.col("dcg") / pl.col("idcg")).otherwise(None))


def _kendall(scores: np.ndarray, sa: StepArrays) -> float:
    """Mean Kendall tau between fill order and score order inside each step's selected set."""
    taus = []
    for a, b in zip(sa.starts, sa.ends):
        sel = np.flatnonzero(sa.selected[a:b])
        if len(sel) < 3:
            continue
        order = sa.fill_order[a:b][sel]
        tau = stats.kendalltau(-order, scores[a:b][sel]).statistic
        if np.isfinite(tau):
            taus.append(tau)
    return float(np.mean(taus)) if taus else float("nan")


# --- discovery: conditional logit on log features -------------------------------------------------------

LOGIT_FEATURES = ("log_price_ratio", "log_leverage", "log_notional")
SUBGROUP = 8


def conditional_logit(pools: pl.DataFrame, *, max_rows: int = 100_000, seed: int = 0) -> dict:
    """Fit selected ~ log features with step fixed effects (statsmodels ConditionalLogit). Reports
    weights, Wald 95% intervals, the unit direction (a deterministic queue separates the data, so the
    magnitude diverges while the direction converges), and its cosine with each rule that has a
    log-linear direction. Above ``max_rows`` candidate rows, a random subset of whole steps is fitted
    (chosen independently of the outcomes, so the likelihood stays valid; the intervals widen)."""
    from statsmodels.discrete.conditional_models import ConditionalLogit

    df = pools.with_columns(
        log_price_ratio=pl.when(pl.col("side") == "long")
        .then((pl.col("mark_px") / pl.col("entry_px")).log())
        .otherwise((pl.col("entry_px") / pl.col("mark_px")).log()),
        log_leverage=pl.col("leverage").cast(pl.Float64).clip(lower_bound=1e-9).log(),
        log_notional=pl.col("notional_usd").cast(pl.Float64).clip(lower_bound=1e-9).log(),
    ).filter(pl.all_horizontal(pl.col(list(LOGIT_FEATURES)).is_finite()))
    varying = (
        df.group_by("step_id")
        .agg(k=pl.col("selected").sum(), n=pl.len())
        .filter((pl.col("k") > 0) & (pl.col("k") < pl.col("n")))
        .sort("step_id")
    )
    steps_with_decision = varying.height
    varying = varying.sample(fraction=1.0, shuffle=True, seed=seed)
    varying = varying.filter((pl.col("n").cum_sum() <= max_rows) | (pl.int_range(pl.len()) < 2))["step_id"]
    df = df.filter(pl.col("step_id").is_in(varying.implode())).sort("step_id")
    if df.height == 0 or len(varying) < 2:
        return {"features": list(LOGIT_FEATURES), "steps": 0, "note": "too few steps with a decision"}
    # statsmodels' exact conditional likelihood multiplies exp(x b) over every selected row of a group
    # and overflows on pools with dozens selected. A random partition of each pool into small
    # subgroups (independent of the outcome) still gives a valid conditional likelihood.
    rng = np.random.default_rng(seed)
    df = df.with_columns(_u=pl.Series(rng.random(df.height))).sort(["step_id", "_u"])
    sub = df.select((pl.int_range(pl.len()).over("step_id") // SUBGROUP).alias("sub"))["sub"].to_numpy()
    groups = df["step_id"].to_numpy().astype(np.int64) * 100_000 + sub
    x = df.select(LOGIT_FEATURES).to_numpy()
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    y = df["selected"].cast(pl.Int64).to_numpy()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        model = ConditionalLogit(y, x, groups=groups)
        fit = model.fit(disp=False, maxiter=200)
    params = np.asarray(fit.params, dtype=float)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bse = np.asarray(fit.bse, dtype=float)
    except (ValueError, np.linalg.LinAlgError):  # singular information matrix under separation
        bse = np.full_like(params, np.nan)
    norm = float(np.linalg.norm(params)) or 1.0
    direction = params / norm
    cosines = {}
    for rule in RULES.values():
        if rule.direction:
            d = np.asarray(rule.direction, dtype=float)
            cosines[rule.name] = float(direction @ (d / np.linalg.norm(d)))
    best = max(cosines, key=cosines.get) if cosines else None
    return {
        "features": list(LOGIT_FEATURES),
        "standardized": True,
        "steps": int(len(varying)),
        "steps_with_decision": int(steps_with_decision),
        "rows": int(df.height),
        "coef": params.tolist(),
        "ci95": [[float(p - 1.96 * s), float(p + 1.96 * s)] for p, s in zip(params, bse)],
        "direction": direction.tolist(),
        "cosine_with_rules": cosines,
        "closest_rule": best,
        "note": "coefficients of standardized log features; a deterministic queue separates the data, so "
        "read the direction rather than the magnitude",
    }


def rank_diagnostics(
    pools: pl.DataFrame, fits: list, *, max_steps: int | None = DIAGNOSTIC_STEPS, seed: int = 0
) -> dict:
    """Fill Kendall tau, NDCG, Plackett-Luce log-likelihood, temperature and AIC into the ``fits``
    (:class:`forensics.audit.identify.RuleFit`) of ordering rules, on at most ``max_steps`` actions with a
    decision (``None``: all). Returns what was sampled."""
    decided = (
        pools.group_by("step_id")
        .agg(k=pl.col("selected").sum(), n=pl.len())
        .filter((pl.col("k") > 0) & (pl.col("k") < pl.col("n")))
        .sort("step_id")["step_id"]
    )
    chosen = decided if max_steps is None or len(decided) <= max_steps else decided.sample(max_steps, seed=seed)
    sample = pools.filter(pl.col("step_id").is_in(chosen.implode()))
    ordering = [RULES[f.name] for f in fits if f.kind != "allocation"]
    if not sample.height or not ordering:
        return {"steps": 0, "of": len(decided)}
    scored = score_pools(sample, ordering)
    sa = StepArrays.from_pools(scored)
    by_name = {f.name: f for f in fits}
    for rule in ordering:
        col = f"score_{rule.name}"
        scores = sa.frame[col].to_numpy().astype(float)
        z = utilities(scores, sa.starts, sa.ends)
        theta, ll = fit_temperature(z, sa)
        m = _rank_metrics(scored, col)
        fit = by_name[rule.name]
        fit.kendall_tau = _kendall(scores, sa)
        fit.ndcg = float(m["ndcg"].mean()) if m.height else None
        fit.log_likelihood, fit.temperature, fit.aic = ll, theta, 2.0 - 2.0 * ll
    return {"steps": int(len(chosen)), "of": int(len(decided)), "seed": seed}
