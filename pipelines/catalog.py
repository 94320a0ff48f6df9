"""The DuckDB catalog: views over the Parquet lake, created from ``sql/catalog/*.sql``.

Only ``refresh`` writes the DuckDB file, under a file lock (DuckDB allows one writer per file);
queries open it read-only. Views read Parquet by absolute path, so plain ``duckdb <db>`` works from
any directory. Over an object-storage lake the views list the committed parts (from the manifests)
as ``s3://`` URLs read through DuckDB's httpfs extension, loaded from the ``duckdb-extension-httpfs``
package; the S3 secret is created from the environment in memory at every connection, never stored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from filelock import FileLock

from forensics.schema import ALL_TABLES
from pipelines import lineage
from pipelines.lake import Lake
from pipelines.storage.stores import StorageError, StoreSettings, check_credentials

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
CATALOG_DIR = SQL_DIR / "catalog"
_SOURCE = re.compile(r"@source\((?P<table>[a-z0-9_]+)\)")


@dataclass(frozen=True)
class CatalogResult:
    db_path: Path
    views: dict[str, int]
    #: analyses computed from other inputs than the lake holds now (pipelines.lineage), one sentence each
    stale: tuple[str, ...] = ()


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def expand_sources(sql: str, lake: Lake) -> str:
    """Replace ``@source(table)`` with a Parquet scan of that table, or a typed empty SELECT."""

    def repl(m: re.Match[str]) -> str:
        name = m.group("table")
        table = ALL_TABLES[name]
        if lake.remote is not None:
            urls = lake.remote.committed_urls(name)
            if not urls:
                return f"({table.empty_select_sql()})"
            files = "[" + ", ".join(_quote_literal(u) for u in urls) + "]"
            return (f"(SELECT {', '.join(_cols(table))} FROM read_parquet({files}, union_by_name = true, "
                    "hive_partitioning = false))")
        if lake.has_files(name):
            scan = (
                f"read_parquet({_quote_literal(lake.glob(name))}, union_by_name = true, "
                "hive_partitioning = false)"
            )
            return f"(SELECT {', '.join(_cols(table, _file_columns(scan)))} FROM {scan})"
        return f"({table.empty_select_sql()})"

    return _SOURCE.sub(repl, sql)


def _cols(table, present: set[str] | None = None) -> list[str]:
    """The table's columns; one its files do not have yet (written before the column existed) is NULL."""
    return [f'"{c.name}"' if present is None or c.name in present else f'CAST(NULL AS {c.type}) AS "{c.name}"'
            for c in table.columns]


def _file_columns(scan: str) -> set[str]:
    con = duckdb.connect()
    try:
        return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    finally:
        con.close()


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
            if lake.remote is not None:
                lake.remote.check()
                use_s3(con, lake.remote.settings)
            con.execute("CREATE OR REPLACE TABLE liqf_lake AS SELECT ?::VARCHAR AS location, ?::VARCHAR AS endpoint",
                        [lake.location, lake.remote.settings.resolved_endpoint() if lake.remote else None])
            for path in catalog_files():
                con.execute(expand_sources(path.read_text(), lake))
            fresh = lineage.freshness(lake) if lake.remote is None else []
            con.execute("CREATE OR REPLACE TABLE analytics_freshness (venue VARCHAR, analysis VARCHAR, "
                        "computed_at TIMESTAMP, stale BOOLEAN, changes VARCHAR)")
            if fresh:
                con.executemany("INSERT INTO analytics_freshness VALUES (?, ?, ?, ?, ?)",
                                [(f.venue, f.analysis, f.computed_at, f.stale, "; ".join(f.changes)) for f in fresh])
            views = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]
            counts = {v: con.execute(f'SELECT count(*) FROM "{v}"').fetchone()[0] for v in views}
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return CatalogResult(db_path, counts, tuple(f.describe() for f in fresh if f.stale))


def connect_read_only(db_path: Path, readable: Sequence[str] = ()) -> duckdb.DuckDBPyConnection:
    """The catalog, read-only and locked (:func:`lock_down`); ``readable`` names files outside the lake a
    named query was given to read (its CSV parameters)."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise FileNotFoundError(
            f"{db_path} does not exist yet: run `liqf catalog refresh` (or an ingest) first"
        )
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        row = con.execute("SELECT location, endpoint FROM liqf_lake").fetchone()
    except duckdb.CatalogException:
        row = None
    if row and str(row[0]).startswith("s3://"):
        use_s3(con, StoreSettings(endpoint=row[1]))
    lock_down(con, str(row[0]) if row else None, readable)
    return con


def lock_down(con: duckdb.DuckDBPyConnection, lake_location: str | None, readable: Sequence[str] = ()) -> None:
    """No file, network or extension access beyond reading the lake, and no way to undo that.

    With external access off DuckDB refuses COPY/EXPORT targets, ATTACH, INSTALL/LOAD and every
    table function (``read_text``, ``read_csv``, ``glob``...) on a path outside ``allowed_directories``;
    the lake itself stays readable because the views read it. Locking the configuration makes a
    ``SET``/``RESET`` in the user's SQL an error.
    """
    allowed = [lake_location.rstrip("/") + "/"] if lake_location else []
    con.execute("SET allowed_directories = ?", [allowed])
    if readable:
        con.execute("SET allowed_paths = ?", [[str(Path(p).resolve()) for p in readable]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class ReadOnlyQuery(ValueError):
    """A statement that would write, attach, load or reconfigure: ``liqf sql`` only reads."""


#: what ``liqf sql`` runs: queries (SHOW/DESCRIBE/SUMMARIZE/FROM are SELECTs to DuckDB) and their plans
READ_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse any statement that is not a query, before anything runs (COPY into the lake would pass the
    directory check, so the statement kind is checked too)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyQuery(f"query failed: {exc}".splitlines()[0]) from None
    for st in statements:
        kind = st.type.name
        if kind not in READ_STATEMENTS:
            raise ReadOnlyQuery(f"liqf sql is read-only: {kind} statements are refused (only SELECT and EXPLAIN run)")


def httpfs_extension() -> Path:
    """The httpfs extension binary that the ``duckdb-extension-httpfs`` package ships for this DuckDB."""
    import duckdb_extension_httpfs

    path = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if not path.exists():
        raise StorageError(f"duckdb-extension-httpfs has no build for DuckDB {duckdb.__version__}: reinstall with `make setup`")
    return path


def use_s3(con: duckdb.DuckDBPyConnection, settings: StoreSettings) -> None:
    """Load httpfs from the package and create an in-memory S3 secret from the environment."""
    check_credentials()
    con.execute(f"LOAD {_quote_literal(str(httpfs_extension()))}")
    params = {
        "KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "SECRET": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "REGION": settings.resolved_region(),
    }
    if os.environ.get("AWS_SESSION_TOKEN"):
        params["SESSION_TOKEN"] = os.environ["AWS_SESSION_TOKEN"]
    endpoint = settings.resolved_endpoint()
    if endpoint:
        host = endpoint.split("://", 1)[-1].rstrip("/")
        params.update({"ENDPOINT": host, "URL_STYLE": "path"})
        extra = f", USE_SSL {'false' if endpoint.startswith('http://') else 'true'}"
    else:
        extra = ""
    body = ", ".join(f"{k} {_quote_literal(v)}" for k, v in params.items())
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET liqf_s3 (TYPE s3, {body}{extra})")
    except duckdb.Error:
        # the statement holds the secret: never let it reach a message
        raise StorageError("DuckDB refused the S3 secret built from the environment: check the AWS_* variables") from None
