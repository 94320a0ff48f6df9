"""The root `liqf` app: global options (--lake, --lake-endpoint, --db) and every command group.

Each group is a Typer app in its own module (:mod:`.ingest`, :mod:`.catalog`, :mod:`.analyze`, ...); apps
added without a name contribute root-level commands (`liqf sql`, `liqf analyze`). Modules import from
:mod:`.context`, never from here, so imports run one way: root -> groups -> context.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli import accounting, analyze, catalog, cex, ingest, report, sandbox, storage, stress
from pipelines.cli.context import console, settings
from pipelines.lake import Lake
from pipelines.storage import StorageError
from pipelines.storage.location import UrlError


class LiqfApp(typer.Typer):
    """Object-storage failures anywhere become the usual one-line error with exit code 2."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except (StorageError, UrlError) as exc:
            console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            sys.exit(2)


app = LiqfApp(
    help="Liquidation and auto-deleveraging forensics for perpetual-futures venues.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


#: commands that write the lake: each starts by removing what a killed run left (``Lake.sweep_temporaries``)
LAKE_WRITERS = frozenset({"ingest", "analyze", "haircuts", "stress", "backfill", "fetch", "capture"})


@app.callback()
def main(
    ctx: typer.Context,
    lake: Annotated[
        str, typer.Option("--lake", help="Lake root: a directory or s3://bucket/prefix.", envvar="LIQF_LAKE")
    ] = "data/lake",
    lake_endpoint: Annotated[
        str | None,
        typer.Option(
            "--lake-endpoint",
            help="S3-compatible endpoint of an s3:// lake (default: AWS_ENDPOINT_URL, else AWS).",
            envvar="LIQF_LAKE_ENDPOINT",
        ),
    ] = None,
    db: Annotated[Path, typer.Option("--db", help="DuckDB catalog file.", envvar="LIQF_DB")] = Path(
        "data/forensics.duckdb"
    ),
) -> None:
    settings.lake = Lake.open(lake, endpoint=lake_endpoint)
    settings.db = db.resolve()
    if ctx.invoked_subcommand in LAKE_WRITERS:
        swept = settings.lake.sweep_temporaries()
        if swept.files or swept.dirs:
            console.print(
                f"repaired the lake: removed {swept.files} temporary file(s) and {swept.dirs} staging "
                f"director(ies), {swept.bytes / 1e6:.1f} MB, left by an interrupted run",
                highlight=False,
            )


app.add_typer(ingest.app, name="ingest")
app.add_typer(catalog.app, name="catalog")
app.add_typer(storage.fetch_app, name="fetch")
app.add_typer(storage.backfill_app, name="backfill")
# groups of root-level commands, in the order `liqf --help` lists them
for group in (
    catalog.commands,
    analyze.app,
    accounting.app,
    report.app,
    stress.app,
    cex.capture_app,
    sandbox.app,
    storage.commands,
):
    app.add_typer(group)
