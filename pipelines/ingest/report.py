"""What one ingest did, and the reconciliation every ingest must pass."""

from __future__ import annotations

import collections
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from forensics.tables import INGEST_RUNS, QUARANTINE
from pipelines.crash_points import crash_point
from pipelines.lake import Lake
from pipelines.version import code_version


class ReconciliationError(RuntimeError):
    """records read != rows written + rows quarantined: a bug, never a data problem."""


@dataclass
class IngestReport:
    venue: str
    source: str
    source_name: str
    source_key: str
    sha256: str = ""
    bytes: int = 0
    records_read: int = 0
    records_written: int = 0
    quarantined: int = 0
    rows_by_table: dict[str, int] = field(default_factory=dict)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    notes: list[str] = field(default_factory=list)
    #: where the input came from (file path or API base URL) and, for generated data, what says so
    origin: str | None = None
    generated_by: str | None = None

    def reconcile(self) -> None:
        if self.records_read != self.records_written + self.quarantined:
            raise ReconciliationError(
                f"{self.source_name}: read {self.records_read} records but wrote {self.records_written} "
                f"and quarantined {self.quarantined}; please report this as a bug"
            )

    def summary(self) -> str:
        tables = ", ".join(f"{t} {n:,}" for t, n in sorted(self.rows_by_table.items()) if t != QUARANTINE.name)
        text = (
            f"{self.source_name}: read {self.records_read:,} = written {self.records_written:,} "
            f"+ quarantined {self.quarantined:,} ({tables or 'no rows'})"
        )
        if self.reasons:
            top = ", ".join(f"{r} x{n}" for r, n in self.reasons.most_common(3))
            text += f"; quarantine reasons: {top}"
        return text


def quarantine_table(rejects: pa.Table, report: IngestReport, target_table: str, ingested_at: dt.datetime) -> pa.Table:
    """Arrow rejects (``line_no, event_index, reason, raw``) -> rows of the quarantine table."""
    n = rejects.num_rows
    cols = {
        "venue": pa.array([report.venue] * n, pa.string()),
        "date": pa.array([ingested_at.date()] * n, pa.date32()),
        "target_table": pa.array([target_table] * n, pa.string()),
        "source": pa.array([report.source] * n, pa.string()),
        "source_key": pa.array([report.source_key] * n, pa.string()),
        "source_name": pa.array([report.source_name] * n, pa.string()),
        "line_number": rejects.column("line_no").cast(pa.int64()),
        "item_index": rejects.column("event_index").cast(pa.int32()),
        "reason": rejects.column("reason").cast(pa.string()),
        "raw": rejects.column("raw").cast(pa.string()),
        "ingested_at": pa.array([ingested_at] * n, pa.timestamp("us")),
    }
    return pa.table(cols, schema=QUARANTINE.arrow_schema())


def write_quarantine(
    lake: Lake,
    report: IngestReport,
    rejects: pa.Table,
    target_table: str,
    ingested_at: dt.datetime,
    *,
    venue: str | None = None,
    key: str | None = None,
) -> None:
    """Replace the input's quarantine rows (so a clean re-run removes an earlier bad version's) and count
    them on the report. ``venue``/``key`` default to the report's."""
    q = quarantine_table(rejects, report, target_table, ingested_at)
    lake.replace_source(QUARANTINE, venue or report.venue, key or report.source_key, q)
    report.quarantined = q.num_rows
    report.rows_by_table[QUARANTINE.name] = q.num_rows
    report.reasons.update(q.column("reason").to_pylist())


def rejects_from_rows(rows: list[tuple[int, int | None, str, str]]) -> pa.Table:
    line, item, reason, raw = zip(*rows) if rows else ((), (), (), ())
    return pa.table(
        {
            "line_no": pa.array(line, pa.int64()),
            "event_index": pa.array(item, pa.int32()),
            "reason": pa.array(reason, pa.string()),
            "raw": pa.array([r[:8192] for r in raw], pa.string()),
        }
    )


def record_run(lake: Lake, report: IngestReport, ingested_at: dt.datetime) -> None:
    """Reconcile, then write the run's ledger row (last, so a crashed ingest leaves no ledger row)."""
    report.reconcile()
    row = {
        "venue": report.venue,
        "source": report.source,
        "source_key": report.source_key,
        "source_name": report.source_name,
        "sha256": report.sha256,
        "bytes": report.bytes,
        "records_read": report.records_read,
        "rows_written": report.records_written,
        "rows_quarantined": report.quarantined,
        "tables_json": json.dumps(report.rows_by_table, sort_keys=True),
        "ingested_at": ingested_at,
        "code_version": code_version(),
        "origin": report.origin,
        "generated_by": report.generated_by,
    }
    table = pa.Table.from_pylist([row], schema=INGEST_RUNS.arrow_schema())
    lake.replace_source(INGEST_RUNS, report.venue, report.source_key, table)
    crash_point("input_recorded")


#: directories above an input file searched for a generator's marks (``hourly/YYYYMMDD/H.lz4`` sits four below its
#: scenario's root)
MARK_LEVELS = 5


def generated_mark(path: Path) -> str | None:
    """What marks a file input as generated data, from where it lies, never from its content: a scenario
    generator's ``scenario.json`` (``liqf simulate`` writes one at the scenario's root) or a planted ground truth
    ``truth.json`` (another generator's; only its presence is checked, it is never opened) in the file's
    directory or one of the :data:`MARK_LEVELS` above it. None when neither is there."""
    d = path.resolve().parent
    for _ in range(MARK_LEVELS):
        scenario = d / "scenario.json"
        if scenario.is_file():
            return f"a scenario generator's scenario.json in {d}{_scenario_terms(scenario)}"
        if (d / "truth.json").is_file():
            return f"a planted ground truth (truth.json) in {d}"
        if d.parent == d:
            break
        d = d.parent
    return None


def _scenario_terms(scenario: Path) -> str:
    """The generator's preset, scale and seed, when ``scenario.json`` states them (nothing it plants)."""
    try:
        with scenario.open("rb") as fh:
            doc = json.loads(fh.read(8 << 20))
    except (OSError, ValueError):
        return ""
    if not isinstance(doc, dict):
        return ""
    terms = [f"{k} {doc[k]}" for k in ("preset", "scale", "seed") if isinstance(doc.get(k), (str, int))]
    return f" ({', '.join(terms)})" if terms else ""


def sandbox_mark(base_url: str, sandbox: str | None) -> str | None:
    """What marks an API pull as generated data: the server declared itself the local sandbox."""
    return f"served by {sandbox} at {base_url}" if sandbox else None


def display_name(path: Path) -> str:
    """A short, printable input name: the last two path parts (e.g. ``20251010/21.lz4``)."""
    parts = path.parts[-2:]
    return "/".join(parts)
