"""`liqf catalog refresh`, `liqf sql` and `liqf schema`: the DuckDB catalog over the lake and its tables."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable
from rich.text import Text

from pipelines.cli.context import fail, out, print_table, refresh_catalog, settings
from pipelines.cli.options import example

app = typer.Typer(help="The DuckDB catalog of views over the lake.", no_args_is_help=True)
#: commands at the root of `liqf` (sql, schema)
commands = typer.Typer()

FORMATS = ("table", "csv", "json")


@app.command("refresh", epilog=example("liqf catalog refresh", "liqf --lake s3://my-bucket/lake catalog refresh"))
def catalog_refresh() -> None:
    """Recreate the DuckDB views over the lake and print row counts."""
    result = refresh_catalog()
    assert result is not None
    table = RichTable("view", "rows", title=f"catalog {result.db_path}")
    for view, n in result.views.items():
        table.add_row(view, f"{n:,}")
    print_table(table)
    for sentence in result.stale:
        out.print(f"[yellow]analytics:[/] {sentence}", highlight=False)


@commands.command(
    "sql",
    epilog=example(
        'liqf sql "select coin, count(*) legs, sum(notional_usd) usd from adl_fills group by 1 order by usd desc"',
        "liqf sql --list",
        "liqf sql --query top_adl_accounts --param venue=hyperliquid --param limit=10 --format csv > top.csv",
    ),
)
def sql(
    query: Annotated[str | None, typer.Argument(help="SQL to run against the catalog (read-only).")] = None,
    named: Annotated[str | None, typer.Option("--query", help="Run a named query from sql/queries/.")] = None,
    params: Annotated[list[str] | None, typer.Option("--param", help="key=value for a named query (repeat).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the named queries (with --format).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Rows to show in table format (csv and json print every row).")] = 50,
) -> None:
    """Run read-only SQL, or a named, documented query with bound parameters."""
    # heavy (DuckDB, the catalog): imported when the command runs, so `liqf --help` starts fast
    import duckdb

    from pipelines import catalog, sql_library

    if fmt not in FORMATS:
        raise fail(f"unknown --format {fmt!r}", "use table, csv or json")
    if list_:
        rows = [
            (
                q.name,
                q.description,
                q.grain,
                ", ".join(f"{p}={q.defaults[p]}" if p in q.defaults else p for p in q.params),
            )
            for q in sql_library.list_queries()
        ]
        _print_rows(["query", "answers", "grain", "parameters"], rows, fmt, limit=len(rows))
        return
    bound: dict = {}
    if named:
        try:
            nq = sql_library.get(named)
            given = {}
            for item in params or []:
                if "=" not in item:
                    raise sql_library.QueryError(f"--param {item!r} is not key=value")
                k, v = item.split("=", 1)
                given[k] = v
            bound = sql_library.bind(nq, given)
        except sql_library.QueryError as exc:
            raise fail(str(exc), "see `liqf sql --list`") from None
        query = nq.sql
    if not query:
        raise fail(
            "no query given", 'example: liqf sql "select coin, count(*) from fills group by 1"  (or --query NAME)'
        )
    try:
        # a named query's file parameters (its CSV inputs) are the only files outside the lake it may read
        readable = [v for v in bound.values() if isinstance(v, str) and Path(v).is_file()]
        con = catalog.connect_read_only(settings.db, readable)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    try:
        catalog.check_read_only(con, query)
        rel = con.execute(query, bound) if bound else con.sql(query)
        columns = [d[0] for d in rel.description] if rel is not None and rel.description else []
        rows = rel.fetchall() if columns else []
    except catalog.ReadOnlyQuery as exc:
        raise fail(str(exc), "write results with --format csv > FILE instead") from None
    except duckdb.Error as exc:
        raise fail(*sql_error(exc, named)) from None
    finally:
        con.close()
    _print_rows(columns, rows, fmt, limit)


def sql_error(exc: Exception, named: str | None = None) -> tuple[str, str]:
    """DuckDB's error as one line (its message and its suggestion, without the echo of the query) and what to do
    about that kind of error."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    import duckdb

    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    said = [ln for ln in lines if not ln.startswith("LINE ") and set(ln) != {"^"}]
    message = "query failed: " + " ".join(said[:2])
    if isinstance(exc, duckdb.PermissionException) or "configuration has been locked" in str(exc):
        hint = "liqf sql reads the lake only: files outside it, the network, extensions and settings are locked"
    elif isinstance(exc, duckdb.CatalogException):
        hint = 'the catalog\'s tables: liqf sql "show tables"; what they hold: liqf schema'
    elif isinstance(exc, duckdb.BinderException):
        hint = "a table's columns: liqf schema TABLE"
    elif isinstance(exc, duckdb.ParserException | duckdb.SyntaxException):
        hint = 'the SQL does not parse: in the shell, wrap the query in single quotes and quote names with "'
    elif isinstance(exc, duckdb.InvalidInputException) and "prepared statement parameters" in str(exc):
        hint = f"give each parameter: liqf sql --list shows {named or 'the query'}'s"
    elif isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException | duckdb.TypeMismatchException):
        hint = "a value has the wrong type: check the --param values and the casts" if named else "check the casts"
    elif isinstance(exc, duckdb.IOException):
        hint = "a lake file could not be read: liqf catalog refresh, then run the query again"
    elif isinstance(exc, duckdb.OutOfMemoryException):
        hint = "the query needs more memory than DuckDB may use: filter (WHERE) or aggregate before selecting rows"
    else:
        hint = ""
    return message, hint


def _print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: str, limit: int) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=str, indent=1))
    else:
        table = RichTable(*columns)
        for r in rows[:limit]:
            table.add_row(*(Text("" if v is None else str(v)) for v in r))  # values, never markup
        print_table(table)
        if len(rows) > limit:
            out.print(f"... {len(rows) - limit:,} more rows (use --limit or --format csv)", highlight=False)


@commands.command("schema", epilog=example("liqf schema", "liqf schema adl_fills"))
def schema(table: Annotated[str | None, typer.Argument(help="One table; all when omitted.")] = None) -> None:
    """Print the canonical tables with column meanings and units."""
    # heavy: loaded only when the command runs, so `liqf --help` starts fast
    from forensics import tables

    if table and table not in tables.ALL_TABLES:
        raise fail(f"unknown table {table!r}", f"tables: {', '.join(tables.ALL_TABLES)}")
    out.print(tables.describe(table), markup=False, highlight=False)
