"""The audit: name the rule the venue followed and test every account under it, on ADL actions.

1. Actions whose ADL legs are not all in the data are left out (a lost winner leg would make a
   deleveraged account look skipped): :func:`complete_steps`.
2. Every rule of the library is scored on rank evidence with its own exemption test
   (:mod:`forensics.audit.identify`): the accounts a rule must call exempt are set aside before its
   residual violations are counted, so the evidence for the true rule is not destroyed by the accounts
   the audit is looking for.
3. Did the rule change during the cascade? A change-point search over the windows
   (:mod:`forensics.audit.changes`); where the venue followed one rule and then another, that is the answer.
4. The flags are those of the exemption test under the identified rule (or each window's rule), for skips and
   for capped takes (calibrated rates, exact binomial tails, Benjamini-Hochberg, iterated without the flagged
   accounts): :mod:`forensics.audit.exemption`.

Rows with a ``state_note`` (a reconstructed state the data contradict or cannot confirm: see
:mod:`forensics.reconstruct.integrity`) are never opportunities; a flagged account's evidence lists them
with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from .changes import search, segmented_exemption
from .evidence import Evidence
from .exemption import ExemptionResult
from .identify import Identification, identify, identify_evidence
from .rules import Rule


@dataclass
class Audit:
    inference: Identification
    exemption: ExemptionResult | None
    rounds: list[dict] = field(default_factory=list)
    # pool rows whose reconstructed state the data cannot vouch for (never opportunities)
    uncertain: pl.DataFrame | None = None

    @property
    def verdict(self) -> str:
        return self.inference.verdict

    @property
    def set_aside(self) -> list[str]:
        """Accounts left out of the skip-rate calibration (the flagged ones)."""
        return sorted(self.exemption.flagged_users) if self.exemption is not None else []


def complete_steps(pools: pl.DataFrame, steps: pl.DataFrame) -> tuple[pl.DataFrame, list[int]]:
    """Pools of the actions whose ADL legs are all in the data, and the ids of the actions left out."""
    if "unmatched_counter_legs" not in steps.columns:
        return pools, []
    incomplete = steps.filter(pl.col("unmatched_counter_legs") > 0)["step_id"].to_list()
    return pools.filter(~pl.col("step_id").is_in(incomplete)), incomplete


def split_uncertain(pools: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows whose state the data vouch for, rows with a ``state_note``)."""
    if "state_note" not in pools.columns:
        return pools, pools.clear()
    return pools.filter(pl.col("state_note").is_null()), pools.filter(pl.col("state_note").is_not_null())


def audit(
    pools: pl.DataFrame, *, q: float = 0.05, rules: list[Rule] | None = None, steps: pl.DataFrame | None = None
) -> Audit:
    """Identify the rule and test every account under it (see the module docstring); ``steps`` groups
    the actions of one block and coin into one episode of evidence."""
    identification = identify(pools, rules, q=q, steps=steps)
    _, uncertain = split_uncertain(pools)
    return _audit(identification, uncertain, q=q)


def audit_evidence(evidence: Evidence, *, q: float = 0.05, pool_rows: int = 0, rerun=None) -> Audit:
    """The audit on evidence the replay computed (pools never held as a table)."""
    return _audit(identify_evidence(evidence, q=q, pool_rows=pool_rows, rerun=rerun), None, q=q)


def _audit(identification: Identification, uncertain: pl.DataFrame | None, *, q: float = 0.05) -> Audit:
    changes = search(identification, q=q)
    identification.changes = changes
    if changes.changed and identification.evidence is not None:
        result = segmented_exemption(identification.evidence, changes, q=q)
        main = max(changes.windows, key=lambda w: w.actions)
        identification.best_rule = main.rule
        points = "; ".join(
            f"{c.from_rule} until action {c.action}"
            + (f" (wave {c.wave})" if c.wave is not None else "")
            + f", then {c.to_rule}"
            for c in changes.change_points
        )
        flagged = int(result.accounts["flagged"].sum())
        identification.verdict = (
            f"the rule changed during the cascade: {points} (segments cost {changes.segmented_cost} against "
            f"{changes.single_cost if changes.single_cost is not None else 'no fit'} for the best single rule); "
            f"{flagged} account(s) flagged under the rule in force"
        )
        return Audit(identification, result, result.iterations, uncertain)
    best = identification.best_rule
    result = identification.results.get(best) if best else None
    return Audit(identification, result, result.iterations if result is not None else [], uncertain)
