"""Ingest Hyperliquid node files: ``node_fills_by_block``, position snapshots and asset contexts.

Fill files are streamed in batches through DuckDB (constant memory), staged as Parquet inside the
lake, de-duplicated on (user, tid) and then written per UTC day, atomically, under the input's key.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from forensics.formats import hyperliquid as hl
from forensics.schema import ACCOUNT_SNAPSHOTS, ASSET_CTXS, FILLS, POSITION_SNAPSHOTS, Table
from pipelines.ingest.report import (
    IngestReport,
    display_name,
    record_run,
    rejects_from_rows,
    write_quarantine,
)
from pipelines.ingest.streams import StreamState, iter_line_batches
from pipelines.lake import Lake, atomic_path, sha256_file, source_key

VENUE = hl.VENUE
NODE_FILLS = "node_fills_by_block"
SNAPSHOT = "clearinghouse_snapshot"
ASSET_CTX_FILE = "asset_ctxs_file"

Progress = Callable[[int], None]


class InputError(ValueError):
    """An input that cannot be ingested at all (missing, unreadable, empty)."""


def expand_inputs(paths: Iterable[Path], patterns: tuple[str, ...] = ("*.lz4", "*.json", "*.jsonl")) -> list[Path]:
    """Files as given, directories expanded recursively to matching files, sorted; errors say which path."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(f for pat in patterns for f in p.rglob(pat) if f.is_file())
            if not found:
                raise InputError(f"{p}: directory has no {'/'.join(patterns)} files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    for f in files:
        try:
            with open(f, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise InputError(f"{f}: cannot read ({exc.strerror})") from None
        if f.stat().st_size == 0:
            raise InputError(f"{f}: file is empty")
    return sorted(dict.fromkeys(files))


def _ingest_con(tmp: Path) -> duckdb.DuckDBPyConnection:
    # a fixed memory budget: DuckDB spills to the staging directory instead of growing with the input
    con = duckdb.connect(config={"memory_limit": "512MB", "temp_directory": str(tmp / "spill")})
    return con


def _select_cast(table: Table) -> str:
    return ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in table.columns)


def ingest_node_fills(lake: Lake, path: Path, *, progress: Progress | None = None) -> IngestReport:
    """Ingest one ``node_fills_by_block`` file (lz4 frame or plain JSON lines)."""
    sha, size = sha256_file(path)
    key = source_key(NODE_FILLS, path.parent.name, path.name)
    report = IngestReport(VENUE, NODE_FILLS, display_name(path), key, sha, size)
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    lake.store_raw_file(path, VENUE, NODE_FILLS, sha)

    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=_staging_root(lake)))
    try:
        con = _ingest_con(staging)
        state = StreamState()
        fill_parts: list[str] = []
        reject_tables: list[pa.Table] = []
        for i, batch in enumerate(iter_line_batches(path, state)):
            if batch.bad:
                reject_tables.append(rejects_from_rows(batch.bad))
                report.records_read += len(batch.bad)
            out = hl.normalize_node_lines(con, batch.lines, source=NODE_FILLS, source_key=key)
            report.records_read += out.records_read
            part = staging / f"fills-{i:05d}.parquet"
            pq.write_table(out.fills, part)
            fill_parts.append(str(part))
            reject_tables.append(out.rejects)
            if progress:
                progress(out.fills.num_rows + out.rejects.num_rows)
        if state.tail_error:
            report.records_read += 1
            report.notes.append(state.tail_error)
            reject_tables.append(
                rejects_from_rows([(state.tail_line or 0, None, state.tail_error, state.tail_text)])
            )

        written, dupes = _write_fills(con, lake, staging, fill_parts, key)
        report.records_written = written
        report.rows_by_table[FILLS.name] = written
        reject_tables.append(dupes)
        rejects = pa.concat_tables([t.cast(reject_tables[0].schema) for t in reject_tables]) if reject_tables else None
        write_quarantine(lake, report, rejects if rejects is not None else rejects_from_rows([]), FILLS.name,
                         ingested_at)
        con.close()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    record_run(lake, report, ingested_at)
    return report


def _staging_root(lake: Lake) -> Path:
    root = lake.root / ".staging"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _write_fills(
    con: duckdb.DuckDBPyConnection, lake: Lake, staging: Path, parts: list[str], key: str
) -> tuple[int, pa.Table]:
    """De-duplicate staged fills on (user, fill_id), write one file per UTC day; return (rows, duplicate rejects)."""
    if not parts:
        lake.replace_source(FILLS, VENUE, key, FILLS.arrow_schema().empty_table())
        return 0, rejects_from_rows([])
    has_dupes = con.execute(
        'SELECT 1 FROM read_parquet(?) GROUP BY "user", fill_id HAVING count(*) > 1 LIMIT 1', [parts]
    ).fetchone()
    if has_dupes:  # rare: rank legs and quarantine all but the first occurrence
        con.execute(
            "CREATE OR REPLACE TEMP TABLE staged AS SELECT *, row_number() OVER "
            '(PARTITION BY "user", fill_id ORDER BY line_no, event_index) AS dup_rank FROM read_parquet(?)',
            [parts],
        )
    else:  # staged files are already in input order; no ranking needed
        files = ", ".join(f"'{_sql_str(Path(p))}'" for p in parts)  # views cannot take parameters
        con.execute(f"CREATE OR REPLACE TEMP VIEW staged AS SELECT *, 1 AS dup_rank FROM read_parquet([{files}])")
    dupes = con.execute(
        "SELECT line_no, event_index, 'duplicate fill (user, tid) already seen at an earlier line' AS reason, "
        "left(to_json(struct_pack(\"user\", coin, tid, time_ms, px, sz, dir))::VARCHAR, 8192) AS raw "
        "FROM staged WHERE dup_rank > 1 ORDER BY line_no, event_index"
    ).fetch_arrow_table()
    days = [r[0] for r in con.execute("SELECT DISTINCT date FROM staged WHERE dup_rank = 1 ORDER BY 1").fetchall()]
    total = 0
    new_paths = set()
    cast = _select_cast(FILLS)
    for day in days:
        path = lake.part_path(FILLS.name, VENUE, day, key)
        with atomic_path(path) as tmp:
            con.execute(
                f"COPY (SELECT {cast} FROM staged WHERE dup_rank = 1 AND date = ?) TO '{_sql_str(tmp)}' "
                "(FORMAT parquet, COMPRESSION zstd)",
                [day],
            )
        new_paths.add(path)
        total += pq.read_metadata(path).num_rows
    lake.drop_stale_parts(FILLS.name, VENUE, key, keep=new_paths)
    con.execute("DROP VIEW IF EXISTS staged" if not has_dupes else "DROP TABLE staged")
    return total, dupes


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def _json_lines(path: Path, report: IngestReport, bad: list) -> Iterable[tuple[int, object]]:
    state = StreamState()
    for batch in iter_line_batches(path, state, batch_bytes=8 << 20):
        bad.extend(batch.bad)
        report.records_read += len(batch.bad)
        for line_no, text in zip(batch.lines.column("line_no").to_pylist(), batch.lines.column("line").to_pylist()):
            report.records_read += 1
            try:
                yield line_no, orjson.loads(text)
            except orjson.JSONDecodeError:
                bad.append((line_no, None, "malformed JSON line", text))
    if state.tail_error:
        report.records_read += 1
        report.notes.append(state.tail_error)
        bad.append((state.tail_line or 0, None, state.tail_error, state.tail_text))


def ingest_snapshot(lake: Lake, path: Path, *, progress: Progress | None = None) -> IngestReport:
    """Ingest a position snapshot file: JSON lines ``{"time", "user", "state": clearinghouseState}``."""
    sha, size = sha256_file(path)
    key = source_key(SNAPSHOT, path.parent.name, path.name)
    report = IngestReport(VENUE, SNAPSHOT, display_name(path), key, sha, size)
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    lake.store_raw_file(path, VENUE, SNAPSHOT, sha)
    accounts, positions, bad = [], [], []
    for line_no, obj in _json_lines(path, report, bad):
        try:
            account, pos = hl.snapshot_rows(obj)
        except hl.RecordError as exc:
            bad.append((line_no, None, str(exc), orjson.dumps(obj).decode()))
            continue
        accounts.append(account)
        positions.extend(pos)
        if progress:
            progress(1)
    lineage = {"venue": VENUE, "source": SNAPSHOT, "source_key": key}
    acc = hl.rows_to_arrow(ACCOUNT_SNAPSHOTS, accounts, **lineage)
    pos = hl.rows_to_arrow(POSITION_SNAPSHOTS, positions, **lineage)
    lake.replace_source(ACCOUNT_SNAPSHOTS, VENUE, key, acc)
    lake.replace_source(POSITION_SNAPSHOTS, VENUE, key, pos)
    report.records_written = acc.num_rows
    report.rows_by_table.update({ACCOUNT_SNAPSHOTS.name: acc.num_rows, POSITION_SNAPSHOTS.name: pos.num_rows})
    write_quarantine(lake, report, rejects_from_rows(bad), ACCOUNT_SNAPSHOTS.name, ingested_at)
    record_run(lake, report, ingested_at)
    return report


def ingest_asset_ctxs(lake: Lake, path: Path, *, progress: Progress | None = None) -> IngestReport:
    """Ingest an asset-context file: JSON lines ``{"time", "ctxs": metaAndAssetCtxs response}``."""
    sha, size = sha256_file(path)
    key = source_key(ASSET_CTX_FILE, path.parent.name, path.name)
    report = IngestReport(VENUE, ASSET_CTX_FILE, display_name(path), key, sha, size)
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    lake.store_raw_file(path, VENUE, ASSET_CTX_FILE, sha)
    rows, bad = [], []
    for line_no, obj in _json_lines(path, report, bad):
        try:
            rows.extend(hl.asset_ctx_rows(obj))
        except hl.RecordError as exc:
            bad.append((line_no, None, str(exc), orjson.dumps(obj).decode()))
            continue
        report.records_written += 1
        if progress:
            progress(1)
    table = hl.rows_to_arrow(ASSET_CTXS, rows, venue=VENUE, source=ASSET_CTX_FILE, source_key=key)
    lake.replace_source(ASSET_CTXS, VENUE, key, table)
    report.rows_by_table[ASSET_CTXS.name] = table.num_rows
    write_quarantine(lake, report, rejects_from_rows(bad), ASSET_CTXS.name, ingested_at)
    record_run(lake, report, ingested_at)
    return report
