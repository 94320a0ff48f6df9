"""The whole ADL pools as a table (``adl_steps`` / ``adl_pools``), for SQL users and the counterfactual
accounting; the audit never reads it (:mod:`pipelines.analysis.audit` computes pools on the fly). Also the
check of the replay against the venue's liquidation summaries (``liquidation_checks``).

Reads the venue's normalized tables (:func:`pipelines.analysis.inputs.load_inputs`), runs
:func:`forensics.reconstruct.build_steps_and_pools`, and writes with :meth:`Lake.replace_source` (one file per
venue, so a re-run of a window replaces its output).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from forensics.reconstruct import build_state, build_steps_and_pools
from forensics.reconstruct.cash import CashSettings, cash_events
from forensics.reconstruct.liquidation_check import check_liquidations, error_summary
from forensics.tables import ADL_POOLS, LIQUIDATION_CHECKS
from pipelines.analysis.inputs import VAULTS, VenueInputs, archive_mark_age, load_inputs
from pipelines.lake import Lake, lineage, source_key


def run(
    lake: Lake,
    *,
    venue: str = "hyperliquid",
    since_ms: int | None = None,
    until_ms: int | None = None,
    gap_seconds: float = 5.0,
    inputs: VenueInputs | None = None,
    cash_settings: CashSettings | None = None,
) -> dict[str, Any]:
    """Reconstruct ADL steps and their whole pools for ``venue`` and write them; returns counts and timings.

    Replay always starts at the snapshot (fills before ``since_ms`` still move positions); only steps
    with ``since_ms <= time_ms <= until_ms`` are written. ``inputs``: what :func:`load_inputs` returned,
    when the caller already has it.
    """
    t0 = time.perf_counter()
    versions = lineage.input_fingerprint(lake, venue)  # what the result is computed from, taken before reading
    inputs = inputs if inputs is not None else load_inputs(lake, venue, until_ms)
    if inputs.fills is None or inputs.fills.height == 0:
        raise FileNotFoundError(f"no fills for venue {venue!r} in {lake.root}; ingest node fills first")
    t_read = time.perf_counter() - t0
    settings = cash_settings or CashSettings()
    cash, cash_counts = cash_events(inputs.ledger, inputs.funding, settings)
    mark_age = archive_mark_age(inputs.asset_ctxs)
    steps, pools = build_steps_and_pools(
        inputs.fills,
        inputs.positions,
        inputs.accounts,
        inputs.asset_ctxs,
        vault=VAULTS.get(venue),
        gap_seconds=gap_seconds,
        venue=venue,
        cash=cash,
        misc_before_fills=settings.misc_before_fills,
        max_mark_age_ms=mark_age,
        window=(since_ms, until_ms),
    )
    liquidation_check = liquidation_errors(inputs, cash, settings, mark_age, lake=lake, venue=venue)
    t_build = time.perf_counter() - t0 - t_read
    # one current result per venue: a new window replaces the previous one (no overlapping duplicates); the
    # steps are the audit's table (pipelines.analysis.audit), the same rows
    key = source_key("adl_reconstruct", venue)
    lake.replace_source(ADL_POOLS, venue, key, pools.to_arrow())
    lineage.record_inputs(lake, venue, lineage.POOLS, versions)
    return {
        "venue": venue,
        "source_key": key,
        "steps": steps.height,
        "pool_rows": pools.height,
        "waves": steps["wave_id"].n_unique() if steps.height else 0,
        "selected": int(pools["selected"].sum()) if pools.height else 0,
        "fills": inputs.fills.height,
        "snapshot_positions": 0 if inputs.positions is None else inputs.positions.height,
        "mark_sources": dict(pools.group_by("mark_source").len().iter_rows()) if pools.height else {},
        "cash_events": cash_counts,
        "liquidation_check": liquidation_check,
        "seconds": {
            "read": round(t_read, 3),
            "reconstruct": round(t_build, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
        "paths": [str(Path(lake.part_path(ADL_POOLS.name, venue, None, key)))],
    }


def liquidation_errors(
    inputs: VenueInputs,
    cash: pl.DataFrame,
    settings: CashSettings,
    mark_age: int | None,
    *,
    lake: Lake | None = None,
    venue: str = "hyperliquid",
) -> dict[str, Any]:
    """The replay's account value at each liquidation summary vs the reported one (a check, never an override);
    with ``lake``, the per-event rows are written to ``liquidation_checks``."""
    liq = inputs.liquidation_events
    if liq is None or liq.height == 0:
        return {"events": 0}
    ctxs = inputs.asset_ctxs
    if ctxs is not None:
        ctxs = ctxs.with_columns(pl.col("coin").cast(pl.Categorical))
    state = build_state(
        inputs.fills, inputs.positions, inputs.accounts, cash, misc_before_fills=settings.misc_before_fills
    )
    check = check_liquidations(state, liq, ctxs, before_fills=settings.misc_before_fills, max_mark_age_ms=mark_age)
    if lake is not None:
        rows = check.with_columns(pl.lit(venue).alias("venue")).select(LIQUIDATION_CHECKS.column_names)
        lake.replace_source(LIQUIDATION_CHECKS, venue, source_key("liquidation_check", venue), rows.to_arrow())
    out = {"all": error_summary(check)}
    for kind in ("Cross", "Isolated"):
        out[kind.lower()] = error_summary(check.filter(pl.col("leverage_type") == kind))
    return out
