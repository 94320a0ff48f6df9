"""Ingest ``misc_events_by_block`` hour files into ``funding_payments``, ``ledger_events`` and ``liquidation_events``.

Streamed line by line (lz4 or plain); every record is a row or a quarantine entry with its reason, and
records read = written + quarantined. Rows are converted to Arrow per batch of lines, so memory follows
the rows kept, not Python objects. Re-ingesting a file replaces exactly its rows (files keyed by the input).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.formats import hyperliquid as hl
from forensics.formats.hyperliquid import misc_events
from forensics.tables import FUNDING_PAYMENTS, LEDGER_EVENTS, LIQUIDATION_EVENTS
from pipelines.ingest.common import finish, keep_file, start_file, write_rows
from pipelines.ingest.report import IngestReport
from pipelines.ingest.streams import StreamState, iter_line_batches
from pipelines.lake import Lake, source_key

VENUE = hl.VENUE
MISC_EVENTS = "misc_events_by_block"


def ingest_misc_events(lake: Lake, path: Path, *, progress=None, allow_partial: bool = False) -> IngestReport:
    """Ingest one ``misc_events_by_block`` file (a truncated one only with ``allow_partial``)."""
    key = source_key(MISC_EVENTS, path.parent.name, path.name)
    report, ingested_at = start_file(lake, path, venue=VENUE, source=MISC_EVENTS, key=key)
    lineage = {"venue": VENUE, "source": MISC_EVENTS, "source_key": key}
    parts: dict[str, list[pa.Table]] = {FUNDING_PAYMENTS.name: [], LEDGER_EVENTS.name: [], LIQUIDATION_EVENTS.name: []}
    rejects: list[tuple] = []
    blocks: list[np.ndarray] = []
    state = StreamState()

    def flush(out: misc_events.MiscBatch) -> None:
        """Rows so far to Arrow (memory follows the rows kept, not Python objects)."""
        for table, rows in (
            (FUNDING_PAYMENTS, out.funding),
            (LEDGER_EVENTS, out.ledger),
            (LIQUIDATION_EVENTS, out.liquidations),
        ):
            if rows:
                parts[table.name].append(hl.rows_to_arrow(table, rows, **lineage))
                rows.clear()

    for batch in iter_line_batches(path, state, batch_bytes=8 << 20):
        rejects.extend(batch.bad)
        report.records_read += len(batch.bad)
        out = misc_events.MiscBatch()
        numbers, lines = batch.lines.column("line_no"), batch.lines.column("line")
        sizes = pc.binary_length(lines).to_numpy(zero_copy_only=False)
        for i, line_no in enumerate(numbers.to_pylist()):
            if sizes[i] > misc_events.LARGE_LINE:  # an hour's Funding block: streamed, never parsed whole
                misc_events.normalize_large_misc_line(line_no, lines[i].as_buffer().to_pybytes(), out, flush)
            else:
                misc_events.normalize_misc_line(line_no, lines[i].as_py(), out)
        report.records_read += out.records_read
        report.records_written += out.records_written
        rejects.extend(out.rejects)
        blocks.append(np.asarray(out.blocks, dtype=np.int64))
        flush(out)
        if progress:
            progress(out.records_read)
    keep_file(lake, report, path, state, allow_partial=allow_partial)
    if state.tail_error:
        report.records_read += 1
        report.notes.append(state.tail_error)
        rejects.append((state.tail_line or 0, None, state.tail_error, state.tail_text))
    for table in (FUNDING_PAYMENTS, LEDGER_EVENTS, LIQUIDATION_EVENTS):
        data = pa.concat_tables(parts[table.name]) if parts[table.name] else table.arrow_schema().empty_table()
        write_rows(lake, report, table, data)
    report.notes.extend(block_gaps(np.concatenate(blocks) if blocks else np.zeros(0, np.int64)))
    return finish(lake, report, rejects, LEDGER_EVENTS, ingested_at)


def block_gaps(blocks: np.ndarray, limit: int = 3) -> list[str]:
    """A note on jumps in block_number (the node writes every block, empty ones too: a jump is missing data)."""
    if len(blocks) < 2:
        return []
    b = np.sort(blocks)
    jumps = np.flatnonzero(np.diff(b) > 1)
    if not len(jumps):
        return []
    shown = ", ".join(f"{b[i] + 1}-{b[i + 1] - 1}" for i in jumps[:limit])
    missing = int((np.diff(b)[jumps] - 1).sum())
    return [
        f"{missing:,} block number(s) missing in {len(jumps)} gap(s): {shown}{' ...' if len(jumps) > limit else ''}"
    ]
