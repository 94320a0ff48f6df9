"""`liqf report`: the self-contained audit report (HTML and PDF) of a venue and window."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.cli.context import console, fail, no_adl_message, out, settings, window
from pipelines.cli.options import FDR, FROM, PDF, TO, example

if TYPE_CHECKING:
    from pipelines.report import ReportPaths

app = typer.Typer()


def check_writable(out_dir: Path) -> None:
    """A folder we cannot write to fails before the work, not after it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".liqf-write-check"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise fail(
            f"cannot write to {out_dir}: {exc.strerror or exc}", "pass --out a folder you can write to"
        ) from None


def write_report(
    venue: str,
    since_ms: int | None,
    until_ms: int | None,
    fdr: float,
    gap_seconds: float,
    command: str,
    notes: list[str],
    out_dir: Path,
    pdf: bool,
    audit: Any = None,
) -> tuple[dict[str, Any], ReportPaths]:
    """Gather the evidence of the audited window from the lake and render the report (HTML, and PDF).
    ``audit``: the run's :class:`pipelines.analysis.audit.AuditResult` (rule timeline, capped flags,
    carve-outs and shape violations are listed from it)."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines import report as report_mod

    with console.status("gathering evidence and rendering the report"):
        context = report_mod.gather(
            settings.lake,
            settings.db,
            venue=venue,
            since_ms=since_ms,
            until_ms=until_ms,
            q=fdr,
            gap_seconds=gap_seconds,
            command=command,
            notes=notes,
            audit=report_mod.audit_document(audit) if audit is not None else None,
        )
        return context, report_mod.write(context, out_dir, pdf=pdf)


@app.command(
    "report",
    epilog=example(
        "liqf report --out reports/oct10 --from 2025-10-10T21:00 --to 2025-10-10T21:30",
        "liqf report --out /tmp/r --no-pdf",
    ),
)
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for report.html and report.pdf.")],
    venue: Annotated[str, typer.Option(help="Venue id.")] = "hyperliquid",
    since: FROM = None,
    until: TO = None,
    fdr: FDR = 0.05,
    gap_seconds: Annotated[float, typer.Option(help="Wave gap for haircut accounting, s.")] = 5.0,
    pdf: PDF = True,
) -> None:
    """Audit the window again (rule, exemptions, haircuts) and write the self-contained report: HTML and PDF."""
    since_ms, until_ms = window(since, until)
    check_writable(out_dir)
    # heavy (the analysis; the report's matplotlib and WeasyPrint in write_report): imported when the command
    # runs, so `liqf --help` starts fast
    from pipelines.analysis import pipeline

    settings.lake.pull()
    command = " ".join(
        ["liqf", "report", "--venue", venue, "--out", str(out_dir)]
        + (["--from", since] if since else [])
        + (["--to", until] if until else [])
    )
    try:
        with console.status("auditing the window and its haircuts"):
            done = pipeline.analyses(
                settings.lake, venue=venue, since_ms=since_ms, until_ms=until_ms, q=fdr, gap_seconds=gap_seconds
            )
    except FileNotFoundError as exc:  # the audit's NoFills: the lake holds no fills of the venue
        raise fail(str(exc), "ingest data first (see `liqf ingest hyperliquid --help`)") from None
    if not done.adl_actions:
        out.print(no_adl_message(done.audit.fills, "report"), highlight=False)
        return
    context, paths = write_report(
        venue, since_ms, until_ms, fdr, gap_seconds, command, done.notes, out_dir, pdf, audit=done.audit
    )
    for line in context["meta"]["notes"]:
        console.print(f"note: {line}", highlight=False)
    s = context["summary"]
    console.print(
        f"[green]✓[/] {s['adl_legs']:,} ADL legs, {s['steps']} steps; rule: {s['verdict']}; "
        f"{s['flagged']} account(s) flagged",
        highlight=False,
    )
    out.print(str(paths.html), highlight=False)
    if paths.pdf:
        out.print(str(paths.pdf), highlight=False)
