"""`liqf catalog refresh`, `liqf sql` and `liqf schema`: the DuckDB catalog over the lake and its tables."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.table import Table as RichTable

from forensics import tables
from pipelines import catalog, sql_library
from pipelines.cli.context import fail, out, refresh_catalog, settings

app = typer.Typer(help="The DuckDB catalog of views over the lake.", no_args_is_help=True)
#: commands at the root of `liqf` (sql, schema)
commands = typer.Typer()


@app.command("refresh")
def catalog_refresh() -> None:
    """Recreate the DuckDB views over the lake and print row counts."""
    result = refresh_catalog()
    assert result is not None
    table = RichTable("view", "rows", title=f"catalog {result.db_path}")
    for view, n in result.views.items():
        table.add_row(view, f"{n:,}")
    out.print(table)
    for sentence in result.stale:
        out.print(f"[yellow]analytics:[/] {sentence}", highlight=False)


@commands.command("sql")
def sql(
    query: Annotated[str | None, typer.Argument(help="SQL to run against the catalog (read-only).")] = None,
    named: Annotated[str | None, typer.Option("--query", help="Run a named query from sql/queries/.")] = None,
    params: Annotated[list[str] | None, typer.Option("--param", help="key=value for a named query (repeat).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the named queries.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Rows to show in table format.")] = 50,
) -> None:
    """Run read-only SQL, or a named, documented query with bound parameters."""
    if list_:
        table = RichTable("query", "answers", "grain", "parameters")
        for q in sql_library.list_queries():
            table.add_row(q.name, q.description, q.grain, ", ".join(q.params))
        out.print(table)
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
    if fmt not in ("table", "csv", "json"):
        raise fail(f"unknown --format {fmt!r}", "use table, csv or json")
    try:
        # a named query's file parameters (its CSV inputs) are the only files outside the lake it may read
        readable = [v for v in bound.values() if isinstance(v, str) and Path(v).is_file()]
        con = catalog.connect_read_only(settings.db, readable)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    try:
        catalog.check_read_only(con, query)
    except catalog.ReadOnlyQuery as exc:
        con.close()
        raise fail(str(exc), "write results with --format csv > FILE instead") from None
    try:
        rel = con.execute(query, bound) if bound else con.sql(query)
        columns = [d[0] for d in rel.description] if rel is not None and rel.description else []
        rows = rel.fetchall() if columns else []
    except duckdb.Error as exc:
        locked = isinstance(exc, duckdb.PermissionException) or "configuration has been locked" in str(exc)
        hint = (
            "liqf sql reads the lake only: files outside it, the network, extensions and settings are locked"
            if locked
            else 'check table names with `liqf sql "show tables"`'
        )
        raise fail(f"query failed: {exc}".splitlines()[0], hint) from None
    finally:
        con.close()
    _print_rows(columns, rows, fmt, limit)


def _print_rows(columns: list[str], rows: list[tuple], fmt: str, limit: int) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=str, indent=1))
    else:
        table = RichTable(*columns)
        for r in rows[:limit]:
            table.add_row(*("" if v is None else str(v) for v in r))
        out.print(table)
        if len(rows) > limit:
            out.print(f"... {len(rows) - limit:,} more rows (use --limit or --format csv)")


@commands.command("schema")
def schema(table: Annotated[str | None, typer.Argument(help="One table; all when omitted.")] = None) -> None:
    """Print the canonical tables with column meanings and units."""
    if table and table not in tables.ALL_TABLES:
        raise fail(f"unknown table {table!r}", f"tables: {', '.join(tables.ALL_TABLES)}")
    out.print(tables.describe(table), markup=False, highlight=False)
