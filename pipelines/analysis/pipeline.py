"""The order of work outside Dagster (where the asset graph orders it): the audit of a venue and window, then
its haircut accounting. `liqf report` and `liqf audit` run it before rendering, so a report always shows the
current evidence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.analysis import accounting, audit
from pipelines.lake import Lake


@dataclass
class Analyses:
    """What :func:`analyses` ran: the audit, the haircut accounting (None when it did not run) and one note per
    step for the report."""

    audit: audit.AuditResult
    haircuts: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def adl_actions(self) -> int:
        return int(self.audit.steps.height)


def analyses(
    lake: Lake,
    *,
    venue: str = "hyperliquid",
    since_ms: int | None = None,
    until_ms: int | None = None,
    q: float = 0.05,
    gap_seconds: float = 5.0,
    progress: Callable[[int, int], None] | None = None,
) -> Analyses:
    """Run the audit and the haircut accounting of ``venue`` over the window. A window without ADL actions
    stops after the audit (there are no waves to account)."""
    result = audit.run(
        lake, venue=venue, since_ms=since_ms, until_ms=until_ms, q=q, gap_seconds=gap_seconds, progress=progress
    )
    done = Analyses(result, notes=[f"audit: {result.verdict}"])
    if not done.adl_actions:
        return done
    try:
        done.haircuts = accounting.run(lake, venue=venue, since_ms=since_ms, until_ms=until_ms, gap_seconds=gap_seconds)
        done.notes.append("ran haircut accounting")
    except (FileNotFoundError, ValueError) as exc:
        done.notes.append(f"haircut accounting unavailable: {exc}")
    return done
