"""The SQL that reads a lake table: its Parquet files, filtered, with the table's one dedup rule applied.

One generator for both readers, so they cannot disagree: :meth:`pipelines.lake.Lake.read` (the analysis,
the accounting, the checks, the stress test) runs it on the local files, and the catalog
(:mod:`pipelines.catalog`) expands every ``@source(table)`` of ``sql/catalog/*.sql`` into it, so
``liqf sql`` sees the same rows. The rule itself is stated beside each table (``Table.dedup``,
:mod:`forensics.tables`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import duckdb

from forensics.tables import INGEST_RUNS, Column, Table, quote_ident


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parquet_scan(table: Table, files: str | Sequence[str], present: Collection[str] | None = None) -> str:
    """A SELECT of ``table``'s columns from a glob or a list of Parquet paths/URLs.

    ``present``: the columns the files have (:func:`file_columns`); a column none of them has yet (parts
    written before it existed) reads as its ``derive_sql`` or NULL instead of failing, and a column with a
    ``derive_sql`` is filled by it in rows of the older parts of a mixed set."""
    cols = ", ".join(_column_sql(c, present) for c in table.columns)
    return f"SELECT {cols} FROM {_read(files)}"


def _read(files: str | Sequence[str]) -> str:
    target = quote_literal(files) if isinstance(files, str) else "[" + ", ".join(quote_literal(f) for f in files) + "]"
    return f"read_parquet({target}, union_by_name = true, hive_partitioning = false)"


def _column_sql(column: Column, present: Collection[str] | None) -> str:
    name = quote_ident(column.name)
    if present is not None and column.name not in present:
        return f"{column.derive_sql or f'CAST(NULL AS {column.type})'} AS {name}"
    if column.derive_sql:
        return f"coalesce({name}, {column.derive_sql}) AS {name}"
    return name


def file_columns(con: duckdb.DuckDBPyConnection, files: str | Sequence[str]) -> frozenset[str]:
    """The columns present in any of the Parquet ``files`` (their footers only)."""
    return frozenset(r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_read(files)}").fetchall())


def key_sql(table: Table) -> str:
    return ", ".join(quote_ident(c) for c in table.key)


def rows_sql(
    table: Table, scan: str, runs_scan: str | None, *, where: str = "", projection: str = "t.*", dedup: bool = True
) -> str:
    """``table``'s rows from ``scan`` (a SELECT of its columns), filtered by ``where`` (SQL over its columns),
    one row per key by the table's rule when ``dedup``. ``runs_scan`` reads ``ingest_runs`` (for rules that
    order by ingestion time)."""
    rule = table.dedup if dedup else None
    filtered = f"WHERE {where}" if where else ""
    if rule is None or not rule.order or not table.key:
        return f"SELECT {projection} FROM ({scan}) AS t {filtered}"
    join = ""
    if rule.needs_ingest_time:
        runs = runs_scan or INGEST_RUNS.empty_select_sql()
        join = (
            "LEFT JOIN (SELECT venue AS run_venue, source_key AS run_key, max(ingested_at) AS ingested_at "
            f"FROM ({runs}) GROUP BY ALL) AS r ON t.venue = r.run_venue AND t.source_key = r.run_key"
        )
    return (
        f"SELECT {projection} FROM ({scan}) AS t {join} {filtered} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join('t.' + quote_ident(c) for c in table.key)} "
        f"ORDER BY {', '.join(rule.order)}) = 1"
    )
