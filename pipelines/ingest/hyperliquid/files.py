"""Ingest Hyperliquid node files: ``node_fills_by_block``, position snapshots and asset contexts.

Fill files are streamed in batches through DuckDB (constant memory) into one staged Parquet file per
UTC day inside the lake, de-duplicated on (user, tid) and then published atomically under the input's key.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forensics.formats import hyperliquid as hl
from forensics.formats.hyperliquid import legacy
from forensics.tables import ACCOUNT_SNAPSHOTS, ASSET_CTXS, FILLS, POSITION_SNAPSHOTS
from pipelines.crash_points import crash_point
from pipelines.ingest.common import finish, keep_file, start_file, write_rows
from pipelines.ingest.report import IngestReport, rejects_from_rows
from pipelines.ingest.streams import RawBatch, StreamState, iter_line_batches, iter_raw_batches, selected_lines
from pipelines.lake import Lake, atomic_path, source_key

VENUE = hl.VENUE
NODE_FILLS = "node_fills_by_block"
LEGACY_NODE_FILLS = "node_fills"
LEGACY_NODE_TRADES = "node_trades"
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


#: batches scanned ahead of the one being written (each ~32 MB decoded): both cores busy, memory bounded
SCAN_AHEAD = 3


def ingest_node_fills(
    lake: Lake, path: Path, *, progress: Progress | None = None, kind: str = NODE_FILLS, allow_partial: bool = False
) -> IngestReport:
    """Ingest one node fill file (lz4 frame or plain JSON lines): ``node_fills_by_block``, or the legacy
    ``node_fills`` / ``node_trades`` streams (``kind``), converted line by line to by-block lines.
    A truncated file raises :class:`IncompleteInput` before anything is published unless ``allow_partial``.

    Batches of lines are scanned on worker threads (the compiled scan releases the GIL: both cores) while this
    thread decodes the next ones and writes the finished ones in input order; lines the scan does not take
    go through the general path here. ``progress(n)`` hears of each ``n`` bytes of the file (as stored) done."""
    key = source_key(kind, path.parent.name, path.name)
    report, ingested_at = start_file(lake, path, venue=VENUE, source=kind, key=key)
    fill_times: list[np.ndarray] = []

    with lake.staging() as staging, ThreadPoolExecutor(2, thread_name_prefix="scan") as pool:
        con = _ingest_con(staging)
        days = _DayFiles(con, staging)
        pending: deque[tuple[Future[_Scanned], int]] = deque()
        done_bytes = 0
        try:
            state = StreamState()
            reject_tables: list[pa.Table] = []

            def finish_batch(future: Future[_Scanned], input_bytes: int) -> None:
                nonlocal done_bytes
                scanned = future.result()
                report.records_read += scanned.records_read
                reject_tables.extend(scanned.rejects)
                fills = scanned.fills
                if scanned.others is not None:  # lines for the general path, merged back in input order
                    parts = [fills]
                    for out in _normalized(con, scanned.others, key, kind):
                        report.records_read += out.records_read
                        reject_tables.append(out.rejects)
                        parts.append(out.fills)
                    fills = pa.concat_tables(parts).sort_by([("line_no", "ascending"), ("event_index", "ascending")])
                if kind != NODE_FILLS:
                    fill_times.append(fills["time_ms"].to_numpy())
                days.write(fills)
                crash_point("staging_batch")
                if progress:
                    progress(input_bytes - done_bytes)
                done_bytes = input_bytes

            for raw in iter_raw_batches(path, state):
                pending.append((pool.submit(_scan_batch, raw, kind, key), raw.input_bytes))
                if len(pending) > SCAN_AHEAD:
                    finish_batch(*pending.popleft())
            while pending:
                finish_batch(*pending.popleft())
            keep_file(lake, report, path, state, allow_partial=allow_partial)
            if progress and state.bytes_read > done_bytes:
                progress(state.bytes_read - done_bytes)
            if state.tail_error:
                report.records_read += 1
                report.notes.append(state.tail_error)
                reject_tables.append(
                    rejects_from_rows([(state.tail_line or 0, None, state.tail_error, state.tail_text)])
                )

            reject_tables.append(days.drop_duplicates())
            if kind != NODE_FILLS:
                report.notes.extend(coverage_notes(np.concatenate(fill_times) if fill_times else np.zeros(0, np.int64)))
            written = days.publish(lake, key)
            report.records_written = written
            report.rows_by_table[FILLS.name] = written
            rejects = pa.concat_tables([t.cast(reject_tables[0].schema) for t in reject_tables])
        finally:
            for future, _ in pending:
                future.cancel()
            days.close()
            con.close()
    return finish(lake, report, rejects, FILLS, ingested_at)


@dataclass
class _Scanned:
    """One batch after the scan: the plain lines' fills, the lines left for the general path (None: none),
    the records read so far and the rejects found so far."""

    fills: pa.Table
    others: pa.Table | None
    records_read: int
    rejects: list[pa.Table]


def _scan_batch(raw: RawBatch, kind: str, key: str) -> _Scanned:
    """Scan a raw batch (on a worker thread). Legacy lines are converted to by-block lines first."""
    rejects: list[pa.Table] = []
    read = 0
    if kind == NODE_FILLS:
        buf = np.frombuffer(raw.data, dtype=np.uint8)
        ends = np.flatnonzero(buf == 10)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        line_nos = np.arange(raw.first_line, raw.first_line + len(ends), dtype=np.int64)
    else:
        decoded = selected_lines(raw.data, *_all_lines(raw))
        lines, converted_bad = legacy_lines(decoded.lines, kind)
        for bad in (decoded.bad, converted_bad):
            if bad:
                rejects.append(rejects_from_rows(bad))
                read += len(bad)
        text = lines["line"].combine_chunks()
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset : text.offset + len(text) + 1]
        buf = np.frombuffer(text.buffers()[2], dtype=np.uint8) if len(text) else np.zeros(0, np.uint8)
        starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
        line_nos = lines["line_no"].to_numpy()
    scanned = hl.scan_node_lines(buf, starts, ends, line_nos, source=kind, source_key=key)
    read += scanned.fills.num_rows
    others = None
    if len(scanned.other_lines):
        keep = np.isin(line_nos, scanned.other_lines)
        if kind == NODE_FILLS:
            decoded = selected_lines(raw.data, starts[keep], ends[keep], line_nos[keep])
            if decoded.bad:
                rejects.append(rejects_from_rows(decoded.bad))
                read += len(decoded.bad)
            others = decoded.lines
        else:
            others = lines.filter(pa.array(keep))
    return _Scanned(scanned.fills, others, read, rejects)


def _all_lines(raw: RawBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    buf = np.frombuffer(raw.data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate([np.zeros(1, np.int64), ends[:-1] + 1])
    return starts, ends, np.arange(raw.first_line, raw.first_line + len(ends), dtype=np.int64)


def _normalized(
    con: duckdb.DuckDBPyConnection, lines: pa.Table, key: str, source: str = NODE_FILLS
) -> Iterable[hl.FillBatch]:
    """The general path for a batch's lines; an oversized block line (a cascade can put 100k+ fills in one
    block) in chunks."""
    lines, large = hl.split_large_lines(lines)
    if lines.num_rows:
        yield hl.normalize_node_lines(con, lines, source=source, source_key=key)
    for line_no, text in large:
        yield from hl.normalize_large_block(con, line_no, text, source=source, source_key=key)


def legacy_lines(lines: pa.Table, kind: str) -> tuple[pa.Table, list[tuple[int, None, str, str]]]:
    """Legacy lines as by-block lines (same line numbers), plus the lines that could not be converted."""
    if kind == LEGACY_NODE_FILLS:  # each [user, fill] line becomes a block of one event, set-wise
        wrapped = pc.binary_join_element_wise('{"events":[', lines["line"], "]}", "")
        return pa.table({"line_no": lines["line_no"], "line": wrapped}), []
    numbers, texts, bad = [], [], []
    for line_no, text in zip(lines["line_no"].to_pylist(), lines["line"].to_pylist()):
        try:
            texts.append(legacy.node_trades_line(text))
            numbers.append(line_no)
        except hl.RecordError as exc:
            bad.append((line_no, None, str(exc), text))
    return pa.table({"line_no": pa.array(numbers, pa.int64()), "line": pa.array(texts, pa.string())}), bad


#: a stretch without fills longer than this is reported as a coverage gap (legacy streams are ragged)
COVERAGE_GAP_MS = 10 * 60_000


def coverage_notes(times_ms: np.ndarray, gap_ms: int = COVERAGE_GAP_MS, limit: int = 3) -> list[str]:
    """What a legacy file covers: its fill-time range and the stretches longer than ``gap_ms`` without fills."""
    if not len(times_ms):
        return ["coverage: no fills"]
    t = np.unique(times_ms)
    fmt = lambda ms: dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    notes = [f"coverage: fills from {fmt(t[0])} to {fmt(t[-1])} UTC"]
    gaps = np.flatnonzero(np.diff(t) > gap_ms)
    if len(gaps):
        shown = ", ".join(f"{fmt(t[i])}..{fmt(t[i + 1])}" for i in gaps[:limit])
        notes.append(
            f"coverage gap: {len(gaps)} stretch(es) over {gap_ms // 60_000} min without fills: {shown}"
            + (" ..." if len(gaps) > limit else "")
        )
    return notes


# Low-cardinality columns: dictionary pages make them small; the rest (hashes, ids, prices) are cheaper plain.
_DICTIONARY_COLUMNS = [
    "venue",
    "date",
    "coin",
    "user",
    "side",
    "dir",
    "fee_token",
    "liquidated_user",
    "liquidation_method",
    "source",
    "source_key",
]
_DUPLICATE_REASON = "duplicate fill (user, tid) already seen at an earlier line"


class _DayFiles:
    """Normalized fills streamed into one staged Parquet file per UTC day, then de-duplicated and published.

    Rows are written once, in input order. Each row's place and a 64-bit hash of its (user, tid) are kept
    in DuckDB (which spills past its memory budget), so memory stays flat and the duplicate check is one
    integer GROUP BY; rows whose hash repeats are compared on their real keys, and only a day file holding
    a duplicate is rewritten. Node fills always carry a tid (a fill without one is quarantined), so
    (user, tid) is the (user, fill_id) key.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, staging: Path) -> None:
        self.con = con
        self.staging = staging
        self.files: dict[dt.date, tuple[Path, pq.ParquetWriter]] = {}
        self.rows: dict[dt.date, int] = {}
        con.execute(
            "CREATE TEMP TABLE fill_keys (key UBIGINT, line_no BIGINT, event_index INTEGER, date DATE, seq BIGINT)"
        )

    def write(self, fills: pa.Table) -> None:
        for day, part in _split_days(fills):
            writer = self._writer(day)
            first = self.rows.get(day, 0)
            keys = part.select(["user", "tid", "line_no", "event_index", "date"]).append_column(
                "seq", pa.array(np.arange(first, first + part.num_rows))
            )
            self.con.register("fill_keys_batch", keys)
            self.con.execute(
                'INSERT INTO fill_keys SELECT hash("user", tid), line_no, event_index, date, seq FROM fill_keys_batch'
            )
            self.con.unregister("fill_keys_batch")
            writer.write_table(part.drop_columns("line_no"))
            self.rows[day] = first + part.num_rows

    def _writer(self, day: dt.date) -> pq.ParquetWriter:
        if day not in self.files:
            path = self.staging / f"fills-{day.isoformat()}.parquet"
            writer = pq.ParquetWriter(
                path, FILLS.arrow_schema(), compression="zstd", use_dictionary=_DICTIONARY_COLUMNS
            )
            self.files[day] = (path, writer)
        return self.files[day][1]

    def close(self) -> None:
        for _, writer in self.files.values():
            writer.close()

    def drop_duplicates(self) -> pa.Table:
        """Remove every repeat of a (user, tid) after its first occurrence; return them as rejects."""
        self.close()
        con = self.con
        if not con.execute("SELECT 1 FROM fill_keys GROUP BY key HAVING count(*) > 1 LIMIT 1").fetchone():
            return rejects_from_rows([])
        days = sorted(self.files)
        con.register("fill_files", pa.table({"date": days, "path": [str(self.files[d][0]) for d in days]}))
        files = ", ".join(f"'{_sql_str(self.files[d][0])}'" for d in days)
        con.execute(
            "CREATE TEMP TABLE fill_dupes AS "
            f"SELECT k.line_no, k.event_index, k.date, k.seq, '{_DUPLICATE_REASON}' AS reason, "
            'left(to_json(struct_pack(f."user", f.coin, f.tid, f.time_ms, f.px, f.sz, f.dir))::VARCHAR, 8192) AS raw '
            "FROM fill_keys k JOIN fill_files USING (date) "
            f"JOIN read_parquet([{files}], filename = true, file_row_number = true) f "
            "ON f.filename = fill_files.path AND f.file_row_number = k.seq "
            "WHERE k.key IN (SELECT key FROM fill_keys GROUP BY key HAVING count(*) > 1) "
            'QUALIFY row_number() OVER (PARTITION BY f."user", f.tid ORDER BY k.line_no, k.event_index) > 1'
        )
        con.unregister("fill_files")
        for (day,) in con.execute("SELECT DISTINCT date FROM fill_dupes").fetchall():
            self._drop_rows(day)
        return con.execute(
            "SELECT line_no, event_index, reason, raw FROM fill_dupes ORDER BY line_no, event_index"
        ).fetch_arrow_table()

    def _drop_rows(self, day: dt.date) -> None:
        path = self.files[day][0]
        kept = path.with_suffix(".kept.parquet")
        self.con.execute(
            f"COPY (SELECT * EXCLUDE (file_row_number) FROM read_parquet('{_sql_str(path)}', file_row_number = true) "
            "WHERE file_row_number NOT IN (SELECT seq FROM fill_dupes WHERE date = ?)) "
            f"TO '{_sql_str(kept)}' (FORMAT parquet, COMPRESSION zstd)",
            [day],
        )
        kept.replace(path)
        self.rows[day] -= self.con.execute("SELECT count(*) FROM fill_dupes WHERE date = ?", [day]).fetchone()[0]

    def publish(self, lake: Lake, key: str) -> int:
        """Move each non-empty day file into the lake atomically; drop this input's files of other days."""
        published = set()
        for day, (staged, _) in sorted(self.files.items()):
            if self.rows[day]:
                path = lake.part_path(FILLS.name, VENUE, day, key)
                with atomic_path(path) as tmp:
                    staged.replace(tmp)
                published.add(path)
        lake.drop_stale_parts(FILLS.name, VENUE, key, keep=published)
        lake.commit_source(FILLS.name, VENUE, key, published, {d.isoformat(): n for d, n in self.rows.items() if n})
        return sum(self.rows.values())


def _split_days(fills: pa.Table) -> list[tuple[dt.date, pa.Table]]:
    """Rows by UTC day, each in input order (an hourly file is nearly always one day)."""
    if not fills.num_rows:
        return []
    dates = fills["date"]
    bounds = pc.min_max(dates)
    if bounds["min"] == bounds["max"]:
        return [(bounds["min"].as_py(), fills)]
    days = sorted(pc.unique(dates).to_pylist())
    return [(d, fills.filter(pc.equal(dates, pa.scalar(d, pa.date32())))) for d in days]


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def _json_lines(
    lake: Lake, path: Path, report: IngestReport, bad: list, allow_partial: bool
) -> Iterable[tuple[int, object]]:
    """The file's parsed lines; at the end of the stream the file is refused when truncated (unless
    ``allow_partial``: the cut line is then one reject) or kept in the raw layer (:func:`keep_file`)."""
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
    keep_file(lake, report, path, state, allow_partial=allow_partial)
    if state.tail_error:
        report.records_read += 1
        report.notes.append(state.tail_error)
        bad.append((state.tail_line or 0, None, state.tail_error, state.tail_text))


def ingest_snapshot(
    lake: Lake, path: Path, *, progress: Progress | None = None, allow_partial: bool = False
) -> IngestReport:
    """Ingest a position snapshot file: JSON lines ``{"time", "user", "state": clearinghouseState}``."""
    key = source_key(SNAPSHOT, path.parent.name, path.name)
    report, ingested_at = start_file(lake, path, venue=VENUE, source=SNAPSHOT, key=key)
    accounts, positions, bad = [], [], []
    # a truncated file raises at the end of the stream, before anything is written
    for line_no, obj in _json_lines(lake, path, report, bad, allow_partial):
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
    report.records_written = write_rows(lake, report, ACCOUNT_SNAPSHOTS, acc)
    write_rows(lake, report, POSITION_SNAPSHOTS, pos)
    return finish(lake, report, bad, ACCOUNT_SNAPSHOTS, ingested_at)


def ingest_asset_ctxs(
    lake: Lake, path: Path, *, progress: Progress | None = None, allow_partial: bool = False
) -> IngestReport:
    """Ingest an asset-context file: JSON lines ``{"time", "ctxs": metaAndAssetCtxs response}``."""
    key = source_key(ASSET_CTX_FILE, path.parent.name, path.name)
    report, ingested_at = start_file(lake, path, venue=VENUE, source=ASSET_CTX_FILE, key=key)
    rows, bad = [], []
    # a truncated file raises at the end of the stream, before anything is written
    for line_no, obj in _json_lines(lake, path, report, bad, allow_partial):
        try:
            rows.extend(hl.asset_ctx_rows(obj))
        except hl.RecordError as exc:
            bad.append((line_no, None, str(exc), orjson.dumps(obj).decode()))
            continue
        report.records_written += 1
        if progress:
            progress(1)
    table = hl.rows_to_arrow(ASSET_CTXS, rows, venue=VENUE, source=ASSET_CTX_FILE, source_key=key)
    write_rows(lake, report, ASSET_CTXS, table)
    return finish(lake, report, bad, ASSET_CTXS, ingested_at)
