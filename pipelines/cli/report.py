"""`liqf report`: the self-contained audit report (HTML and PDF) of a venue and window."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.context import console, fail, out, settings, window

app = typer.Typer()


@app.command("report")
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for report.html and report.pdf.")],
    venue: Annotated[str, typer.Option(help="Venue id.")] = "hyperliquid",
    since: Annotated[str | None, typer.Option("--from", help="Window start, ISO-8601 UTC.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Window end, ISO-8601 UTC.")] = None,
    q: Annotated[float, typer.Option(help="False discovery rate for exemption flags.")] = 0.05,
    gap_seconds: Annotated[float, typer.Option(help="Wave gap for haircut accounting.")] = 5.0,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also render report.pdf.")] = True,
) -> None:
    """Write the self-contained audit report (HTML and PDF) for a venue and window."""
    # heavy (the analysis, matplotlib, WeasyPrint): imported when the command runs, so `liqf --help` starts fast
    from pipelines import report as report_mod
    from pipelines.analysis import pipeline

    since_ms, until_ms = window(since, until)
    settings.lake.pull()
    command = " ".join(
        ["liqf", "report", "--venue", venue, "--out", str(out_dir)]
        + (["--from", since] if since else [])
        + (["--to", until] if until else [])
    )
    try:  # a folder we cannot write to fails before the work, not after it
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / ".liqf-write-check").touch()
        (out_dir / ".liqf-write-check").unlink()
    except OSError as exc:
        raise fail(
            f"cannot write the report to {out_dir}: {exc.strerror}", "pass --out a folder you can write to"
        ) from None
    try:
        with console.status("auditing the window and its haircuts"):
            notes = pipeline.analyses(
                settings.lake, venue=venue, since_ms=since_ms, until_ms=until_ms, q=q, gap_seconds=gap_seconds
            )
        with console.status("gathering evidence and rendering the report"):
            context = report_mod.gather(
                settings.lake,
                settings.db,
                venue=venue,
                since_ms=since_ms,
                until_ms=until_ms,
                q=q,
                gap_seconds=gap_seconds,
                command=command,
                notes=notes,
            )
            paths = report_mod.write(context, out_dir, pdf=pdf)
    except FileNotFoundError as exc:
        raise fail(str(exc), "ingest data first (see `liqf ingest hyperliquid --help`)") from None
    for note in context["meta"]["notes"]:
        console.print(f"note: {note}", highlight=False)
    s = context["summary"]
    console.print(
        f"[green]✓[/] {s['adl_legs']:,} ADL legs, {s['steps']} steps; rule: {s['verdict']}; "
        f"{s['flagged']} account(s) flagged",
        highlight=False,
    )
    out.print(str(paths.html))
    if paths.pdf:
        out.print(str(paths.pdf))
