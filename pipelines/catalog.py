"""The DuckDB catalog: views over the Parquet lake, created from ``sql/catalog/*.sql``.

Only ``refresh`` writes the DuckDB file, under a file lock (DuckDB allows one writer per file);
queries open it read-only. Views read Parquet by absolute path, so plain ``duckdb <db>`` works from
any directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
from filelock import FileLock

from forensics.schema import ALL_TABLES
from pipelines.lake import Lake

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
CATALOG_DIR = SQL_DIR / "catalog"
_SOURCE = re.compile(r"@source\((?P<table>[a-z0-9_]+)\)")


@dataclass(frozen=True)
class CatalogResult:
    db_path: Path
    views: dict[str, int]


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def expand_sources(sql: str, lake: Lake) -> str:
    """Replace ``@source(table)`` with a Parquet scan of that table, or a typed empty SELECT."""

    def repl(m: re.Match[str]) -> str:
        name = m.group("table")
        table = ALL_TABLES[name]
        if lake.has_files(name):
            scan = (
                f"read_parquet({_quote_literal(lake.glob(name))}, union_by_name = true, "
                "hive_partitioning = false)"
            )
            return f"(SELECT {', '.join(_cols(table))} FROM {scan})"
        return f"({table.empty_select_sql()})"

    return _SOURCE.sub(repl, sql)


def _cols(table) -> list[str]:
    return [f'"{c.name}"' for c in table.columns]


def catalog_files() -> list[Path]:
    return sorted(CATALOG_DIR.glob("*.sql"))


def lock_for(db_path: Path) -> FileLock:
    return FileLock(str(db_path) + ".lock", timeout=120)


def refresh(lake: Lake, db_path: Path) -> CatalogResult:
    """(Re)create every catalog view; returns row counts per view."""
    db_path = Path(db_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_for(db_path):
        con = duckdb.connect(str(db_path))
        try:
            for path in catalog_files():
                con.execute(expand_sources(path.read_text(), lake))
            views = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]
            counts = {v: con.execute(f'SELECT count(*) FROM "{v}"').fetchone()[0] for v in views}
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return CatalogResult(db_path, counts)


def connect_read_only(db_path: Path) -> duckdb.DuckDBPyConnection:
    db_path = Path(db_path)
    if not db_path.exists():
        raise FileNotFoundError(
            f"{db_path} does not exist yet: run `liqf catalog refresh` (or an ingest) first"
        )
    return duckdb.connect(str(db_path), read_only=True)
