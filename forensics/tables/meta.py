"""Meta tables (``meta/<table>/venue=<v>/part-<key>.parquet``): the reconciliation ledger of ingest runs and the
input versions each analysis was computed from."""

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
        C("origin", "VARCHAR", "Where the input came from: the file's absolute path, or the API's base URL."),
        C(
            "generated_by",
            "VARCHAR",
            "What marks the input as generated data (a generator's scenario.json or a planted truth.json beside the "
            "file, or a server that declared itself the local sandbox); NULL when nothing does.",
        ),
    ),
    key=("venue", "source_key"),
    layer="meta",
    dedup=Dedup((), "one row per input key: a re-ingest of the input replaces it"),
)

ANALYSIS_INPUTS = Table(
    "analysis_inputs",
    "The input versions an analysis was computed from: one row per (analysis, normalized table, input) it read. "
    "Compared with the lake's current inputs (pipelines.lake.lineage) to say when analytics are stale.",
    (
        C("venue", "VARCHAR", "Venue id.", False),
        C(
            "analysis",
            "VARCHAR",
            "What was computed (e.g. 'adl_reconstruct': adl_steps, adl_pools and what derives from them).",
            False,
        ),
        C("input_table", "VARCHAR", "Normalized table read.", False),
        C("input_key", "VARCHAR", "source_key of the input whose rows were read.", False),
        C("rows", "BIGINT", "Rows that input held in the table.", False),
        C("digest", "VARCHAR", "SHA-256 of that input's part files' bytes (in path order).", False),
        C("computed_at", "TIMESTAMP", "When the analysis ran (UTC).", False),
    ),
    key=("venue", "analysis", "input_table", "input_key"),
    layer="meta",
    dedup=Dedup((), "one file per (venue, analysis): each run of the analysis replaces its record"),
)

TABLES: dict[str, Table] = {t.name: t for t in (INGEST_RUNS, ANALYSIS_INPUTS)}
