"""What every ingest shares: how a run starts (the input's identity, the refusal of a shortened copy) and when
its raw copy is kept (once read to its end, never for a truncated input), how it rejects records,
and how it ends (rows, quarantine, reconciliation, run record; in this order, so a crashed ingest leaves no
run record); the raw record of an API response; the two errors a run can raise.

Sources call these instead of writing the sequence by hand (the node files, misc events, the archive and
snapshot export, the info API, the CEX pulls, the stream captures).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from forensics.formats.records import RAW_TEXT_LIMIT
from forensics.tables import Table
from pipelines.ingest.report import (
    IngestReport,
    display_name,
    generated_mark,
    record_run,
    rejects_from_rows,
    write_quarantine,
)
from pipelines.ingest.safety import refuse_prefix, refuse_truncated
from pipelines.ingest.streams import StreamState
from pipelines.lake import Lake, sha256_file
from pipelines.venues.base import RawResponse

#: a rejected record: (1-based line or item number, index inside the line or None, reason, raw text)
Reject = tuple[int, int | None, str, str]


class UserFacingError(RuntimeError):
    """An input problem the user can fix (bad path, unknown format, bad window): one line and a hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class PullError(ValueError):
    """Bad pull arguments (venue, symbols, users file, window, credentials)."""


def now_utc() -> dt.datetime:
    """The ingest time as the lake stores it (naive UTC)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def raw_text(raw: Any) -> str:
    """A rejected record as text for ``quarantine.raw`` (JSON for parsed items), truncated to the column's limit."""
    return (raw if isinstance(raw, str) else orjson.dumps(raw, default=str).decode())[:RAW_TEXT_LIMIT]


def raw_response_record(resp: RawResponse) -> dict[str, Any]:
    """One API response for the raw layer: request metadata (params already redacted by the client), the
    attempts it took and the payload exactly as parsed."""
    return {
        "venue": resp.venue,
        "endpoint": resp.endpoint,
        "method": resp.method,
        "params": resp.params,
        "status": resp.status,
        "received_at": resp.received_at,
        "elapsed_ms": resp.elapsed_ms,
        "attempts": resp.attempts,
        "payload": resp.payload,
    }


@dataclass
class Rejects:
    """The records one dataset of a pull rejected; each counts as read."""

    report: IngestReport
    rejects: list[Reject] = field(default_factory=list)


def start_file(lake: Lake, path: Path, *, venue: str, source: str, key: str) -> tuple[IngestReport, dt.datetime]:
    """A file input's report (its name, content hash and size) and ingest time. A file whose bytes are a strict
    prefix of the one ingested before under ``key`` is refused here, before anything is written
    (:func:`~pipelines.ingest.safety.refuse_prefix`); the file is kept in the raw layer by :func:`keep_file`
    once it has been read to its end."""
    sha, size = sha256_file(path)
    report = IngestReport(venue, source, display_name(path), key, sha, size)
    report.origin, report.generated_by = str(path.resolve()), generated_mark(path)
    refuse_prefix(lake, venue, key, report.source_name, sha, size)
    return report, now_utc()


def keep_file(
    lake: Lake, report: IngestReport, path: Path, state: StreamState | None = None, *, allow_partial: bool = False
) -> None:
    """A file input read to its end: refused when its stream was truncated (``state.tail_error``) unless partial
    data was asked for, so nothing of it is written, not even its raw copy; otherwise kept as received,
    content-addressed, in the raw layer."""
    if state is not None:
        refuse_truncated(report.source_name, state, allow_partial)
    lake.store_raw_file(path, report.venue, report.source, report.sha256)


def write_rows(lake: Lake, report: IngestReport, table: Table, data: pa.Table, *, venue: str | None = None) -> int:
    """Replace the input's rows of ``table`` and count them on the report."""
    lake.replace_source(table, venue or report.venue, report.source_key, data)
    report.rows_by_table[table.name] = data.num_rows
    return data.num_rows


def finish(
    lake: Lake,
    report: IngestReport,
    rejects: list[Reject] | pa.Table,
    target: Table | str,
    ingested_at: dt.datetime,
    *,
    venue: str | None = None,
    key: str | None = None,
) -> IngestReport:
    """The last steps of every ingest: its quarantine rows (replacing an earlier run's), then reconciliation and
    the run record (last, so a crashed ingest leaves none)."""
    table = rejects if isinstance(rejects, pa.Table) else rejects_from_rows(rejects)
    write_quarantine(
        lake, report, table, target if isinstance(target, str) else target.name, ingested_at, venue=venue, key=key
    )
    record_run(lake, report, ingested_at)
    return report
