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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from . import kernel as K
from .evidence import Evidence, pools_evidence
from .exemption import ExemptionResult, exemption_test, skip_evidence
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
    # not tested account by account: its shape violations alone put it past the best rule (cost is a floor)
    cost_is_lower_bound: bool = False
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
    evidence: Evidence | None = field(default=None, repr=False)
    # the search for rule changes (forensics.audit.changes.RuleChanges), once run
    changes: Any = field(default=None, repr=False)

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


def costs(
    evidence: Evidence, rule: str, result: ExemptionResult, windows: np.ndarray | None = None
) -> tuple[int, int, int]:
    """(exemptions needed, residual skips, shape violations): a capped account's partial closes above the cut
    are explained by its flag, not counted again as shape violations."""
    acc = result.accounts
    flagged = int(acc["flagged"].sum())
    explained = int(acc.filter(pl.col("capped"))["caps"].sum()) if "capped" in acc.columns else 0
    shape = max(evidence.shape_violations(rule, windows) - explained, 0)
    return flagged, int(acc.filter(~pl.col("flagged"))["skips"].sum()), shape


def lower_bound(evidence: Evidence, rule: str) -> int:
    """A floor under the rule's cost: its shape violations, less every partial close above a cut (a capped
    account's are explained by its flag)."""
    caps = int(evidence.totals[evidence.index(rule), :, K.C_CAP].sum()) if evidence.totals is not None else 0
    return max(evidence.shape_violations(rule) - caps, 0)


@dataclass(frozen=True)
class Judgement:
    """A rule's exemption test read as its cost (on all actions, or on some windows of them) and whether it fits."""

    exemptions: int
    residual_skips: int
    shape_violations: int
    residual_rate: float | None
    tested: int

    @property
    def cost(self) -> int:
        return self.exemptions + self.residual_skips + self.shape_violations

    @property
    def fits(self) -> bool:
        return bool(
            self.residual_rate is not None
            and self.residual_rate <= FIT_MAX_RESIDUAL
            and self.exemptions <= FIT_MAX_EXEMPT_SHARE * max(self.tested, 1) + 5
        )


def judge(evidence: Evidence, rule: str, result: ExemptionResult, windows: np.ndarray | None = None) -> Judgement:
    """The cost and fit of ``rule`` from its exemption test ``result`` (on ``windows`` when given)."""
    flagged, residual, shape = costs(evidence, rule, result, windows)
    acc = result.accounts
    opps = int(acc.filter(~pl.col("flagged"))["opportunities"].sum())
    selections = int(evidence.action_values(rule, K.A_SELECTED, windows).sum())
    # skips are counted among opportunities, shape violations among selections
    rate = (residual + shape) / (opps + selections) if opps + selections else None
    return Judgement(flagged, residual, shape, rate, int(acc["tested"].sum()))


def _describe(fit: RuleFit, evidence: Evidence, rule: Rule) -> RuleFit:
    """The cheap diagnostics over every action: rank metrics (ordering rules) or the allocation fit."""
    if rule.kind != "allocation":
        for k, v in evidence.rank_metrics(rule.name).items():
            setattr(fit, k, v)
    else:
        fit.allocation_fit = evidence.allocation_fit(rule.name)
    return fit


def bounded_fit(evidence: Evidence, rule: Rule, bound: int) -> RuleFit:
    """A rule not tested account by account: its cost is at least ``bound``, past the best rule's by the margin."""
    fit = RuleFit(
        rule.name,
        rule.kind,
        steps=evidence.actions.height,
        shape_violations=evidence.shape_violations(rule.name),
        cost=bound,
        cost_is_lower_bound=True,
    )
    return _describe(fit, evidence, rule)


def score_rule(evidence: Evidence, rule: Rule, *, q: float = 0.05) -> tuple[RuleFit, ExemptionResult]:
    result = exemption_test(evidence.account_counts(rule.name), rule.name, q=q)
    j = judge(evidence, rule.name, result)
    acc = result.accounts
    fit = RuleFit(
        rule.name,
        rule.kind,
        steps=evidence.actions.height,
        opportunities=int(acc["opportunities"].sum()),
        skips=int(acc["skips"].sum()),
        exemptions_needed=j.exemptions,
        residual_skips=j.residual_skips,
        shape_violations=j.shape_violations,
        cost=j.cost,
        residual_rate=j.residual_rate,
        skip_rate=result.skip_rate,
        tested_accounts=j.tested,
        fits=j.fits,
    )
    return _describe(fit, evidence, rule), result


def identify(
    pools: pl.DataFrame, rules: list[Rule] | None = None, *, q: float = 0.05, steps: pl.DataFrame | None = None
) -> Identification:
    """Score every rule on pools held as a table; name the cheapest explanation, or say none fits.
    ``steps`` (the ``adl_steps`` rows) groups actions into episodes and windows; without it each action is
    its own episode."""
    return identify_evidence(
        pools_evidence(pools, rules, steps=steps),
        q=q,
        pool_rows=pools.height,
        rerun=lambda users, rule: pools_evidence(
            pools, [rule], steps=steps, record_users=users, record_budget=len(pools) + 1
        ),
    )


def identify_evidence(
    evidence: Evidence,
    *,
    q: float = 0.05,
    pool_rows: int = 0,
    rerun: Callable[[list[str], Rule], Evidence] | None = None,
) -> Identification:
    """Name the cheapest explanation of ``evidence`` (every rule's), or say none fits. ``rerun(users, rule)``
    recomputes one rule's evidence keeping the rows of ``users`` only, for a named rule whose evidence rows
    exceeded the record budget."""
    rules = evidence.rules
    fits: list[RuleFit] = []
    results: dict[str, ExemptionResult] = {}
    if not evidence.actions.height:
        return Identification(None, "no ADL actions with a decision to explain", fits, None, 0, pool_rows)
    # a rule's cost is at least its shape violations less every capped take: in order of that bound, a rule
    # whose bound is past the cheapest cost so far by the margin cannot be the answer nor within the margin
    bound = {rule.name: lower_bound(evidence, rule.name) for rule in rules}
    cheapest = math.inf
    by_name: dict[str, RuleFit] = {}
    for rule in sorted(rules, key=lambda r: bound[r.name]):
        if bound[rule.name] >= cheapest + COST_MARGIN:
            by_name[rule.name] = bounded_fit(evidence, rule, bound[rule.name])
            continue
        fit, res = score_rule(evidence, rule, q=q)
        by_name[rule.name] = fit
        results[rule.name] = res
        cheapest = min(cheapest, fit.cost)
    fits = [by_name[rule.name] for rule in rules]
    ordered = [r.name for r in rules if r.kind != "allocation"]
    for name, same in evidence.same_order(ordered).items():
        next(f for f in fits if f.name == name).same_order_as = same
    n_steps = evidence.actions.height
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
        return Identification(None, verdict, fits, margin, n_steps, pool_rows, results, evidence)
    result = results[best.name]
    flagged = sorted(result.flagged_users)
    rows = evidence.rows.get(best.name)
    if rows is None and flagged and rerun is not None:
        rows = rerun(flagged, RULES[best.name]).rows.get(best.name)
    result.evidence = skip_evidence(rows, flagged) if rows is not None else {}
    alias = f" (ranks identically to {', '.join(best.same_order_as)} on these data)" if best.same_order_as else ""
    if runner is not None and margin < COST_MARGIN:
        verdict = (
            f"{best.name}{alias} fits best ({summary}) but {runner.name} is within {margin} of its cost: "
            "the data do not separate them"
        )
    else:
        at_least = "at least " if runner is not None and runner.cost_is_lower_bound else ""
        gap = f"; next {runner.name} costs {at_least}{runner.cost} (margin {at_least}{margin})" if runner else ""
        verdict = f"{best.name}{alias}: {summary}{gap}"
    return Identification(best.name, verdict, fits, margin, n_steps, pool_rows, results, evidence)
