"""Meta tables: the reconciliation ledger of ingest runs (``meta/<table>/venue=<v>/part-<key>.parquet``)."""

from __future__ import annotations

from forensics.tables.model import Column, Dedup, Table

C = Column

INGEST_RUNS = Table(
    "ingest_runs",
    "One row per ingested input: what was read, written and quarantined (the reconciliation ledger).",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C("source", "VARCHAR", "Input kind.", False),
        C("source_key", "VARCHAR", "Stable id of the input.", False),
        C("source_name", "VARCHAR", "Input name.", False),
        C("sha256", "VARCHAR", "SHA-256 of the input bytes as received.", False),
        C("bytes", "BIGINT", "Input size in bytes as received.", False),
        C("records_read", "BIGINT", "Records read (fills, positions, contexts... according to the source).", False),
        C("rows_written", "BIGINT", "Rows written to normalized tables.", False),
        C("rows_quarantined", "BIGINT", "Records sent to quarantine.", False),
        C("tables_json", "VARCHAR", "Per-table written row counts, JSON.", False),
        C("ingested_at", "TIMESTAMP", "When the ingest ran (UTC).", False),
        C("code_version", "VARCHAR", "liquidation-forensics version (and git commit when known)."),
    ),
    key=("venue", "source_key"),
    layer="meta",
    dedup=Dedup((), "one row per input key: a re-ingest of the input replaces it"),
)

TABLES: dict[str, Table] = {INGEST_RUNS.name: INGEST_RUNS}
