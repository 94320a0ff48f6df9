"""The order of work outside Dagster (where the asset graph orders it): the audit of a venue and window, then
its haircut accounting. `liqf report` and `liqf audit` run it before rendering, so a report always shows the
current evidence."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.analysis import accounting, audit
from pipelines.lake import Lake


def analyses(
    lake: Lake,
    *,
    venue: str = "hyperliquid",
    since_ms: int | None = None,
    until_ms: int | None = None,
    q: float = 0.05,
    gap_seconds: float = 5.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Run the audit and the haircut accounting of ``venue`` over the window; returns notes on what ran."""
    result = audit.run(
        lake, venue=venue, since_ms=since_ms, until_ms=until_ms, q=q, gap_seconds=gap_seconds, progress=progress
    )
    notes = [f"audit: {result.verdict}"]
    try:
        accounting.run(lake, venue=venue, since_ms=since_ms, until_ms=until_ms, gap_seconds=gap_seconds)
        notes.append("ran haircut accounting")
    except (FileNotFoundError, ValueError) as exc:
        notes.append(f"haircut accounting unavailable: {exc}")
    return notes
