"""What every `liqf` command shares: the two consoles, the lake and catalog chosen by the global options,
one-line errors (exit 2) and time windows. Commands import from here, never from the root app."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console

from forensics.formats.records import RecordError, parse_time_ms
from pipelines import catalog
from pipelines.lake import Lake

#: progress, notes and errors (stderr); results go to ``out`` (stdout) so they can be piped
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

# httpx logs full request URLs at INFO; signed CEX requests carry signatures in the query string
logging.getLogger("httpx").setLevel(logging.WARNING)


class Settings:
    """The lake and catalog of this invocation (set by the root callback from --lake, --lake-endpoint, --db)."""

    lake: Lake
    db: Path


settings = Settings()


def fail(message: str, hint: str = "") -> typer.Exit:
    """Print a one-line error (and what to do next) and return the exit to raise: ``raise fail(...)``."""
    console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    if hint:
        console.print(f"  {hint}", highlight=False)
    return typer.Exit(2)


def window(
    since: str | None, until: str | None, names: tuple[str, str] = ("--from", "--to")
) -> tuple[int | None, int | None]:
    """``--from``/``--to`` (ISO-8601 UTC or epoch ms) as epoch ms; a bad time is a one-line error."""
    try:
        return (parse_time_ms(since, names[0]) if since else None, parse_time_ms(until, names[1]) if until else None)
    except RecordError as exc:
        raise fail(str(exc), "times are ISO-8601 UTC (2025-10-10T21:00:00Z) or epoch ms") from None


def refresh_catalog(*, warn_only: bool = False) -> catalog.CatalogResult | None:
    """Recreate the catalog views after a command wrote to the lake. ``warn_only``: the command's Parquet output
    is already written, so a failed refresh is a warning, not an error."""
    if not warn_only:
        return catalog.refresh(settings.lake, settings.db)
    try:
        return catalog.refresh(settings.lake, settings.db)
    except Exception as exc:  # the catalog is a convenience; the Parquet output is already written
        console.print(f"[yellow]warning:[/] catalog not refreshed: {exc}", highlight=False)
        return None
