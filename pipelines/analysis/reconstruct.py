"""Position reconstruction and ADL pools over what the lake holds; results written to ``analytics/``.

Reads the normalized ``fills`` (through ``Lake.read``, one row per key by each table's dedup rule, as the
catalog views), ``position_snapshots``, ``account_snapshots`` and
``asset_ctxs`` of one venue, runs :func:`forensics.reconstruct.build_steps_and_pools`, and writes
``adl_steps`` / ``adl_pools`` with :meth:`Lake.replace_source` (one file per venue and window, so a
re-run of the same window replaces its output).
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import polars as pl

from forensics.formats.hyperliquid.constants import LIQUIDATOR_VAULT as HYPERLIQUID_VAULT
from forensics.reconstruct import build_state, build_steps_and_pools
from forensics.reconstruct.cash import CashSettings, cash_events
from forensics.reconstruct.liquidation_check import check_liquidations, error_summary
from forensics.tables import ADL_POOLS, ADL_STEPS, ALL_TABLES, LIQUIDATION_CHECKS
from pipelines.lake import Lake, Window, lineage, source_key

VAULTS = {"hyperliquid": HYPERLIQUID_VAULT}


#: bulky fill columns no analysis reads (identifiers and lineage); left in the lake, not loaded
UNUSED_FILL_COLUMNS = (
    "hash",
    "oid",
    "cloid",
    "local_time",
    "twap_id",
    "fee_token",
    "builder_fee",
    "crossed",
    "time",
    "date",
    "source",
    "source_key",
    "fill_id",
)


# the transaction hash names an ADL action (its winner legs and the liquidated account's counter legs);
# other fills never need it
ADL_HASH = 'CASE WHEN is_adl OR "user" = liquidated_user THEN "hash" END AS "hash"'


def _read(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    table: str,
    venue: str,
    where: str = "",
    params: dict | None = None,
    dedupe: str | None = None,
    exclude: tuple[str, ...] = (),
    extra: str = "",
) -> pl.DataFrame | None:
    """The rows of ``table`` through :meth:`Lake.read`, which applies the table's one dedup rule (``dedupe``
    is kept for the callers; the rule is the table's). ``where`` may only bound ``time_ms`` by ``$until``."""
    if where not in ("", "AND time_ms <= $until"):
        raise ValueError(f"unsupported filter {where!r}: use Lake.read with a Window")
    window = Window(until_ms=(params or {})["until"]) if where else None
    return lake.read(table, venue, window, exclude=exclude, extra=(extra,) if extra else (), con=con)


def _key(table: str) -> str:
    """The table's key columns as a PARTITION BY list (the catalog views de-duplicate the same way)."""
    return ", ".join(f'"{c}"' for c in ALL_TABLES[table].key)


def load_inputs(lake: Lake, venue: str = "hyperliquid", until_ms: int | None = None) -> dict[str, pl.DataFrame | None]:
    """The normalized inputs of one venue (fills up to ``until_ms`` without ``UNUSED_FILL_COLUMNS``,
    every snapshot and context)."""
    con = duckdb.connect()
    try:
        where, params = "", {}
        if until_ms is not None:
            where, params = "AND time_ms <= $until", {"until": int(until_ms)}
        return {
            "fills": _read(
                con,
                lake,
                "fills",
                venue,
                where,
                params,
                dedupe=_key("fills"),
                exclude=UNUSED_FILL_COLUMNS,
                extra=ADL_HASH,
            ),
            # the same record can arrive twice (node snapshot and an API pull of the same state)
            "positions": _read(con, lake, "position_snapshots", venue, dedupe=_key("position_snapshots")),
            "accounts": _read(con, lake, "account_snapshots", venue, dedupe=_key("account_snapshots")),
            "asset_ctxs": _read(con, lake, "asset_ctxs", venue, where, params, dedupe=_key("asset_ctxs")),
            # cash between fills (misc_events_by_block, info-API ledger) and the liquidation summaries to check
            "ledger": _read(con, lake, "ledger_events", venue, where, params, dedupe=_key("ledger_events")),
            "funding": _read(con, lake, "funding_payments", venue, where, params, dedupe=_key("funding_payments")),
            "liquidation_events": _read(
                con, lake, "liquidation_events", venue, where, params, dedupe=_key("liquidation_events")
            ),
        }
    finally:
        con.close()


def archive_mark_age(asset_ctxs: pl.DataFrame | None) -> int | None:
    """Per-minute archive contexts: inside a minute a later trade beats an older mark observation (0 ms);
    per-second contexts (JSONL) keep the venue's marks (None)."""
    if asset_ctxs is None or asset_ctxs.height == 0 or "source" not in asset_ctxs.columns:
        return None
    return 0 if (asset_ctxs["source"] == "asset_ctxs_archive").any() else None


def run(
    lake: Lake,
    *,
    venue: str = "hyperliquid",
    since_ms: int | None = None,
    until_ms: int | None = None,
    gap_seconds: float = 5.0,
    inputs: dict | None = None,
    cash_settings: CashSettings | None = None,
) -> dict:
    """Reconstruct ADL steps and pools for ``venue`` and write them; returns counts and timings.

    Replay always starts at the snapshot (fills before ``since_ms`` still move positions); only steps
    with ``since_ms <= time_ms <= until_ms`` are written. ``inputs``: what :func:`load_inputs` returned,
    when the caller already has it.
    """
    t0 = time.perf_counter()
    versions = lineage.input_fingerprint(lake, venue)  # what the result is computed from, taken before reading
    inputs = inputs if inputs is not None else load_inputs(lake, venue, until_ms)
    if inputs["fills"] is None or inputs["fills"].height == 0:
        raise FileNotFoundError(f"no fills for venue {venue!r} in {lake.root}; ingest node fills first")
    t_read = time.perf_counter() - t0
    settings = cash_settings or CashSettings()
    cash, cash_counts = cash_events(inputs.get("ledger"), inputs.get("funding"), settings)
    mark_age = archive_mark_age(inputs["asset_ctxs"])
    steps, pools = build_steps_and_pools(
        inputs["fills"],
        inputs["positions"],
        inputs["accounts"],
        inputs["asset_ctxs"],
        vault=VAULTS.get(venue),
        gap_seconds=gap_seconds,
        venue=venue,
        cash=cash,
        misc_before_fills=settings.misc_before_fills,
        max_mark_age_ms=mark_age,
    )
    liquidation_check = liquidation_errors(inputs, cash, settings, mark_age, lake=lake, venue=venue)
    if since_ms is not None:
        steps = steps.filter(pl.col("time_ms") >= since_ms)
        pools = pools.join(steps.select("step_id"), on="step_id", how="semi")
    t_build = time.perf_counter() - t0 - t_read
    # one current result per venue: a new window replaces the previous one (no overlapping duplicates)
    key = source_key("adl_reconstruct", venue)
    lake.replace_source(ADL_STEPS, venue, key, steps.to_arrow())
    lake.replace_source(ADL_POOLS, venue, key, pools.to_arrow())
    lineage.record_inputs(lake, venue, lineage.RECONSTRUCTION, versions)
    return {
        "venue": venue,
        "source_key": key,
        "steps": steps.height,
        "pool_rows": pools.height,
        "waves": steps["wave_id"].n_unique() if steps.height else 0,
        "selected": int(pools["selected"].sum()) if pools.height else 0,
        "fills": inputs["fills"].height,
        "snapshot_positions": 0 if inputs["positions"] is None else inputs["positions"].height,
        "mark_sources": dict(pools.group_by("mark_source").len().iter_rows()) if pools.height else {},
        "cash_events": cash_counts,
        "liquidation_check": liquidation_check,
        "seconds": {
            "read": round(t_read, 3),
            "reconstruct": round(t_build, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
        "paths": [str(Path(lake.part_path(t.name, venue, None, key))) for t in (ADL_STEPS, ADL_POOLS)],
    }


def liquidation_errors(
    inputs: dict,
    cash: pl.DataFrame,
    settings: CashSettings,
    mark_age: int | None,
    *,
    lake: Lake | None = None,
    venue: str = "hyperliquid",
) -> dict:
    """The replay's account value at each liquidation summary vs the reported one (a check, never an override);
    with ``lake``, the per-event rows are written to ``liquidation_checks``."""
    liq = inputs.get("liquidation_events")
    if liq is None or liq.height == 0:
        return {"events": 0}
    ctxs = inputs["asset_ctxs"]
    if ctxs is not None:
        ctxs = ctxs.with_columns(pl.col("coin").cast(pl.Categorical))
    state = build_state(
        inputs["fills"], inputs["positions"], inputs["accounts"], cash, misc_before_fills=settings.misc_before_fills
    )
    check = check_liquidations(state, liq, ctxs, before_fills=settings.misc_before_fills, max_mark_age_ms=mark_age)
    if lake is not None:
        rows = check.with_columns(pl.lit(venue).alias("venue")).select(LIQUIDATION_CHECKS.column_names)
        lake.replace_source(LIQUIDATION_CHECKS, venue, source_key("liquidation_check", venue), rows.to_arrow())
    out = {"all": error_summary(check)}
    for kind in ("Cross", "Isolated"):
        out[kind.lower()] = error_summary(check.filter(pl.col("leverage_type") == kind))
    return out
