"""Rule inference and the exemption test together, robust to the exemptions themselves.

Exempt accounts are skipped while ranked at the top, so they make the true rule look worse (at 2-3%
of a small venue's accounts they alone can push a documented rule below the fit threshold). The
audit alternates: infer the rule; test every account under the best candidate; set the flagged
accounts aside and infer again; stop when the rule and the flags are stable (at most ``rounds``).
Every round is recorded so a reader can see what was set aside and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from forensics.exemption import ExemptionResult, exemption_test
from forensics.inference import ALLOCATION_MIN_PARTIAL, Inference, infer_rule
from forensics.rules import RULES

# below this mean AUC the best candidate carries too little signal to test accounts against
MIN_CANDIDATE_AUC = 0.6
# an allocation rule this close to fitting is worth testing accounts against (exempt accounts that
# receive no cut are exactly what lowers the fit)
ALLOCATION_CANDIDATE_FIT = 0.75


@dataclass
class Audit:
    inference: Inference
    exemption: ExemptionResult | None
    set_aside: list[str]
    rounds: list[dict] = field(default_factory=list)
    # pool rows left out because the data cannot vouch for the candidate's reconstructed state
    uncertain: pl.DataFrame | None = None

    @property
    def verdict(self) -> str:
        if self.set_aside and self.inference.best_rule:
            return f"{self.inference.verdict}; fitted with {len(self.set_aside)} flagged account(s) set aside"
        return self.inference.verdict


def complete_steps(pools: pl.DataFrame, steps: pl.DataFrame) -> tuple[pl.DataFrame, list[int]]:
    """Pools of the steps whose ADL legs are all in the data, and the ids of the steps left out (a winner
    leg went missing, so an account that was deleveraged would look skipped)."""
    if "unmatched_counter_legs" not in steps.columns:
        return pools, []
    incomplete = steps.filter(pl.col("unmatched_counter_legs") > 0)["step_id"].to_list()
    return pools.filter(~pl.col("step_id").is_in(incomplete)), incomplete


def split_uncertain(pools: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows whose state the data vouch for, rows with a ``state_note``: see
    :mod:`forensics.reconstruct.integrity`). Without the column every row is vouched for."""
    if "state_note" not in pools.columns:
        return pools, pools.clear()
    return pools.filter(pl.col("state_note").is_null()), pools.filter(pl.col("state_note").is_not_null())


def _attach_uncertain(result: ExemptionResult, uncertain: pl.DataFrame) -> None:
    """Each flagged account's evidence also lists its rows left out of the test, with the reason."""
    if not uncertain.height:
        return
    cols = [c for c in ("step_id", "coin", "size", "selected", "state_note", "state_detail") if c in uncertain.columns]
    for user in result.flagged["user"].to_list():
        for r in uncertain.filter(pl.col("user") == user).select(cols).iter_rows(named=True):
            reason = f"{r.get('state_note')}: {r.get('state_detail')} (row left out of the test)"
            result.evidence.setdefault(user, []).append(
                {"rank": None, "pool_size": None, "selected_count": None, "lowest_selected_user": None,
                 "lowest_selected_rank": None, **r, "skip_reason": reason, "excluded_from_test": True})


def _candidate(inf: Inference) -> str | None:
    if inf.best_rule:
        return inf.best_rule
    alloc = [r for r in inf.rules if r.kind == "allocation" and r.allocation_fit is not None
             and r.allocation_fit >= ALLOCATION_CANDIDATE_FIT and (r.partial_share or 0) >= ALLOCATION_MIN_PARTIAL]
    if alloc:
        return max(alloc, key=lambda r: r.allocation_fit).name
    queue = sorted((r for r in inf.rules if r.kind == "queue" and r.aic is not None), key=lambda r: r.aic)
    if queue and queue[0].auc is not None and queue[0].auc >= MIN_CANDIDATE_AUC:
        return queue[0].name
    return None


def audit(pools: pl.DataFrame, *, q: float = 0.05, draws: int = 1000, seed: int = 0, rounds: int = 3) -> Audit:
    """Alternate rule inference and the exemption test (see the module docstring). Rows with a
    ``state_note`` (a reconstructed state the data contradict or cannot confirm) are left out of both: a
    ghost position is never selected and would look skipped."""
    pools, uncertain = split_uncertain(pools)
    inf = infer_rule(pools)
    history = [{"round": 0, "set_aside": 0, "best_rule": inf.best_rule, "verdict": inf.verdict}]
    candidate = _candidate(inf)
    set_aside: set[str] = set()
    result: ExemptionResult | None = None
    for r in range(1, rounds + 1):
        if candidate is None:
            break
        result = exemption_test(pools, candidate, draws=draws, q=q, seed=seed, exclude_from_fit=set_aside)
        flagged = set(result.flagged["user"].to_list())
        if not flagged or flagged <= set_aside:
            break
        set_aside |= flagged
        inf = infer_rule(pools.filter(~pl.col("user").is_in(list(set_aside))))
        history.append({"round": r, "set_aside": len(set_aside), "best_rule": inf.best_rule, "verdict": inf.verdict})
        new_candidate = _candidate(inf)
        if new_candidate == candidate:
            # same rule once the anomalies are out: one more test with them excluded from the fit
            result = exemption_test(pools, candidate, draws=draws, q=q, seed=seed, exclude_from_fit=set_aside)
            break
        candidate = new_candidate
    if inf.best_rule is None:
        result = None  # no documented rule fits: there is no calibrated null to test accounts against
    elif result is None or result.rule != inf.best_rule:
        result = exemption_test(pools, inf.best_rule, draws=draws, q=q, seed=seed, exclude_from_fit=set_aside)
    if result is not None and RULES[result.rule].kind != "queue":
        history.append({"round": "final", "null": result.iterations[0].get("null") if result.iterations else None})
    if result is not None:
        _attach_uncertain(result, uncertain)
    return Audit(inf, result, sorted(set_aside), history, uncertain)
