"""Which ADL selection rule did the venue apply? Scoring every rule against observed ADL steps.

Input: ``adl_pools`` rows (one per step x eligible candidate, with ``selected`` and ``fill_order``).
For each queue rule, over all steps: pairwise violation rate, AUC (Mann-Whitney), top-k precision,
Kendall tau between fill order and score order, NDCG, and the Plackett-Luce log-likelihood of the
observed fill order with a fitted temperature (one parameter, so AIC = 2 - 2 LL). Allocation rules
are scored by how well they predict the closed sizes. Methods: adl-methods.md §3.2.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import optimize, stats

from forensics.rules import ALLOCATION_RULES, QUEUE_RULES, RULES, Rule, score_pools

# A documented rule "fits" when it explains the selections this well (AUC and violation rate are
# averaged over steps; exempt accounts and reconstruction noise keep a true rule slightly off 1/0).
FIT_MIN_AUC = 0.9
FIT_MAX_VIOLATION = 0.1
ALLOCATION_FIT_MIN = 0.9
# coverage is reported, not required: integer-lot pro-rata leaves small positions with zero lots
ALLOCATION_MIN_COVERAGE = 0.0
ALLOCATION_MIN_PARTIAL = 0.5
ALLOCATION_MIN_SELECTED = 3
CYCLIC_FIT_MIN = 0.8
CYCLIC_MAX_SHARE = 0.8
# Evidence margin to call one queue rule better than the runner-up (difference in AIC).
AIC_MARGIN = 10.0
MAX_TEMPERATURE = 20.0


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
    step back to back (``np.add.reduceat`` offsets) and each step's selected utilities in fill order."""

    def __init__(self, z: np.ndarray, sa: StepArrays) -> None:
        rest, offsets, self.chosen = [], [], []
        n_rest = 0
        for a, b in zip(sa.starts, sa.ends):
            sel = sa.selected[a:b]
            k = int(sel.sum())
            if k == 0 or k == b - a:
                continue
            chosen_idx = np.flatnonzero(sel)
            order = chosen_idx[np.argsort(sa.fill_order[a:b][chosen_idx], kind="stable")]
            self.chosen.append(z[a:b][order])
            offsets.append(n_rest)
            rest.append(z[a:b][~sel])
            n_rest += b - a - k
        self.rest = np.concatenate(rest) if rest else np.zeros(0)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.seg = np.repeat(np.arange(len(offsets)), np.diff(np.append(self.offsets, n_rest)))

    def loglik(self, theta: float) -> float:
        if not self.chosen:
            return 0.0
        u_rest = theta * self.rest
        m = np.maximum.reduceat(u_rest, self.offsets)
        log_rest = m + np.log(np.add.reduceat(np.exp(u_rest - m[self.seg]), self.offsets))
        total = 0.0
        for lr, z_chosen in zip(log_rest, self.chosen):
            u = theta * z_chosen
            # log-sum-exp of the chosen items not yet taken, in reverse fill order
            tail = np.logaddexp.accumulate(u[::-1])[::-1]
            total += float((u - np.logaddexp(lr, tail)).sum())
        return total


def fit_temperature(z: np.ndarray, sa: StepArrays) -> tuple[float, float]:
    """Maximum-likelihood temperature in [0, MAX_TEMPERATURE]; returns (theta, log-likelihood)."""
    model = _PlackettLuce(z, sa)
    res = optimize.minimize_scalar(
        lambda t: -model.loglik(t), bounds=(0.0, MAX_TEMPERATURE), method="bounded", options={"xatol": 1e-3},
    )
    return float(res.x), float(-res.fun)


def _rank_metrics(scored: pl.DataFrame, col: str) -> pl.DataFrame:
    """Per-step AUC, violation rate, top-k precision and NDCG for one score column."""
    s = pl.col(col)
    per = scored.select(
        "step_id", "selected", "closed_size",
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


@dataclass
class RuleScore:
    name: str
    kind: str
    violation_rate: float | None = None
    auc: float | None = None
    top_k_precision: float | None = None
    kendall_tau: float | None = None
    ndcg: float | None = None
    log_likelihood: float | None = None
    temperature: float | None = None
    aic: float | None = None
    allocation_fit: float | None = None
    coverage: float | None = None
    partial_share: float | None = None
    steps: int = 0

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


def score_queue_rule(rule: Rule, scored: pl.DataFrame, sa: StepArrays) -> tuple[RuleScore, np.ndarray, float]:
    col = f"score_{rule.name}"
    m = _rank_metrics(scored, col)
    scores = sa.frame[col].to_numpy().astype(float)
    z = utilities(scores, sa.starts, sa.ends)
    theta, ll = fit_temperature(z, sa)
    result = RuleScore(
        rule.name, rule.kind,
        violation_rate=float(m["violation_rate"].mean()) if m.height else None,
        auc=float(m["auc"].mean()) if m.height else None,
        top_k_precision=float(m["top_k_precision"].mean()) if m.height else None,
        kendall_tau=_kendall(scores, sa),
        ndcg=float(m["ndcg"].mean()) if m.height else None,
        log_likelihood=ll, temperature=theta, aic=2.0 - 2.0 * ll, steps=m.height,
    )
    return result, z, theta


def allocation_fit(rule: Rule, pools: pl.DataFrame) -> tuple[float, float, float]:
    """(fit, coverage, partial share) of an allocation rule, averaged over steps.

    fit = 1 - L1(observed - predicted closed sizes) / (2 x closed total) among the *selected* candidates
    (so a few exempt accounts do not hide the rule's shape); coverage = share of candidates with a
    positive weight that were selected (pro-rata touches nearly everyone, a queue only the top);
    partial share = share of the selected that kept part of their position (pro-rata cuts everyone
    partially, a queue closes whole positions but the last, which makes the fit among the selected
    degenerate for queues: closed = size fits any size-proportional rule). Steps that closed every
    position they cut in full are left out of all three: they fit any allocation rule and any queue.
    Pro-rata predicts closed_i = total x w_i / sum(w) capped at the position size; water-filling
    predicts the cuts that bring every position down to a common leverage."""
    df = pools.with_columns(w=rule.weight(), closed=pl.col("closed_size").cast(pl.Float64),
                            size_f=pl.col("size").cast(pl.Float64),
                            w_fb=(rule.fallback or rule.weight)())
    fits, coverage, partial = [], [], []
    for _, g in df.group_by("step_id"):
        total = g["closed"].sum()
        if total <= 0 or g.height < 2:
            continue
        w = np.nan_to_num(g["w"].to_numpy(), nan=0.0)
        size = g["size_f"].to_numpy()
        closed = g["closed"].to_numpy()
        sel = closed > 0
        if sel.sum() < ALLOCATION_MIN_SELECTED:  # one or two cuts fit any allocation shape
            continue
        if (closed[sel] >= size[sel] * (1 - 1e-9)).all():
            # every position the step cut was closed in full (the need reached what the touched accounts
            # held): any capped allocation and any queue close them all, so the step says nothing
            continue
        positive = w > 0
        coverage.append(float((sel & positive).sum() / max(positive.sum(), 1)))
        partial.append(float((sel & (closed < size * (1 - 1e-9))).sum() / max(sel.sum(), 1)))
        if rule.name == "leverage_waterfill":
            pred = _waterfill(w, size, total)
        else:
            ws = np.where(sel, w, 0.0)
            if ws.sum() <= 0:  # nobody cut has a positive weight: the rule's fallback weight, if any
                ws = np.where(sel, np.nan_to_num(g["w_fb"].to_numpy(), nan=0.0), 0.0)
            pred = np.minimum(total * ws / ws.sum(), size) if ws.sum() > 0 else np.zeros_like(w)
        fits.append(1.0 - np.abs(closed - pred).sum() / (2.0 * total))
    if not fits:
        return float("nan"), float("nan"), float("nan")
    return float(np.mean(fits)), float(np.mean(coverage)), float(np.mean(partial))


def cyclic_fit(pools: pl.DataFrame) -> float:
    """dYdX-style random start + cyclic walk: in address order the selected form one cyclic run.
    Per step, k / (length of the shortest cyclic arc covering every selected candidate), rescaled so
    that 1 is a perfect run and 0 what a selection unrelated to address order gives (about k/n);
    steps that select most of their pool say nothing either way and are skipped."""
    fits = []
    for _, g in pools.sort("user").group_by("step_id", maintain_order=True):
        sel = np.flatnonzero(g["selected"].to_numpy())
        n, k = g.height, len(sel)
        if k == 0 or k / n > CYCLIC_MAX_SHARE:
            continue
        gaps = np.diff(np.concatenate([sel, [sel[0] + n]]))
        arc = n - (gaps.max() - 1)
        fits.append((k / arc - k / n) / (1 - k / n))
    return float(np.mean(fits)) if fits else float("nan")


def _waterfill(lev: np.ndarray, size: np.ndarray, total: float) -> np.ndarray:
    """Cut positions down to a common leverage level L so that the cuts add up to ``total``."""
    lev = np.where(np.isfinite(lev) & (lev > 0), lev, 0.0)

    def cut(level: float) -> np.ndarray:
        return np.where(lev > level, size * (1.0 - level / np.where(lev > 0, lev, 1.0)), 0.0)

    if cut(0.0).sum() <= total:
        return cut(0.0)
    lo, hi = 0.0, float(lev.max())
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if cut(mid).sum() < total else (mid, hi)
    return cut(hi)


@dataclass
class Inference:
    """Outcome of rule inference over a set of ADL steps."""

    best_rule: str | None
    verdict: str
    rules: list[RuleScore]
    margin_aic: float | None
    steps: int
    pools: int
    temperature: float | None = None
    utilities: np.ndarray | None = field(default=None, repr=False)
    arrays: StepArrays | None = field(default=None, repr=False)

    def table(self) -> pl.DataFrame:
        return pl.DataFrame([r.as_dict() for r in self.rules])


def infer_rule(pools: pl.DataFrame, rules: list[Rule] | None = None) -> Inference:
    """Score every rule; pick the best with a margin of evidence, or say that none fits."""
    queue = [r for r in (rules or QUEUE_RULES) if r.kind == "queue"]
    scored = score_pools(pools, queue)
    sa = StepArrays.from_pools(scored)
    results: list[RuleScore] = []
    zs: dict[str, tuple[np.ndarray, float]] = {}
    for rule in queue:
        res, z, theta = score_queue_rule(rule, scored, sa)
        results.append(res)
        zs[rule.name] = (z, theta)
    for rule in [r for r in (rules or ALLOCATION_RULES) if r.kind == "allocation"]:
        fit, cov, part = allocation_fit(rule, pools)
        results.append(RuleScore(rule.name, rule.kind, allocation_fit=fit, coverage=cov, partial_share=part,
                                 steps=len(sa.step_ids)))
    cyc = next((r for r in results if r.name == "random_cyclic"), None)
    if cyc is not None:
        cyc.kind = "cyclic"
        cyc.allocation_fit = cyclic_fit(pools)
    ranked = sorted((r for r in results if r.kind == "queue" and r.aic is not None), key=lambda r: r.aic)
    n_steps, n_pools = len(sa.step_ids), scored.height
    alloc = [r for r in results if r.kind == "allocation" and r.allocation_fit is not None
             and math.isfinite(r.allocation_fit) and (r.coverage or 0) >= ALLOCATION_MIN_COVERAGE
             and (r.partial_share or 0) >= ALLOCATION_MIN_PARTIAL]
    best_alloc = max(alloc, key=lambda r: r.allocation_fit, default=None)
    if best_alloc is not None and best_alloc.allocation_fit >= ALLOCATION_FIT_MIN:
        return Inference(best_alloc.name, f"allocation rule {best_alloc.name} explains the closed sizes "
                         f"(fit {best_alloc.allocation_fit:.3f}, coverage {best_alloc.coverage:.2f})",
                         results, None, n_steps, n_pools)
    if not ranked:
        return Inference(None, "no steps with a decision to explain", results, None, n_steps, n_pools)
    best = ranked[0]
    margin = ranked[1].aic - best.aic if len(ranked) > 1 else None
    fits = (best.auc is not None and best.auc >= FIT_MIN_AUC
            and best.violation_rate is not None and best.violation_rate <= FIT_MAX_VIOLATION)
    if not fits and cyc is not None and (cyc.allocation_fit or 0) >= CYCLIC_FIT_MIN:
        return Inference("random_cyclic", f"random start + cyclic walk: the selected form runs in address order "
                         f"(fit {cyc.allocation_fit:.3f}); no ranking rule fits (best AUC {best.auc:.3f})",
                         results, None, n_steps, n_pools)
    if not fits:
        return Inference(None, f"no documented rule fits (best: {best.name}, AUC {best.auc:.3f}, "
                         f"violation rate {best.violation_rate:.3f})", results, margin, n_steps, n_pools)
    if margin is not None and margin < AIC_MARGIN:
        verdict = (f"{best.name} fits best but {ranked[1].name} is within {margin:.1f} AIC: "
                   "the data do not separate them")
    else:
        gap = f", ΔAIC {margin:.1f}" if margin is not None else ""
        verdict = f"{best.name} (AUC {best.auc:.3f}, violation rate {best.violation_rate:.4f}{gap})"
    z, theta = zs[best.name]
    return Inference(best.name, verdict, results, margin, n_steps, n_pools, theta, z, sa)


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
    varying = df.group_by("step_id").agg(k=pl.col("selected").sum(), n=pl.len()).filter(
        (pl.col("k") > 0) & (pl.col("k") < pl.col("n"))
    ).sort("step_id")
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


# --- rule changes over time --------------------------------------------------------------------------


def rule_changes(pools: pl.DataFrame, steps: pl.DataFrame, *, windows: int = 4, min_steps: int = 8,
                 rules: list[Rule] | None = None, global_best: str | None = None) -> dict:
    """Fit every queue rule per time window (equal-count windows of steps) and test whether the
    globally best rule (``global_best``, else inferred here over all of ``pools``) is beaten inside a
    window by more than the AIC margin."""
    order = steps.sort("time_ms").select("step_id", "time_ms")
    n = order.height
    if n < windows * min_steps:
        windows = max(1, n // min_steps)
    if windows <= 1:
        return {"windows": [], "changed": False, "note": "too few steps to compare windows"}
    order = order.with_columns(window=(pl.int_range(pl.len()) * windows // pl.len()).cast(pl.Int64))
    global_best = global_best or infer_rule(pools, rules).best_rule
    out, changed = [], False
    for w in range(windows):
        ids = order.filter(pl.col("window") == w)
        sub = pools.filter(pl.col("step_id").is_in(ids["step_id"].implode()))
        inf = infer_rule(sub, rules)
        aic = {r.name: r.aic for r in inf.rules if r.aic is not None}
        delta = (aic.get(global_best, math.inf) - aic[inf.best_rule]) if inf.best_rule in aic and global_best else None
        window_changed = bool(inf.best_rule and global_best and inf.best_rule != global_best
                              and delta is not None and delta > AIC_MARGIN)
        changed |= window_changed
        out.append({"window": w, "from_ms": int(ids["time_ms"].min()), "to_ms": int(ids["time_ms"].max()),
                    "steps": ids.height, "best_rule": inf.best_rule, "aic_gain_over_global": delta,
                    "changed": window_changed})
    return {"global_best": global_best, "windows": out, "changed": changed}
