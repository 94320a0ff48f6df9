"""What every `liqf` command shares: the two consoles, the lake and catalog chosen by the global options,
one-line errors (exit 2), time windows and tables printed in full.

Nothing here imports the lake, DuckDB or polars at module level: `liqf --help` loads every command module,
so those are imported where a command first touches the lake or the catalog.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table as RichTable

from forensics.formats.records import RecordError, parse_time_ms

if TYPE_CHECKING:
    from pipelines.catalog import CatalogResult
    from pipelines.lake import Lake

#: progress, notes and errors (stderr); results go to ``out`` (stdout) so they can be piped
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

# httpx logs full request URLs at INFO; signed CEX requests carry signatures in the query string
logging.getLogger("httpx").setLevel(logging.WARNING)

DEFAULT_LAKE = "data/lake"
DEFAULT_DB = Path("data/forensics.duckdb")


class Settings:
    """The lake and catalog of this invocation: chosen by --lake, --lake-endpoint and --db (before or after the
    command's name), opened when a command first uses the lake. A command that writes the lake first removes
    what a killed run left (``Lake.sweep_temporaries``)."""

    def __init__(self) -> None:
        self.reset()

    def reset(
        self,
        lake: str = DEFAULT_LAKE,
        endpoint: str | None = None,
        db: Path = DEFAULT_DB,
        *,
        writes_lake: bool = False,
    ) -> None:
        self.lake_location = lake
        self.lake_endpoint = endpoint
        self.db = Path(db).resolve()
        self.writes_lake = writes_lake
        self._lake: Lake | None = None

    def choose(self, *, lake: str | None = None, endpoint: str | None = None, db: Path | None = None) -> None:
        """Options given after the command's name (they win over the same options given before it)."""
        if lake is not None:
            self.lake_location, self._lake = lake, None
        if endpoint is not None:
            self.lake_endpoint, self._lake = endpoint, None
        if db is not None:
            self.db = Path(db).resolve()

    @property
    def lake(self) -> Lake:
        if self._lake is None:
            # heavy: loaded only when the command runs, so `liqf --help` starts fast
            from pipelines.lake import Lake

            lake = Lake.open(self.lake_location, endpoint=self.lake_endpoint)
            if self.writes_lake:
                swept = lake.sweep_temporaries()
                if swept.files or swept.dirs:
                    console.print(
                        f"repaired the lake: removed {swept.files} temporary file(s) and {swept.dirs} staging "
                        f"director(ies), {swept.bytes / 1e6:.1f} MB, left by an interrupted run",
                        highlight=False,
                    )
            self._lake = lake
        return self._lake


settings = Settings()


def fail(message: str, hint: str = "") -> typer.Exit:
    """Print a one-line error (and what to do next) and return the exit to raise: ``raise fail(...)``."""
    console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    if hint:
        console.print(f"  {hint}", highlight=False)
    return typer.Exit(2)


def note(message: str) -> None:
    """A note on stderr (deprecations, fallbacks): never mixed into the results on stdout."""
    console.print(f"note: {message}", highlight=False)


def no_adl_message(fills: int | None, nothing: str, seen_as: str = "replayed") -> str:
    """What analyze, haircuts, report and audit say when the window holds fills but no ADL: not an error."""
    seen = f" ({fills:,} fills {seen_as})" if fills is not None else ""
    return (
        f"no ADL actions in the window{seen}: nothing to {nothing}; widen --from/--to or ingest the hours of the "
        "cascade"
    )


def window(
    since: str | None, until: str | None, names: tuple[str, str] = ("--from", "--to")
) -> tuple[int | None, int | None]:
    """``--from``/``--to`` (ISO-8601 UTC or epoch ms) as epoch ms; a bad time is a one-line error."""
    try:
        return (parse_time_ms(since, names[0]) if since else None, parse_time_ms(until, names[1]) if until else None)
    except RecordError as exc:
        raise fail(str(exc), "times are ISO-8601 UTC (2025-10-10T21:00:00Z) or epoch ms") from None


def refresh_catalog(*, warn_only: bool = False) -> CatalogResult | None:
    """Recreate the catalog views after a command wrote to the lake. ``warn_only``: the command's Parquet output
    is already written, so a failed refresh is a warning, not an error."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from pipelines import catalog

    if not warn_only:
        return catalog.refresh(settings.lake, settings.db)
    try:
        return catalog.refresh(settings.lake, settings.db)
    except Exception as exc:  # the catalog is a convenience; the Parquet output is already written
        console.print(f"[yellow]warning:[/] catalog not refreshed: {exc}", highlight=False)
        return None


def print_table(table: RichTable, stream: Console | None = None) -> None:
    """Print ``table`` with every value whole: addresses, hashes and numbers are never cut to fit the width.

    On a terminal the table keeps its box and may run wider than the window (the terminal wraps the line);
    to a pipe or a file it is plain text: no box, no colour, columns separated by two spaces, the title a line
    of its own.
    """
    stream = stream or out
    for column in table.columns:
        column.no_wrap = True
        column.overflow = "ignore"
    if not stream.is_terminal:
        table.box = None
        table.show_edge = False
        table.pad_edge = False
        table.padding = (0, 2, 0, 0)
        table.header_style = ""
        table.title_style = ""
        table.title_justify = "left"
        table.caption_justify = "left"
    natural = Measurement.get(stream, stream.options.update_width(1 << 20), table).maximum
    # a console of the table's own width on the same stream: Console.print never renders wider than its console
    wide = Console(
        file=stream.file,
        width=max(stream.width, natural),
        force_terminal=stream.is_terminal,
        no_color=stream.no_color,
        soft_wrap=True,
    )
    wide.print(table, highlight=False, crop=False)
