"""The root `liqf` app: global options (--lake, --lake-endpoint, --db) and every command group.

Each group is a Typer app in its own module (:mod:`.ingest`, :mod:`.catalog`, :mod:`.analyze`, ...); apps
added without a name contribute root-level commands (`liqf sql`, `liqf analyze`). Modules import from
:mod:`.context`, never from here, so imports run one way: root -> groups -> context.

The global options work before or after the command's name (`liqf --lake X analyze` = `liqf analyze --lake X`),
and options renamed for one vocabulary keep their old names for one release with a note (:data:`RENAMED`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pipelines.cli import accounting, analyze, audit, catalog, cex, ingest, report, sandbox, storage, stress
from pipelines.cli.context import DEFAULT_DB, DEFAULT_LAKE, console, note, settings
from pipelines.cli.options import RENAMED

#: options of the root that every command also takes after its name
GLOBAL_OPTIONS = ("--lake", "--lake-endpoint", "--db")
GLOBAL_EPILOG = "Global options --lake DIR, --lake-endpoint URL and --db FILE go before or after the command's name."

#: commands that write the lake: each starts by removing what a killed run left (``Lake.sweep_temporaries``)
LAKE_WRITERS = frozenset({"ingest", "analyze", "haircuts", "stress", "backfill", "fetch", "capture", "audit"})


def _option_names(command: Any) -> tuple[set[str], set[str]]:
    """(every option name of ``command``, the names that take a value)."""
    names: set[str] = set()
    valued: set[str] = set()
    for p in command.params:
        if getattr(p, "param_type_name", "") != "option":
            continue
        names.update(p.opts, p.secondary_opts)
        if not (getattr(p, "is_flag", False) or getattr(p, "count", False)):
            valued.update(p.opts)
    return names, valued


def arrange(root: TyperGroup, args: list[str], *, quiet: bool = False) -> list[str]:
    """``args`` with the global options given after a command's name moved before it, and renamed options under
    their new names (a note each, unless ``quiet``). Values of the command's own options are never mistaken for
    option names: the command's parameters say which options take a value."""
    head: list[str] = []
    moved: list[str] = []
    path: list[str] = []
    i, n = 0, len(args)
    group: TyperGroup = root

    def take_global(j: int) -> int:
        """Move the global option at ``args[j]`` (with its value); returns the index after it."""
        width = 1 if "=" in args[j] else 2
        moved.extend(args[j : j + width])
        return j + width

    # the root's own options, then the command path (groups, then the command)
    while i < n:
        token = args[i]
        name = token.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            i = take_global(i)
        elif token.startswith("-"):
            (path if path else head).append(token)
            i += 1
        else:
            command = group.commands.get(token)
            if command is None:
                break
            path.append(token)
            i += 1
            if isinstance(command, TyperGroup):
                group = command
                continue
            rest = _arrange_command(command, args[i:], moved, quiet)  # adds to ``moved``
            return head + moved + path + rest
    return head + moved + path + args[i:]


def _arrange_command(command: Any, args: list[str], moved: list[str], quiet: bool) -> list[str]:
    own, valued = _option_names(command)
    rest: list[str] = []
    j, n = 0, len(args)
    while j < n:
        token = args[j]
        if token == "--":
            rest.extend(args[j:])
            break
        name, eq, value = token.partition("=")
        new = RENAMED.get(name)
        if new and name not in own and new in own:
            if not quiet:
                note(f"{name} is now {new}; the old name works until the next release")
            token, name = new + eq + value, new
        if name in GLOBAL_OPTIONS and name not in own:
            width = 1 if eq else 2
            moved.extend([token, *args[j + 1 : j + width]])
            j += width
            continue
        rest.append(token)
        if name in valued and not eq and j + 1 < n:
            rest.append(args[j + 1])
            j += 2
            continue
        j += 1
    return rest


def _add_epilog(command: Any) -> None:
    """Every command's help ends with the global options; groups pass it on to their commands."""
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _add_epilog(sub)
        return
    if GLOBAL_EPILOG not in (command.epilog or ""):
        command.epilog = f"{command.epilog}\n\n{GLOBAL_EPILOG}" if command.epilog else GLOBAL_EPILOG


class LiqfGroup(TyperGroup):
    """The root command: arranges the arguments (:func:`arrange`) before Click parses them."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for command in self.commands.values():
            _add_epilog(command)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, arrange(self, list(args), quiet=ctx.resilient_parsing))


class LiqfApp(typer.Typer):
    """Object-storage failures anywhere become the usual one-line error with exit code 2."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            # loaded by whatever raised them: an error of another kind never pays for the import
            # heavy (obstore): loaded only when a command raised, to tell its errors apart
            from pipelines.storage import StorageError
            from pipelines.storage.location import UrlError

            if not isinstance(exc, StorageError | UrlError):
                raise
            console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            sys.exit(2)


app = LiqfApp(
    cls=LiqfGroup,
    help="Liquidation and auto-deleveraging forensics for perpetual-futures venues.",
    epilog="Example: liqf demo   (then: liqf sql --list)",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    lake: Annotated[
        str, typer.Option("--lake", help="Lake root: a directory or s3://bucket/prefix.", envvar="LIQF_LAKE")
    ] = DEFAULT_LAKE,
    lake_endpoint: Annotated[
        str | None,
        typer.Option(
            "--lake-endpoint",
            help="S3-compatible endpoint of an s3:// lake (default: AWS_ENDPOINT_URL, else AWS).",
            envvar="LIQF_LAKE_ENDPOINT",
        ),
    ] = None,
    db: Annotated[Path, typer.Option("--db", help="DuckDB catalog file.", envvar="LIQF_DB")] = DEFAULT_DB,
) -> None:
    settings.reset(lake, lake_endpoint, db, writes_lake=ctx.invoked_subcommand in LAKE_WRITERS)


app.add_typer(ingest.app, name="ingest")
app.add_typer(catalog.app, name="catalog")
app.add_typer(storage.fetch_app, name="fetch")
app.add_typer(audit.app, name="audit")
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
