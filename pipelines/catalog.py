"""The DuckDB catalog: views over the Parquet lake, created from ``sql/catalog/*.sql``.

Only ``refresh`` writes the DuckDB file, under a file lock (DuckDB allows one writer per file);
queries open it read-only. Views read Parquet by absolute path, so plain ``duckdb <db>`` works from
any directory. Over an object-storage lake the views list the committed parts (from the manifests)
as ``s3://`` URLs read through DuckDB's httpfs extension, loaded from the ``duckdb-extension-httpfs``
package; the S3 secret is created from the environment in memory at every connection, never stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from filelock import FileLock

from forensics.tables import ALL_TABLES, INGEST_RUNS, Table
from pipelines.lake import Lake, lineage
from pipelines.lake.select import file_columns, parquet_scan, quote_literal, rows_sql
from pipelines.sql_library import SQL_DIR
from pipelines.storage.stores import StorageError, StoreSettings, aws_credentials

CATALOG_DIR = SQL_DIR / "catalog"
_SOURCE = re.compile(r"@source\((?P<table>[a-z0-9_]+)\)")


@dataclass(frozen=True)
class CatalogResult:
    db_path: Path
    views: dict[str, int]
    #: analyses computed from other inputs than the lake holds now (pipelines.lake.lineage), one sentence each
    stale: tuple[str, ...] = ()


def _scan(table: Table, lake: Lake, con: duckdb.DuckDBPyConnection) -> str | None:
    """A SELECT of the table's committed files (local glob or ``s3://`` URLs); None when there is none.
    ``con`` reads the files' footers (a column older parts lack reads as the table says, never fails)."""
    files: str | list[str]
    if lake.remote is not None:
        files = lake.remote.committed_urls(table.name)
        if not files:
            return None
    elif lake.has_files(table.name):
        files = lake.glob(table.name)
    else:
        return None
    return parquet_scan(table, files, file_columns(con, files))


def expand_sources(
    sql: str, lake: Lake, con: duckdb.DuckDBPyConnection, scans: dict[str, str | None] | None = None
) -> str:
    """Replace ``@source(table)`` with that table's rows, one per key by its dedup rule (the SQL
    :meth:`Lake.read` runs), or a typed empty SELECT when the table has no file yet. ``scans``: the
    tables' scans already built in this refresh (filled as it goes)."""
    scans = {} if scans is None else scans

    def scan_of(table: Table) -> str | None:
        if table.name not in scans:
            scans[table.name] = _scan(table, lake, con)
        return scans[table.name]

    def repl(m: re.Match[str]) -> str:
        table = ALL_TABLES[m.group("table")]
        scan = scan_of(table)
        return f"({rows_sql(table, scan, scan_of(INGEST_RUNS))})" if scan else f"({table.empty_select_sql()})"

    return _SOURCE.sub(repl, sql)


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
            con.execute(
                "CREATE OR REPLACE TABLE liqf_lake AS SELECT ?::VARCHAR AS location, ?::VARCHAR AS endpoint",
                [lake.location, lake.remote.settings.resolved_endpoint() if lake.remote else None],
            )
            scans: dict[str, str | None] = {}
            for path in catalog_files():
                con.execute(expand_sources(path.read_text(), lake, con, scans))
            fresh = lineage.freshness(lake) if lake.remote is None else []
            con.execute(
                "CREATE OR REPLACE TABLE analytics_freshness (venue VARCHAR, analysis VARCHAR, "
                "computed_at TIMESTAMP, stale BOOLEAN, changes VARCHAR)"
            )
            if fresh:
                con.executemany(
                    "INSERT INTO analytics_freshness VALUES (?, ?, ?, ?, ?)",
                    [(f.venue, f.analysis, f.computed_at, f.stale, "; ".join(f.changes)) for f in fresh],
                )
            views = [
                r[0]
                for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
            ]
            counts = {v: con.execute(f'SELECT count(*) FROM "{v}"').fetchall()[0][0] for v in views}
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return CatalogResult(db_path, counts, tuple(f.describe() for f in fresh if f.stale))


def connect_read_only(db_path: Path, readable: Sequence[str] = ()) -> duckdb.DuckDBPyConnection:
    """The catalog, read-only and locked (:func:`lock_down`); ``readable`` names files outside the lake a
    named query was given to read (its CSV parameters)."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise FileNotFoundError(f"{db_path} does not exist yet: run `liqf catalog refresh` (or an ingest) first")
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
    directory check, so the statement kind is checked too). SQL that does not parse raises DuckDB's error."""
    for st in con.extract_statements(sql):
        kind = st.type.name
        if kind not in READ_STATEMENTS:
            raise ReadOnlyQuery(f"liqf sql is read-only: {kind} statements are refused (only SELECT and EXPLAIN run)")


def httpfs_extension() -> Path:
    """The httpfs extension binary that the ``duckdb-extension-httpfs`` package ships for this DuckDB."""
    # only for s3:// lakes: the extension package is looked up when a catalog needs it
    import duckdb_extension_httpfs

    path = (
        Path(duckdb_extension_httpfs.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "httpfs.duckdb_extension"
    )
    if not path.exists():
        raise StorageError(
            f"duckdb-extension-httpfs has no build for DuckDB {duckdb.__version__}: reinstall with `make setup`"
        )
    return path


def use_s3(con: duckdb.DuckDBPyConnection, settings: StoreSettings) -> None:
    """Load httpfs from the package and create an in-memory S3 secret from the standard AWS credential chain."""
    keys = aws_credentials()
    con.execute(f"LOAD {quote_literal(str(httpfs_extension()))}")
    params = {"KEY_ID": keys.access_key, "SECRET": keys.secret_key, "REGION": settings.resolved_region()}
    if keys.token:
        params["SESSION_TOKEN"] = keys.token
    endpoint = settings.resolved_endpoint()
    if endpoint:
        host = endpoint.split("://", 1)[-1].rstrip("/")
        params.update({"ENDPOINT": host, "URL_STYLE": "path"})
        extra = f", USE_SSL {'false' if endpoint.startswith('http://') else 'true'}"
    else:
        extra = ""
    body = ", ".join(f"{k} {quote_literal(v)}" for k, v in params.items())
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET liqf_s3 (TYPE s3, {body}{extra})")
    except duckdb.Error:
        # the statement holds the secret: never let it reach a message
        raise StorageError(
            "DuckDB refused the S3 secret built from the AWS credentials: check the profile or the AWS_* variables"
        ) from None
