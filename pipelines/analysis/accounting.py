"""Haircut and overshoot accounting over what the lake holds; results written to ``analytics/``.

Reads the venue's fills, snapshots and contexts (``pipelines.analysis.inputs.load_inputs``),
reconstructs ADL steps and eligible pools (``forensics.reconstruct``), then computes per-wave
accounting, counterfactual policies, the cascade timeline and backstop coverage
(``forensics.accounting``), writes ``adl_waves``, ``adl_haircuts``, ``policy_counterfactuals``,
``cascade_timeline`` and ``backstop_coverage`` with :meth:`Lake.replace_source` (one file per venue and
window) and returns the JSON summary printed by ``liqf haircuts --json``.
"""

from __future__ import annotations

import time

import polars as pl

from forensics.accounting.core import HORIZONS_S, wave_accounting
from forensics.accounting.policies import candidates, capacity_frame, run_policies
from forensics.accounting.timing import backstop_coverage, cascade_timeline, timeline_rows
from forensics.reconstruct import audit_pass
from forensics.reconstruct.cash import cash_events
from forensics.tables.accounting import (
    ADL_HAIRCUTS,
    ADL_WAVES,
    BACKSTOP_COVERAGE,
    CASCADE_TIMELINE,
    POLICY_COUNTERFACTUALS,
)
from pipelines.analysis.inputs import VAULTS, archive_mark_age, load_inputs
from pipelines.lake import Lake, source_key


def _with_venue(df: pl.DataFrame, venue: str, table) -> pl.DataFrame:
    df = df.with_columns(pl.lit(venue).alias("venue"))
    for c in table.columns:
        if c.name not in df.columns:
            df = df.with_columns(pl.lit(None).alias(c.name))
    return df.select(table.column_names)


def _vault_equity(lake: Lake, venue: str) -> pl.DataFrame | None:
    return lake.read("vault_equity", venue)


def run(
    lake: Lake,
    *,
    venue: str = "hyperliquid",
    since_ms: int | None = None,
    until_ms: int | None = None,
    gap_seconds: float = 5.0,
    price: str = "last_trade",
    policies: bool = True,
    write: bool = True,
) -> dict:
    """Accounting for ``venue`` over ``[since_ms, until_ms]``; returns the ``liqf haircuts --json`` dict."""
    t0 = time.perf_counter()
    horizon_pad = int(max(HORIZONS_S) * 1000) + 1
    inputs = load_inputs(lake, venue, None if until_ms is None else until_ms + horizon_pad)
    fills = inputs.fills
    if fills is None or fills.height == 0:
        raise FileNotFoundError(f"no fills for venue {venue!r} in {lake.root}")
    vault = VAULTS.get(venue)
    wa = wave_accounting(fills, gap_seconds=gap_seconds, price=price, from_ms=since_ms, to_ms=until_ms)
    pol_rows, pol_tot = pl.DataFrame(), []
    if policies and wa.waves.height:
        # each position's row in the first action of each wave it is a candidate of: the pre-wave state
        passed = audit_pass(
            fills,
            inputs.positions,
            inputs.accounts,
            inputs.asset_ctxs,
            cash=cash_events(inputs.ledger, inputs.funding)[0],
            vault=vault,
            gap_seconds=gap_seconds,
            venue=venue,
            max_mark_age_ms=archive_mark_age(inputs.asset_ctxs),
            audit=False,
            keep_pools="first_per_wave",
            check_integrity=False,
        )
        if passed.pools is not None:
            cands = candidates(passed.pools, passed.steps, wa.waves)
            wa = wave_accounting(
                fills,
                gap_seconds=gap_seconds,
                price=price,
                from_ms=since_ms,
                to_ms=until_ms,
                capacity=capacity_frame(cands),
            )
            pol_rows, pol_tot = run_policies(wa, cands)
    tl = cascade_timeline(fills.filter(pl.col("time_ms") <= until_ms) if until_ms is not None else fills)
    tl_rows = timeline_rows(tl, venue, wa.waves)
    if since_ms is not None and tl_rows.height:
        tl_rows = tl_rows.filter(pl.col("time_ms") >= since_ms)
    cash0 = None
    if vault and inputs.accounts is not None and inputs.accounts.height:
        a = inputs.accounts.filter(pl.col("user") == vault)
        if a.height and (inputs.positions is None or inputs.positions.filter(pl.col("user") == vault).height == 0):
            cash0 = float(a.sort("time_ms")["account_value"].cast(pl.Float64)[-1])
    cov = (
        backstop_coverage(fills, vault, deficits=wa.waves, vault_equity=_vault_equity(lake, venue), vault_cash0=cash0)
        if vault
        else pl.DataFrame()
    )
    if cov.height:
        cov = cov.with_columns(pl.lit(vault).alias("vault"))
    key = source_key("adl_accounting", venue, since_ms, until_ms)
    if write:
        gs = pl.lit(float(gap_seconds)).alias("gap_seconds")
        for table, df in (
            (ADL_WAVES, wa.waves.with_columns(gs)),
            (ADL_HAIRCUTS, wa.haircuts),
            (POLICY_COUNTERFACTUALS, pol_rows),
            (CASCADE_TIMELINE, tl_rows),
            (BACKSTOP_COVERAGE, cov),
        ):
            if df.height:
                lake.replace_source(table, venue, key, _with_venue(df, venue, table).to_arrow())
    t = wa.totals
    return {
        "venue": venue,
        "gap_seconds": gap_seconds,
        "price": price,
        "source_key": key,
        "fills": fills.height,
        "waves": [
            {
                "wave": r["wave"],
                "start": r["start_ms"],
                "end": r["end_ms"],
                "adl_legs": r["adl_legs"],
                "deficit": r["deficit_usd"],
                "needed": r["needed_usd"],
                "production": r["production_0ms"],
                "overshoot": r["overshoot_usd"],
            }
            for r in wa.waves.iter_rows(named=True)
        ],
        "totals": {
            "deficit": t["deficit"],
            "needed": t["needed"],
            "production": t["production"],
            "overshoot": t["overshoot"],
            "overshoot_band": t["overshoot_band"],
            "overshoot_by_horizon": t["overshoot_by_horizon"],
            "under_coverage": t["under_coverage"],
            "payout_ratio": t["payout_ratio"],
            "adl_legs": t["adl_legs"],
            "adl_notional": t["adl_notional"],
        },
        "policies": [
            {
                "name": p["name"],
                "overshoot": p["overshoot"],
                "accounts_touched": p["accounts_touched"],
                "max_haircut_share": p["max_haircut_share"],
            }
            for p in pol_tot
        ],
        "timing": {k: v for k, v in tl.items() if not isinstance(v, pl.DataFrame)},
        "seconds": round(time.perf_counter() - t0, 3),
    }
