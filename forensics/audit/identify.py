"""Which documented rule did the venue follow? The one whose explanation needs the fewest exemptions.

Exempt accounts are exactly what makes a true rule look violated, so a rule is not judged by its raw
violations. For every rule of the library, the rank evidence (:mod:`forensics.audit.evidence`) is put
through the exemption test (:mod:`forensics.audit.exemption`): the accounts it flags are the smallest
set whose removal makes the selections consistent with the rule (up to the calibrated noise), and what
is left are *residual* skips (passes over unflagged accounts) and *shape violations* (cuts the rule
cannot produce). A rule's cost is

    exemptions needed + residual skips + shape violations,

counted in accounts and ADL actions. The best rule is the cheapest; the margin to the runner-up is
stated; a rule *fits* when its residuals are a small share of its opportunities and its exempt set is a
small share of the accounts it tested; "no documented rule fits" is the answer when none does. Rules
that order every action identically (leverage and lexicographic on continuous leverage) have equal
evidence and are reported together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .evidence import Candidates, RuleEvidence, evidence_of
from .exemption import ExemptionResult, account_counts, exemption_test, skip_evidence
from .rules import RULES, Rule

# a rule fits when residual skips and shape violations are at most this share of its unflagged
# opportunities and selections ...
FIT_MAX_RESIDUAL = 0.10
# ... and its exempt set is at most this share of the accounts it tested (plus 5 accounts)
FIT_MAX_EXEMPT_SHARE = 0.25
# a margin in cost below this does not separate two rules
COST_MARGIN = 5


@dataclass
class RuleFit:
    name: str
    kind: str
    steps: int = 0  # actions with a decision (something selected)
    opportunities: int = 0
    skips: int = 0
    exemptions_needed: int = 0  # accounts the exemption test flags under the rule
    residual_skips: int = 0  # skips of unflagged accounts
    shape_violations: int = 0
    cost: int = 0
    residual_rate: float | None = None
    skip_rate: float | None = None
    tested_accounts: int = 0
    fits: bool = False
    same_order_as: list[str] = field(default_factory=list)
    # cheap rank diagnostics over all actions (queue and cyclic rules)
    violation_rate: float | None = None
    auc: float | None = None
    top_k_precision: float | None = None
    # sampled diagnostics (forensics.audit.diagnostics)
    kendall_tau: float | None = None
    ndcg: float | None = None
    log_likelihood: float | None = None
    temperature: float | None = None
    aic: float | None = None
    allocation_fit: float | None = None

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


@dataclass
class Identification:
    best_rule: str | None
    verdict: str
    rules: list[RuleFit]
    margin: int | None
    steps: int
    pools: int
    results: dict[str, ExemptionResult] = field(default_factory=dict, repr=False)
    evidence: dict[str, RuleEvidence] = field(default_factory=dict, repr=False)

    @property
    def margin_aic(self) -> int | None:  # the JSON key users already read; now a margin in cost
        return self.margin

    def table(self) -> pl.DataFrame:
        rows = [r.as_dict() for r in self.rules]
        for r in rows:
            r["same_order_as"] = ",".join(r["same_order_as"]) or None
        return pl.DataFrame(rows, infer_schema_length=None)

    def fit(self, name: str) -> RuleFit:
        return next(r for r in self.rules if r.name == name)


def _rank_metrics(ev: RuleEvidence) -> dict:
    """Mean per-action violation rate (unselected-above-selected pairs), AUC and top-k precision, from the
    ranks of the selections alone."""
    c = ev.cand
    sel = c.selected[ev.rows]
    rows, rank = ev.rows[sel], ev.rank[sel]
    seg = c.seg[rows]
    order = np.lexsort((rank, seg))
    seg, rank = seg[order], rank[order]
    starts = np.flatnonzero(np.concatenate([[True], seg[1:] != seg[:-1]]))
    within = np.arange(len(seg)) - np.repeat(starts, np.diff(np.append(starts, len(seg))))
    k = np.diff(np.append(starts, len(seg)))
    n = c.n[seg[starts]]
    viol = np.add.reduceat(rank - (within + 1), starts)  # unselected ranked above each selection
    topk = np.add.reduceat((rank <= np.repeat(k, k)).astype(np.int64), starts)
    decided = k < n
    if not decided.any():
        return {}
    vr = viol[decided] / (k[decided] * (n[decided] - k[decided]))
    return {
        "violation_rate": float(vr.mean()),
        "auc": 1.0 - float(vr.mean()),
        "top_k_precision": float((topk[decided] / k[decided]).mean()),
    }


def _costs(ev: RuleEvidence, result: ExemptionResult) -> tuple[int, int, int]:
    acc = result.accounts
    flagged = int(acc["flagged"].sum())
    return flagged, int(acc.filter(~pl.col("flagged"))["skips"].sum()), int(ev.shape.sum())


def score_rule(cand: Candidates, rule: Rule, *, q: float = 0.05) -> tuple[RuleFit, ExemptionResult, RuleEvidence]:
    ev = evidence_of(cand, rule)
    result = exemption_test(account_counts(ev), rule.name, q=q)
    acc = result.accounts
    flagged, residual, shape = _costs(ev, result)
    opps = int(acc.filter(~pl.col("flagged"))["opportunities"].sum())
    selections = int(cand.selected.sum())
    tested = int(acc["tested"].sum())
    fit = RuleFit(
        rule.name,
        rule.kind,
        steps=len(cand.n),
        opportunities=int(acc["opportunities"].sum()),
        skips=int(acc["skips"].sum()),
        exemptions_needed=flagged,
        residual_skips=residual,
        shape_violations=shape,
        cost=flagged + residual + shape,
        # skips are counted among opportunities, shape violations among selections
        residual_rate=(residual + shape) / (opps + selections) if opps + selections else None,
        skip_rate=result.skip_rate,
        tested_accounts=tested,
    )
    fit.fits = bool(
        fit.residual_rate is not None
        and fit.residual_rate <= FIT_MAX_RESIDUAL
        and flagged <= FIT_MAX_EXEMPT_SHARE * max(tested, 1) + 5
    )
    if rule.kind != "allocation":
        for k, v in _rank_metrics(ev).items():
            setattr(fit, k, v)
    else:
        sel = cand.selected[ev.rows]
        closed = float(cand.closed[ev.rows][sel].sum())
        err = float(np.abs(cand.closed[ev.rows] - ev.predicted)[sel].sum())
        fit.allocation_fit = 1.0 - err / (2.0 * closed) if closed > 0 else None
    return fit, result, ev


def _same_order(evs: dict[str, RuleEvidence], names: list[str]) -> dict[str, list[str]]:
    """Rules whose ranks agree on every candidate row (identical evidence)."""
    same = lambda a, b: np.array_equal(evs[a].rows, evs[b].rows) and np.array_equal(evs[a].rank, evs[b].rank)  # noqa: E731
    return {a: [b for b in names if b != a and same(a, b)] for a in names}


def episodes(steps: pl.DataFrame) -> pl.DataFrame:
    """(step_id, episode): actions of one block (its time when blocks are missing) and coin share an episode."""
    at = (
        pl.coalesce(pl.col("block_number"), pl.col("time_ms")) if "block_number" in steps.columns else pl.col("time_ms")
    )
    return steps.select(
        "step_id", pl.struct(at.alias("at"), pl.col("coin").cast(pl.Utf8)).rank("dense").cast(pl.Int64).alias("episode")
    )


def identify(
    pools: pl.DataFrame, rules: list[Rule] | None = None, *, q: float = 0.05, steps: pl.DataFrame | None = None
) -> Identification:
    """Score every rule on the pools' actions; name the cheapest explanation, or say none fits.
    ``steps`` (the ``adl_steps`` rows) groups actions into episodes for the exemption test; without it
    each action is its own episode."""
    rules = rules or list(RULES.values())
    decided = pools.filter(pl.col("selected").any().over("step_id"))
    if steps is not None and "episode" not in decided.columns:
        decided = decided.join(episodes(steps), on="step_id", how="left").with_columns(
            pl.col("episode").fill_null(-pl.col("step_id") - 1)
        )
    fits: list[RuleFit] = []
    results: dict[str, ExemptionResult] = {}
    evs: dict[str, RuleEvidence] = {}
    if not decided.height:
        return Identification(None, "no ADL actions with a decision to explain", fits, None, 0, pools.height)
    cand = Candidates.prepare(decided)
    for rule in rules:
        fit, res, ev = score_rule(cand, rule, q=q)
        fits.append(fit)
        results[rule.name], evs[rule.name] = res, ev
    ordered = [r.name for r in rules if r.kind != "allocation"]
    for name, same in _same_order(evs, ordered).items():
        next(f for f in fits if f.name == name).same_order_as = same
    n_steps = len(cand.n)
    # library order breaks exact ties (documented venue rules come first)
    ranked = sorted(fits, key=lambda f: (f.cost, [r.name for r in rules].index(f.name)))
    best = ranked[0]
    runner = next((f for f in ranked[1:] if f.name not in best.same_order_as), None)
    margin = runner.cost - best.cost if runner else None
    summary = (
        f"{best.exemptions_needed} exemption(s) needed, {best.residual_skips} residual skip(s), "
        f"{best.shape_violations} shape violation(s) over {best.steps} actions"
    )
    if not best.fits:
        verdict = (
            f"no documented rule fits (closest: {best.name}, {summary}; residual rate "
            f"{best.residual_rate if best.residual_rate is not None else float('nan'):.3f})"
        )
        return Identification(None, verdict, fits, margin, n_steps, pools.height, results, evs)
    result = results[best.name]
    result.evidence = skip_evidence(evs[best.name].frame(), sorted(result.flagged_users))
    alias = f" (ranks identically to {', '.join(best.same_order_as)} on these data)" if best.same_order_as else ""
    if runner is not None and margin < COST_MARGIN:
        verdict = (
            f"{best.name}{alias} fits best ({summary}) but {runner.name} is within {margin} of its cost: "
            "the data do not separate them"
        )
    else:
        gap = f"; next {runner.name} costs {runner.cost} (margin {margin})" if runner else ""
        verdict = f"{best.name}{alias}: {summary}{gap}"
    return Identification(best.name, verdict, fits, margin, n_steps, pools.height, results, evs)


def window_costs(identification: Identification, step_ids: pl.Series, *, q: float = 0.05) -> dict[str, int]:
    """Each rule's cost on a subset of the actions, from the evidence already computed (evidence is per
    action, so a window needs only its own exemption test)."""
    out = {}
    for name, ev in identification.evidence.items():
        inside = np.isin(ev.cand.step_ids, step_ids.to_numpy())[ev.cand.seg]
        res = exemption_test(account_counts(ev, inside), name, q=q)
        acc = res.accounts
        out[name] = (
            int(acc["flagged"].sum())
            + int(acc.filter(~pl.col("flagged"))["skips"].sum())
            + int(ev.shape[inside[ev.rows]].sum())
        )
    return out


def rule_changes(
    identification: Identification, steps: pl.DataFrame, *, windows: int = 4, min_steps: int = 8, q: float = 0.05
) -> dict:
    """Split the actions into equal-count time windows and ask, per window, whether another rule explains
    it with fewer exceptions than the identified one by more than the cost margin."""
    decided = pl.Series(
        "step_id",
        next(iter(identification.evidence.values())).cand.step_ids if identification.evidence else [],
        pl.Int64,
    )
    order = steps.filter(pl.col("step_id").is_in(decided.implode())).sort("time_ms").select("step_id", "time_ms")
    n = order.height
    if n < windows * min_steps:
        windows = max(1, n // min_steps)
    if windows <= 1 or identification.best_rule is None:
        return {"windows": [], "changed": False, "note": "too few actions (or no identified rule) to compare windows"}
    order = order.with_columns(window=(pl.int_range(pl.len()) * windows // pl.len()).cast(pl.Int64))
    best = identification.best_rule
    same = set(identification.fit(best).same_order_as) | {best}
    out, changed = [], False
    for w in range(windows):
        ids = order.filter(pl.col("window") == w)
        costs = window_costs(identification, ids["step_id"], q=q)
        local = min(costs, key=lambda k: (costs[k], list(costs).index(k)))
        gain = costs[best] - costs[local]
        window_changed = local not in same and gain > COST_MARGIN
        changed |= window_changed
        out.append(
            {
                "window": w,
                "from_ms": int(ids["time_ms"].min()),
                "to_ms": int(ids["time_ms"].max()),
                "steps": ids.height,
                "best_rule": local,
                "cost_gain_over_global": gain,
                "changed": window_changed,
            }
        )
    return {"global_best": best, "windows": out, "changed": changed}
