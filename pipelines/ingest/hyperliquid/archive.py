"""Ingest the clearinghouse snapshot export and the archive's per-minute ``asset_ctxs`` CSV.

Both are streamed (the export's arrays item by item, the CSV line by line); bad records are quarantined
with the reason, and records read = written + quarantined for every input file.
"""

from __future__ import annotations

import collections
import datetime as dt
from pathlib import Path

import orjson
import pyarrow as pa

from forensics.formats import hyperliquid as hl
from forensics.formats.hyperliquid import asset_ctxs_archive as archive
from forensics.formats.hyperliquid import snapshot_export as export
from forensics.tables import ACCOUNT_SNAPSHOTS, ASSET_CTXS, POSITION_SNAPSHOTS
from pipelines.ingest.common import finish, keep_file, start_file, write_rows
from pipelines.ingest.report import IngestReport
from pipelines.ingest.safety import refuse_cut
from pipelines.ingest.streams import StreamState, decoded_chunks, iter_line_batches
from pipelines.lake import Lake, source_key

VENUE = hl.VENUE
SNAPSHOT_EXPORT = "clearinghouse_export"
ASSET_CTXS_ARCHIVE = "asset_ctxs_archive"
_RAW = 8192


def _start(lake: Lake, path: Path, source: str) -> tuple[IngestReport, dt.datetime]:
    return start_file(lake, path, venue=VENUE, source=source, key=source_key(source, path.parent.name, path.name))


def _items(
    lake: Lake, path: Path, report: IngestReport, bad: list, allow_partial: bool
) -> collections.abc.Iterator[tuple[int, object]]:
    """Array items with 1-based numbers. A file cut short (its lz4 frame, or its array before it closes) is
    refused at the end of the stream unless ``allow_partial`` (its cut item is then one reject); a corrupt item
    ends the stream as one reject. A file read to its end is kept in the raw layer (:func:`keep_file`)."""
    state = StreamState()
    try:
        for index, item, error in export.iter_array_items(decoded_chunks(path, state)):
            report.records_read += 1
            if error:
                reason = state.tail_error or error
                if state.tail_error or export.is_truncation(error):
                    refuse_cut(report.source_name, reason, allow_partial)
                report.notes.append(reason)
                bad.append((index + 1, None, reason, ""))
                state.tail_error = None  # said once, as this item's reason
                break
            yield index + 1, item
    except export.ExportError as exc:
        report.records_read += 1
        bad.append((0, None, str(exc), ""))
    keep_file(lake, report, path, state, allow_partial=allow_partial)
    if state.tail_error:
        report.notes.append(state.tail_error)


def ingest_snapshot_export(
    lake: Lake, files: dict[str, Path], *, scope: str = "total", progress=None, allow_partial: bool = False
) -> list[IngestReport]:
    """Ingest one export (``files``: kind -> path, kinds ``account_values``, ``perp_positions``,
    ``spot_balances``). Positions first, so account rows can count them (and, ``scope="cross"``, add the
    isolated equity). Records: one per position (perp file), per account (account file), per item (spot).
    A file cut short is refused (:class:`IncompleteInput`) before anything of it is written unless
    ``allow_partial``; the export's files before it are kept."""
    reports = []
    per_user: collections.Counter[str] = collections.Counter()
    iso_equity: dict[str, object] = collections.defaultdict(int)
    if "perp_positions" in files:
        path = files["perp_positions"]
        report, at = _start(lake, path, SNAPSHOT_EXPORT)
        _, time_ms = export.time_from_name(path.name)
        rows, bad = [], []
        for n, item in _items(lake, path, report, bad, allow_partial):
            report.records_read -= 1  # the market object is a container; its positions are the records
            try:
                _, got, rejected = export.market_rows(item, time_ms)
            except hl.RecordError as exc:
                count = (
                    len(item.get("positions", []))
                    if isinstance(item, dict) and isinstance(item.get("positions"), list)
                    else 1
                )
                report.records_read += max(count, 1)
                bad.extend([(n, None, str(exc), orjson.dumps(item).decode()[:_RAW])] * max(count, 1))
                continue
            report.records_read += len(got) + len(rejected)
            rows.extend(got)
            bad.extend((n, k, reason, orjson.dumps(raw, default=str).decode()[:_RAW]) for k, reason, raw in rejected)
            if progress:
                progress(len(got))
        for r in rows:
            per_user[r["user"]] += 1
            if r["leverage_type"] == "isolated":
                iso_equity[r["user"]] += r["margin_used"]
        _finish(lake, report, POSITION_SNAPSHOTS, rows, bad, at)
        reports.append(report)
    if "account_values" in files:
        path = files["account_values"]
        report, at = _start(lake, path, SNAPSHOT_EXPORT)
        _, time_ms = export.time_from_name(path.name)
        rows, bad = [], []
        for n, item in _items(lake, path, report, bad, allow_partial):
            try:
                if time_ms is None:
                    raise hl.RecordError("no snapshot time: the file name lacks _<block>_<ms>.json")
                row = export.account_row(item, time_ms, scope=scope)
            except hl.RecordError as exc:
                bad.append((n, None, str(exc), orjson.dumps(item, default=str).decode()[:_RAW]))
                continue
            row["positions"] = per_user.get(row["user"], 0)
            if scope == "cross":
                row["account_value"] = hl.dec(
                    str(row["account_value"] + iso_equity.get(row["user"], 0)), "account_value"
                )
            rows.append(row)
        _finish(lake, report, ACCOUNT_SNAPSHOTS, rows, bad, at)
        reports.append(report)
    if "spot_balances" in files:
        # spot balances never move perp cash; their schema is unconfirmed, so they are counted, not stored
        path = files["spot_balances"]
        report, at = _start(lake, path, SNAPSHOT_EXPORT)
        bad = []
        for _ in _items(lake, path, report, bad, allow_partial):
            report.records_written += 1
        report.notes.append("spot balances read and counted; not used (no perp cash effect)")
        finish(lake, report, bad, ACCOUNT_SNAPSHOTS, at)
        reports.append(report)
    return reports


def _finish(lake: Lake, report: IngestReport, table, rows: list, bad: list, at: dt.datetime) -> None:
    data = hl.rows_to_arrow(table, rows, venue=VENUE, source=SNAPSHOT_EXPORT, source_key=report.source_key)
    report.records_written = write_rows(lake, report, table, data)
    finish(lake, report, bad, table, at)


def ingest_asset_ctxs_csv(lake: Lake, path: Path, *, progress=None, allow_partial: bool = False) -> IngestReport:
    """Ingest one archive ``asset_ctxs`` CSV (``.csv`` or ``.csv.lz4``): one row per (minute, coin)."""
    report, at = _start(lake, path, ASSET_CTXS_ARCHIVE)
    names: list[str] | None = None
    parts, bad = [], []
    state = StreamState()
    for batch in iter_line_batches(path, state, batch_bytes=8 << 20):
        bad.extend(batch.bad)
        report.records_read += len(batch.bad)
        rows = []
        for line_no, text in zip(batch.lines.column("line_no").to_pylist(), batch.lines.column("line").to_pylist()):
            if names is None:
                try:
                    names = archive.parse_header(text.lstrip("\ufeff"))
                    continue
                except (hl.RecordError, StopIteration, Exception) as exc:  # noqa: BLE001 - any header failure
                    report.records_read += 1
                    bad.append((line_no, None, f"not an asset_ctxs CSV header: {exc}", text[:_RAW]))
                    continue
            report.records_read += 1
            try:
                rows.append(archive.row(names, text))
            except hl.RecordError as exc:
                bad.append((line_no, None, str(exc), text[:_RAW]))
        if rows:
            parts.append(
                hl.rows_to_arrow(ASSET_CTXS, rows, venue=VENUE, source=ASSET_CTXS_ARCHIVE, source_key=report.source_key)
            )
        if progress:
            progress(len(rows))
    keep_file(lake, report, path, state, allow_partial=allow_partial)
    if state.tail_error:
        report.records_read += 1
        report.notes.append(state.tail_error)
        bad.append((state.tail_line or 0, None, state.tail_error, state.tail_text))
    data = pa.concat_tables(parts) if parts else ASSET_CTXS.arrow_schema().empty_table()
    report.records_written = write_rows(lake, report, ASSET_CTXS, data)
    return finish(lake, report, bad, ASSET_CTXS, at)
