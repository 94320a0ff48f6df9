"""Great Expectations suites for the canonical tables.

GX 1.x validates pandas frames only (no polars, and its DuckDB path silently fails, see engineering
notes), so a table's rows are converted per partition. Decimals become floats for range checks.
Each suite has two severities: ``blocking`` (schema, keys not null, key uniqueness) and ``warn``
(value ranges and enumerations).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from forensics.formats.hyperliquid.constants import HYPERLIQUID_DIRS, LIQUIDATION_METHODS
from forensics.tables import Table

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

BLOCKING = "blocking"
WARN = "warn"


@dataclass
class SuiteResult:
    table: str
    severity: str
    success: bool
    rows: int
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def description(self) -> str:
        if self.success:
            return f"{self.table}: all {self.severity} expectations passed on {self.rows:,} rows"
        names = ", ".join(f["expectation"] for f in self.failures)
        return f"{self.table}: {len(self.failures)} {self.severity} expectation(s) failed: {names}"


def _expectations(table: Table, severity: str) -> list[Any]:
    # heavy (Great Expectations pulls pandas, Altair, ...): imported when a check runs, not with the code location
    import great_expectations as gx

    E = gx.expectations
    cols = set(table.column_names)
    if severity == BLOCKING:
        exps: list[Any] = [E.ExpectTableColumnsToMatchSet(column_set=table.column_names, exact_match=True)]
        exps += [E.ExpectColumnValuesToNotBeNull(column=c.name) for c in table.columns if not c.nullable]
        if table.key:
            exps.append(E.ExpectCompoundColumnsToBeUnique(column_list=list(table.key)))
        return exps
    exps = []
    for name in ("px", "sz", "mark_px"):
        if name in cols:
            exps.append(E.ExpectColumnValuesToBeBetween(column=name, min_value=0, strict_min=True))
    if "side" in cols and table.name == "fills":
        exps.append(E.ExpectColumnValuesToBeInSet(column="side", value_set=["A", "B"]))
        exps.append(E.ExpectColumnValuesToBeInSet(column="dir", value_set=sorted(HYPERLIQUID_DIRS)))
        exps.append(E.ExpectColumnValuesToBeInSet(column="liquidation_method", value_set=sorted(LIQUIDATION_METHODS)))
        # a fee beyond a billion USD means a unit or parsing error
        exps.append(E.ExpectColumnValuesToBeBetween(column="fee", min_value=-1e9, max_value=1e9))
    if "time_ms" in cols:
        # 2020-01-01 .. 2100-01-01: catches seconds/µs confusion
        exps.append(
            E.ExpectColumnValuesToBeBetween(column="time_ms", min_value=1_577_836_800_000, max_value=4_102_444_800_000)
        )
    if "leverage" in cols:
        exps.append(E.ExpectColumnValuesToBeBetween(column="leverage", min_value=1, max_value=200))
    return exps


@functools.cache
def _context():
    # heavy (Great Expectations pulls pandas, Altair, ...): imported when a check runs, not with the code location
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch_def = (
        ctx.data_sources.add_pandas("lake").add_dataframe_asset("partition").add_batch_definition_whole_dataframe("all")
    )
    return ctx, batch_def


def _to_pandas(df: pl.DataFrame):
    decimals = [c for c, t in df.schema.items() if isinstance(t, pl.Decimal)]
    return df.with_columns([pl.col(c).cast(pl.Float64) for c in decimals]).to_pandas()


def validate(table: Table, df: pl.DataFrame, severity: str) -> SuiteResult:
    """Run one severity's expectations on ``df``. GX errors (empty results) count as failures."""
    # heavy (Great Expectations pulls pandas, Altair, ...): imported when a check runs, not with the code location
    import great_expectations as gx

    _, batch_def = _context()
    suite = gx.ExpectationSuite(name=f"{table.name}_{severity}", expectations=_expectations(table, severity))
    batch = batch_def.get_batch(batch_parameters={"dataframe": _to_pandas(df)})
    outcome = batch.validate(suite)
    failures = []
    for r in outcome.results:
        raised = (r.exception_info or {}).get("raised_exception", False)
        if not r.success or raised:
            failures.append(
                {
                    "expectation": r.expectation_config.type,
                    "column": r.expectation_config.kwargs.get("column")
                    or r.expectation_config.kwargs.get("column_list"),
                    "unexpected_count": (r.result or {}).get("unexpected_count"),
                    "error": "GX raised an exception" if raised else None,
                }
            )
    return SuiteResult(table.name, severity, not failures, df.height, failures)
