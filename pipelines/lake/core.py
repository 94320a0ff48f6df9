"""The Parquet lake: layout, path safety and atomic, idempotent writes.

Layout under the lake root::

    raw/venue=<v>/source=<kind>/<sha256>.<ext>            input files as received (content-addressed)
    raw/venue=<v>/source=api/date=<d>/<run>.jsonl.gz      API responses with request metadata
    normalized/<table>/venue=<v>/date=<d>/part-<key>.parquet
    meta/ingest_runs/venue=<v>/part-<key>.parquet         one reconciliation row per input
    analytics/<table>/...                                 analysis outputs

A lake root can also be an object-storage URL (``s3://bucket/prefix``, same layout): then the local
root is a working cache and every input's files are committed to the bucket through
:mod:`pipelines.lake.remote` (unique part names plus a manifest per input key, since object
stores have no rename).

Every normalized file belongs to exactly one input (``<key>`` = that input's ``source_key``), so
re-ingesting an input replaces its files and nothing else: idempotent by construction. Path segments
come only from the pipeline (venue ids, table names, dates, hex keys), never from data strings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from forensics.tables import ALL_TABLES, INGEST_RUNS, Table
from pipelines.lake.files import (
    STAGING_DIR,
    STAGING_PREFIX,
    TMP_PREFIX,
    RawApiWriter,
    atomic_path,
    is_unlocked,
    staging_dir,
    tree_bytes,
    write_parquet,
)
from pipelines.lake.remote import RemoteLake
from pipelines.lake.select import file_columns, parquet_scan, quote_literal, rows_sql
from pipelines.storage.location import is_object_url, parse_url
from pipelines.storage.stores import StoreSettings

_SAFE_SEGMENT = re.compile(r"^[a-z0-9_]{1,64}$")
_HEX_KEY = re.compile(r"^[0-9a-f]{8,64}$")
#: the name of every committed normalized/analytics/meta file (``part-<source key>.parquet``)
PART_GLOB = "part-*.parquet"
#: the raw folder of stream captures (pipelines.ingest.capture), whose open hour files start with ``.tmp-``
CAPTURE_SOURCE = "source=ws"


class LakePathError(ValueError):
    """A path segment that is not one the pipeline itself generates."""


def safe_segment(value: str, what: str) -> str:
    if not _SAFE_SEGMENT.match(value):
        raise LakePathError(f"refusing {what} {value!r}: only [a-z0-9_] segments shape lake paths")
    return value


def source_key(*parts: object) -> str:
    """A stable hex id for an input (a file identity, or an API request and its window)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


#: where the working copies of object-storage lakes live (``LIQF_LAKE_CACHE`` overrides)
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "data" / "lake-cache"


@dataclass(frozen=True)
class SweepResult:
    """What a sweep removed: temporaries and staging directories of killed runs."""

    files: int = 0
    dirs: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Window:
    """A closed time window on ``time_ms`` (either end open when None)."""

    since_ms: int | None = None
    until_ms: int | None = None

    def sql(self) -> str:
        terms = []
        if self.since_ms is not None:
            terms.append(f"time_ms >= {int(self.since_ms)}")
        if self.until_ms is not None:
            terms.append(f"time_ms <= {int(self.until_ms)}")
        return " AND ".join(terms)


@dataclass(frozen=True)
class Lake:
    root: Path
    remote: RemoteLake | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.remote is None and is_object_url(str(self.root)):
            lake = Lake.open(str(self.root))
            object.__setattr__(self, "remote", lake.remote)
            object.__setattr__(self, "root", lake.root)
        object.__setattr__(self, "root", Path(self.root).resolve())

    @classmethod
    def open(cls, target: str | Path, *, endpoint: str | None = None, cache: Path | None = None) -> Lake:
        """A lake at a local directory, or at ``s3://bucket/prefix`` (any S3-compatible ``endpoint``)."""
        text = str(target)
        if not is_object_url(text):
            return cls(Path(target))
        url = parse_url(text)
        cache_root = Path(cache or os.environ.get("LIQF_LAKE_CACHE") or DEFAULT_CACHE)
        local = cache_root / url.bucket / (url.prefix or "_root")
        return cls(local, RemoteLake(url, StoreSettings(endpoint=endpoint)))

    @property
    def location(self) -> str:
        """Where the lake is: its URL, or its directory."""
        return str(self.remote.url) if self.remote else str(self.root)

    def commit_source(
        self, table: str, venue: str, key: str, paths: set[Path], rows: dict[str, int] | None = None
    ) -> None:
        """Make input ``key``'s files of ``table`` visible: local files already are (atomic renames);
        an object-storage lake uploads them and commits their manifest."""
        if self.remote is not None:
            self.remote.commit(table, venue, key, {p.relative_to(self.root).as_posix(): p for p in paths}, rows)

    def pull(self, tables: list[str] | None = None) -> int:
        """Refresh the local working copy of an object-storage lake (committed parts only); 0 for local lakes."""
        if self.remote is None:
            return 0
        return sum(self.remote.pull(t, self.root) for t in (tables or list(ALL_TABLES)))

    # --- the one read API --------------------------------------------------------------------------------
    def read(
        self,
        table: str | Table,
        venue: str | None = None,
        window: Window | None = None,
        *,
        exclude: Sequence[str] = (),
        extra: Sequence[str] = (),
        sources: Iterable[str] | None = None,
        dedup: bool = True,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> pl.DataFrame | None:
        """``table``'s rows of ``venue`` (every venue when None) in ``window``, one row per key by the table's
        dedup rule (``Table.dedup``; the catalog views apply the same generated SQL); None when the table has
        no file. An object-storage lake's committed parts are pulled first.

        ``exclude``: columns left out of the result (the rule may still order by them); ``extra``: SQL
        expressions added to it; ``sources``: only the rows these inputs (source keys) wrote; ``dedup=False``:
        every row as written (the data-quality checks test what the inputs wrote, repeats included).
        """
        t = ALL_TABLES[table] if isinstance(table, str) else table
        rule = t.dedup if dedup else None
        needs_runs = rule is not None and rule.needs_ingest_time
        if self.remote is not None:
            self.pull([t.name, INGEST_RUNS.name] if needs_runs else [t.name])
        if not self.has_files(t.name):
            return None
        where = []
        if venue is not None:
            where.append(f"venue = {quote_literal(venue)}")
        if window is not None and window.sql():
            if "time_ms" not in t.column_names:
                raise ValueError(f"{t.name} has no time_ms to window on")
            where.append(window.sql())
        if sources is not None:
            keys = sorted(set(sources))
            if not keys:
                return pl.from_arrow(t.arrow_schema().empty_table())  # type: ignore[return-value]
            where.append(f"source_key IN ({', '.join(quote_literal(k) for k in keys)})")
        projection = "t.*" + (f" EXCLUDE ({', '.join(chr(34) + c + chr(34) for c in exclude)})" if exclude else "")
        projection += "".join(f", {e}" for e in extra)
        own = con is None
        con = con or duckdb.connect()
        try:
            scan = parquet_scan(t, self.glob(t.name), file_columns(con, self.glob(t.name)))
            # ranking every row is several times slower than finding that no key repeats (the usual case)
            if rule is not None and rule.order and t.key:
                key = ", ".join(f'"{c}"' for c in t.key)
                filters = f"WHERE {' AND '.join(where)}" if where else ""
                repeats = con.execute(f"SELECT 1 FROM ({scan}) {filters} GROUP BY {key} HAVING count(*) > 1 LIMIT 1")
                dedup = repeats.fetchone() is not None
            runs = (
                parquet_scan(INGEST_RUNS, self.glob(INGEST_RUNS.name))
                if needs_runs and self.has_files(INGEST_RUNS.name)
                else None
            )
            sql = rows_sql(t, scan, runs, where=" AND ".join(where), projection=projection, dedup=dedup)
            return con.execute(sql).pl()
        finally:
            if own:
                con.close()

    # --- paths ----------------------------------------------------------------------------------------
    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise LakePathError(f"refusing to write outside the lake: {path}")
        return path

    def table_dir(self, table: str) -> Path:
        known = ALL_TABLES.get(table)
        layer = {"meta": "meta", "analytics": "analytics"}.get(known.layer if known else "", "normalized")
        return self._inside(self.root / layer / safe_segment(table, "table"))

    def part_path(self, table: str, venue: str, date: dt.date | None, key: str) -> Path:
        if not _HEX_KEY.match(key):
            raise LakePathError(f"refusing source key {key!r}")
        base = self.table_dir(table) / f"venue={safe_segment(venue, 'venue')}"
        if date is not None:
            base = base / f"date={date.isoformat()}"
        return self._inside(base / f"part-{key}.parquet")

    def glob(self, table: str) -> str:
        """Glob of every committed part of a table (for DuckDB ``read_parquet``); temporaries never match."""
        return str(self.table_dir(table) / "**" / PART_GLOB)

    def parts(self, table: str, venue: str | None = None) -> list[Path]:
        """The table's committed part files (of ``venue``, or every venue), sorted."""
        d = self.table_dir(table)
        if venue is not None:
            d = d / f"venue={safe_segment(venue, 'venue')}"
        return sorted(d.rglob(PART_GLOB)) if d.exists() else []

    def has_files(self, table: str) -> bool:
        d = self.table_dir(table)
        return d.exists() and any(True for _ in d.rglob(PART_GLOB))

    # --- repair ---------------------------------------------------------------------------------------
    def sweep_temporaries(self) -> SweepResult:
        """Remove what killed runs left: ``.tmp-*`` files anywhere in the lake and ``.staging`` directories
        whose owner is gone (a live writer holds a lock on each, so concurrent runs are safe). A stream
        capture's open hour (``raw/.../source=ws/.../.tmp-<session>.jsonl``) is kept: it holds messages
        received, not a copy of something being written."""
        if not self.root.exists():
            return SweepResult()
        files = dirs = size = 0
        for path in self.root.rglob(f"{TMP_PREFIX}*"):
            if CAPTURE_SOURCE in path.parts:
                continue
            if path.is_file() and is_unlocked(path):
                try:
                    n = path.stat().st_size
                    path.unlink()
                except FileNotFoundError:  # renamed into place or removed by its writer meanwhile
                    continue
                files, size = files + 1, size + n
        base = self.root / STAGING_DIR
        for path in sorted(base.glob(f"{STAGING_PREFIX}*")) if base.exists() else []:
            if path.is_dir() and is_unlocked(path):
                n = tree_bytes(path)
                shutil.rmtree(path, ignore_errors=True)
                dirs, size = dirs + 1, size + n
        for path in sorted(base.glob(".creating-*")) if base.exists() else []:
            # killed between creating and locking its directory (microseconds); an hour is past any doubt
            if path.is_dir() and time.time() - path.stat().st_mtime > 3600:
                shutil.rmtree(path, ignore_errors=True)
                dirs += 1
        return SweepResult(files, dirs, size)

    def staging(self) -> AbstractContextManager[Path]:
        """A private, locked working directory inside the lake (see :func:`staging_dir`)."""
        return staging_dir(self.root)

    # --- normalized writes ------------------------------------------------------------------------------
    def replace_source(self, table: Table, venue: str, key: str, data: pa.Table) -> dict[str, int]:
        """Write ``data`` (in ``table``'s schema) as the files of input ``key``, replacing earlier ones.

        Rows are split by their ``date`` column; each day's file is written atomically; files of the
        same input on days that no longer have rows are removed afterwards. Returns rows per day.
        """
        data = conform(table, data)
        written: dict[str, int] = {}
        new_paths: set[Path] = set()
        if "date" in data.column_names:
            dates = pc.unique(data.column("date")).to_pylist()
            for day in sorted(d for d in dates if d is not None):
                part = data.filter(pc.equal(data.column("date"), pa.scalar(day, pa.date32())))
                path = self.part_path(table.name, venue, day, key)
                write_parquet(part, path)
                new_paths.add(path)
                written[day.isoformat()] = part.num_rows
        else:
            path = self.part_path(table.name, venue, None, key)
            write_parquet(data, path)
            new_paths.add(path)
            written["-"] = data.num_rows
        self.drop_stale_parts(table.name, venue, key, keep=new_paths)
        self.commit_source(table.name, venue, key, new_paths, written)
        return written

    def drop_stale_parts(self, table: str, venue: str, key: str, keep: set[Path]) -> None:
        """Remove input ``key``'s files of ``table`` that a re-ingest did not write again (days it no longer covers)."""
        venue_dir = self.table_dir(table) / f"venue={safe_segment(venue, 'venue')}"
        for old in venue_dir.rglob(f"part-{key}.parquet"):
            if old not in keep:
                old.unlink()

    # --- raw layer -----------------------------------------------------------------------------------------
    def store_raw_file(self, src: Path, venue: str, source: str, sha256: str) -> Path:
        """Keep an input file as received, content-addressed (idempotent; hard link when possible)."""
        suffix = "".join(s for s in src.suffixes[-2:] if re.fullmatch(r"\.[a-z0-9]{1,8}", s))
        dest = self._inside(
            self.root
            / "raw"
            / f"venue={safe_segment(venue, 'venue')}"
            / f"source={safe_segment(source, 'source')}"
            / f"{sha256}{suffix}"
        )
        if not dest.exists():
            with atomic_path(dest) as tmp:
                tmp.unlink()
                try:
                    os.link(src, tmp)
                except OSError:
                    shutil.copyfile(src, tmp)
        if self.remote is not None:
            self.remote.put_raw(dest.relative_to(self.root).as_posix(), dest)
        return dest

    def raw_api_writer(self, venue: str, run_id: str, day: dt.date) -> RawApiWriter:
        path = self._inside(
            self.root
            / "raw"
            / f"venue={safe_segment(venue, 'venue')}"
            / "source=api"
            / f"date={day.isoformat()}"
            / f"{safe_segment(run_id, 'run id')}.jsonl.gz"
        )
        remote = self.remote
        if remote is None:
            return RawApiWriter(path)
        return RawApiWriter(path, lambda p: remote.put_raw(p.relative_to(self.root).as_posix(), p))


def conform(table: Table, data: pa.Table) -> pa.Table:
    """Select and cast ``data`` to ``table``'s exact schema (extra columns dropped)."""
    schema = table.arrow_schema()
    missing = [n for n in schema.names if n not in data.column_names]
    if missing:
        raise ValueError(f"{table.name}: missing columns {missing}")
    return data.select(schema.names).cast(schema)
