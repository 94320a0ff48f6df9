"""Great Expectations suites run as Dagster asset checks on the rows an asset just wrote."""

from collections.abc import Iterable

import dagster as dg
import polars as pl

from forensics.tables import Table
from pipelines import quality
from pipelines.ingest.report import IngestReport
from pipelines.lake import Lake


def quality_specs(asset: str, tables: Iterable[Table]) -> list[dg.AssetCheckSpec]:
    specs = []
    for t in tables:
        specs.append(
            dg.AssetCheckSpec(
                f"{t.name}_schema_and_keys",
                asset=asset,
                blocking=True,
                description=f"{t.name}: exact columns, key columns not null, key unique (GX, blocking)",
            )
        )
        specs.append(
            dg.AssetCheckSpec(
                f"{t.name}_value_ranges",
                asset=asset,
                description=f"{t.name}: value ranges and enumerations (GX, warning)",
            )
        )
    return specs


def read_source_rows(lake: Lake, table: Table, keys: Iterable[str]) -> pl.DataFrame:
    """The rows a set of inputs wrote to ``table`` (every day of each input)."""
    # every row as written (dedup=False): the checks test what these inputs wrote, repeated keys included
    rows = lake.read(table, sources=keys, dedup=False)
    return rows if rows is not None else pl.DataFrame(pl.from_arrow(table.arrow_schema().empty_table()))


def quality_results(asset: str, table: Table, df: pl.DataFrame) -> list[dg.AssetCheckResult]:
    results = []
    for severity, name, level in (
        (quality.BLOCKING, f"{table.name}_schema_and_keys", dg.AssetCheckSeverity.ERROR),
        (quality.WARN, f"{table.name}_value_ranges", dg.AssetCheckSeverity.WARN),
    ):
        outcome = quality.validate(table, df, severity)
        results.append(
            dg.AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=outcome.success,
                severity=level,
                description=outcome.description,
                metadata={"rows": outcome.rows, "failures": dg.MetadataValue.json(outcome.failures)},
            )
        )
    return results


def ingest_metadata(reports: list[IngestReport]) -> dict[str, dg.MetadataValue]:
    """Dagster metadata of a set of ingests: per-input summaries, reconciliation counts, rows per table."""
    rows: dict[str, int] = {}
    for r in reports:
        for table, n in r.rows_by_table.items():
            rows[table] = rows.get(table, 0) + n
    return {
        "inputs": dg.MetadataValue.md("\n".join(f"- {r.summary()}" for r in reports) or "no inputs"),
        "records_read": dg.MetadataValue.int(sum(r.records_read for r in reports)),
        "records_written": dg.MetadataValue.int(sum(r.records_written for r in reports)),
        "records_quarantined": dg.MetadataValue.int(sum(r.quarantined for r in reports)),
        "rows_by_table": dg.MetadataValue.json(rows),
        "notes": dg.MetadataValue.json([n for r in reports for n in r.notes]),
    }
