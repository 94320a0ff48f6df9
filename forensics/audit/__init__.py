"""The ADL audit: the rule library, rank evidence, rule identification, the exemption test, diagnostics
and the audit loop that ties them together.

* :mod:`.rules`: every documented (and a few hypothetical) ADL selection rules, by stable name.
* :mod:`.kernel`: the compiled per-action evidence of every rule (ranks, cut, opportunities, skips, shapes).
* :mod:`.evidence`: the evidence over many actions (per-account counts per window, evidence rows).
* :mod:`.table`: pools held as a table: columns, features, scores.
* :mod:`.exemption`: per account, skips against a calibrated skip rate (exact binomial tail, BH).
* :mod:`.identify`: the rule whose explanation needs the fewest exemptions and residual violations.
* :mod:`.changes`: change points of the rule over the cascade's windows.
* :mod:`.diagnostics`: Plackett-Luce, Kendall, NDCG and a conditional logit, sampled, for the report.
* :mod:`.loop`: :func:`audit`, the whole procedure.
"""

from .changes import RuleChanges
from .evidence import Evidence, pools_evidence
from .exemption import ExemptionResult, exemption_test
from .identify import Identification, RuleFit, identify, identify_evidence
from .loop import Audit, audit, audit_evidence, complete_steps, split_uncertain
from .rules import RULES, Rule

__all__ = [
    "Audit",
    "Evidence",
    "ExemptionResult",
    "Identification",
    "RULES",
    "Rule",
    "RuleChanges",
    "RuleFit",
    "audit",
    "audit_evidence",
    "complete_steps",
    "exemption_test",
    "identify",
    "identify_evidence",
    "pools_evidence",
    "split_uncertain",
]
