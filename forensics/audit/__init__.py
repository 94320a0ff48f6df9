"""The ADL audit: the rule library, rank evidence, rule identification, the exemption test, diagnostics
and the audit loop that ties them together.

* :mod:`.rules`: every documented (and a few hypothetical) ADL selection rules, by stable name.
* :mod:`.evidence`: per rule and ADL action, ranks, the cut, opportunities, skips, shape violations.
* :mod:`.exemption`: per account, skips against a calibrated skip rate (exact binomial tail, BH).
* :mod:`.identify`: the rule whose explanation needs the fewest exemptions and residual violations.
* :mod:`.diagnostics`: Plackett-Luce, Kendall, NDCG and a conditional logit, sampled, for the report.
* :mod:`.loop`: :func:`audit`, the whole procedure.
"""

from .exemption import ExemptionResult, exemption_test
from .identify import Identification, RuleFit, identify, rule_changes
from .loop import Audit, audit, complete_steps, split_uncertain
from .rules import RULES, Rule

__all__ = [
    "Audit",
    "ExemptionResult",
    "Identification",
    "RULES",
    "Rule",
    "RuleFit",
    "audit",
    "complete_steps",
    "exemption_test",
    "identify",
    "rule_changes",
    "split_uncertain",
]
