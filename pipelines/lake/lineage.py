"""Which input versions an analysis was computed from, and whether the lake still holds exactly those.

An input version is one input's rows in one normalized table: ``(table, source_key, rows, digest)``, the
digest being the SHA-256 of that input's part files. Re-ingesting an input with other content, adding an
input or removing one changes the fingerprint; re-ingesting the same bytes does not (parts are written
deterministically). An analysis calls :func:`record_inputs` with the fingerprint it read *before* reading;
:func:`freshness` compares every recorded analysis with the lake as it is now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from forensics.tables import ANALYSIS_INPUTS
from pipelines.lake.core import Lake, source_key

#: the analyses whose inputs are recorded: the audit (adl_steps, adl_rule_fits, exemption_flags) and the whole
#: pools table (adl_pools), both computed from the same normalized tables
AUDIT = "adl_audit"
POOLS = "adl_pools"
#: the normalized tables the ADL replay reads (pipelines.analysis.inputs.load_inputs)
RECONSTRUCTION_INPUTS = (
    "fills",
    "position_snapshots",
    "account_snapshots",
    "asset_ctxs",
    "ledger_events",
    "funding_payments",
    "liquidation_events",
)


@dataclass(frozen=True, order=True)
class InputVersion:
    table: str
    source_key: str
    rows: int
    digest: str


def input_fingerprint(
    lake: Lake, venue: str, tables: tuple[str, ...] = RECONSTRUCTION_INPUTS
) -> tuple[InputVersion, ...]:
    """Every input version of ``venue`` in ``tables``, sorted."""
    versions = []
    for table in tables:
        by_key: dict[str, list[Path]] = defaultdict(list)
        for part in lake.parts(table, venue):
            by_key[part.stem.removeprefix("part-")].append(part)
        for key, parts in by_key.items():
            h = hashlib.sha256()
            rows = 0
            for part in sorted(parts):
                rows += pq.read_metadata(part).num_rows
                with open(part, "rb") as fh:
                    h.update(hashlib.file_digest(fh, "sha256").digest())
            versions.append(InputVersion(table, key, rows, h.hexdigest()))
    return tuple(sorted(versions))


def record_inputs(lake: Lake, venue: str, analysis: str, versions: tuple[InputVersion, ...]) -> None:
    """Write the input versions ``analysis`` was computed from (replacing its previous record)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        {
            "venue": venue,
            "analysis": analysis,
            "input_table": v.table,
            "input_key": v.source_key,
            "rows": v.rows,
            "digest": v.digest,
            "computed_at": now,
        }
        for v in versions
    ]
    data = pa.Table.from_pylist(rows, schema=ANALYSIS_INPUTS.arrow_schema())
    lake.replace_source(ANALYSIS_INPUTS, venue, source_key("analysis_inputs", venue, analysis), data)


@dataclass(frozen=True)
class Freshness:
    """Whether an analysis still matches the lake's inputs; ``changes`` says per table what moved."""

    venue: str
    analysis: str
    computed_at: dt.datetime
    changes: tuple[str, ...]

    @property
    def stale(self) -> bool:
        return bool(self.changes)

    def describe(self) -> str:
        when = self.computed_at.strftime("%Y-%m-%d %H:%M:%S")
        if not self.stale:
            return f"{self.venue} {self.analysis}: current (computed {when} UTC)"
        return (
            f"{self.venue} {self.analysis}: STALE, computed {when} UTC from other inputs than the lake holds now "
            f"({'; '.join(self.changes)}): rerun liqf analyze --venue {self.venue}"
        )


def compare(recorded: tuple[InputVersion, ...], current: tuple[InputVersion, ...]) -> tuple[str, ...]:
    """Per table, how ``current`` differs from ``recorded`` (inputs added, removed, changed)."""
    old = {(v.table, v.source_key): v for v in recorded}
    new = {(v.table, v.source_key): v for v in current}
    out = []
    for table in sorted({t for t, _ in old} | {t for t, _ in new}):
        added = sum(1 for k in new if k[0] == table and k not in old)
        removed = sum(1 for k in old if k[0] == table and k not in new)
        changed = [(old[k], new[k]) for k in old if k[0] == table and k in new and old[k] != new[k]]
        bits = []
        if changed:
            rows = ", ".join(f"{a.rows:,} -> {b.rows:,} rows" for a, b in changed[:2])
            bits.append(f"{len(changed)} input(s) changed ({rows})")
        if added:
            bits.append(f"{added} input(s) added")
        if removed:
            bits.append(f"{removed} input(s) removed")
        if bits:
            out.append(f"{table}: {', '.join(bits)}")
    return tuple(out)


def freshness(lake: Lake, venue: str | None = None) -> list[Freshness]:
    """Every recorded analysis (of ``venue``, or all) against the lake's current inputs."""
    stored = lake.read(ANALYSIS_INPUTS, venue)
    if stored is None:
        return []
    recorded: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in stored.iter_rows(named=True):
        recorded[(row["venue"], row["analysis"])].append(row)
    out = []
    for (v, analysis), rows in sorted(recorded.items()):
        tables = tuple(sorted({r["input_table"] for r in rows} | set(RECONSTRUCTION_INPUTS)))
        was = tuple(sorted(InputVersion(r["input_table"], r["input_key"], r["rows"], r["digest"]) for r in rows))
        out.append(
            Freshness(
                v, analysis, max(r["computed_at"] for r in rows), compare(was, input_fingerprint(lake, v, tables))
            )
        )
    return out
