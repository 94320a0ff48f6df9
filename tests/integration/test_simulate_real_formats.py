"""A simulator scenario in Hyperliquid's published layouts (misc_events_by_block, clearinghouse export,
per-minute archive asset_ctxs) goes through the ordinary ingest and reconstructs with pools equal to truth,
once the funding and ledger events are replayed."""

from __future__ import annotations

import json

import polars as pl
import pytest
from rich.console import Console

from forensics.reconstruct import build_steps_and_pools, compare_to_truth
from forensics.reconstruct.cash import cash_events
from forensics.reconstruct.truth import truth_frames
from forensics.simulate import VAULT_ADDRESS, generate


@pytest.fixture(scope="module")
def real_scenario(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim_real")
    scen = generate(out, scale="small", policy="hl_index", exempt=5, seed=7, formats="real")
    return out, scen


def _lake(tmp_path_factory, out, snapshot, *, with_lake: bool = False):
    from pipelines.analysis.inputs import load_inputs
    from pipelines.ingest.runner import run_file_ingest
    from pipelines.lake import Lake

    lake = Lake(tmp_path_factory.mktemp("lake") / "lake")
    reports = run_file_ingest(
        lake,
        node_fills=[out / "node_fills_by_block"],
        misc_events=[out / "misc_events_by_block"],
        snapshot=[snapshot],
        asset_ctxs=out / "asset_ctxs" / "20251010.csv.lz4",
        console=Console(quiet=True),
    )
    assert all(r.records_read == r.records_written + r.quarantined for r in reports)
    assert sum(r.quarantined for r in reports) == 0
    return (load_inputs(lake), lake) if with_lake else load_inputs(lake)


def _compare(i, out, *, with_cash: bool):
    from pipelines.analysis.inputs import archive_mark_age

    cash = cash_events(i.ledger, i.funding)[0] if with_cash else None
    steps, pools = build_steps_and_pools(
        i.fills,
        i.positions,
        i.accounts,
        i.asset_ctxs,
        vault=VAULT_ADDRESS,
        cash=cash,
        max_mark_age_ms=archive_mark_age(i.asset_ctxs),
    )
    return steps, pools, compare_to_truth(steps, pools, out / "truth.json")


def test_real_layout_files_are_written(real_scenario):
    out, scen = real_scenario
    counts = scen["misc_events"]
    assert {"Funding", "deposit", "withdraw", "accountClassTransfer", "internalTransfer", "liquidation"} <= set(counts)
    assert all(counts[k] > 0 for k in counts)
    assert (out / "asset_ctxs" / "20251010.csv.lz4").exists() and len(list((out / "snapshot").glob("*.json"))) == 2


def test_pools_equal_truth_with_misc_events_and_archive_marks(real_scenario, tmp_path_factory):
    """Exact snapshot (JSONL) + misc events + per-minute archive marks: every pool equals truth; without
    replaying the cash events some do not (the events really move account values)."""
    out, _ = real_scenario
    i = _lake(tmp_path_factory, out, out / "snapshots" / "clearinghouse_state.jsonl")
    _, _, with_cash = _compare(i, out, with_cash=True)
    assert with_cash["steps_matched"] == with_cash["steps_truth"] > 0
    assert with_cash["pools_equal"] == with_cash["steps_truth"]
    assert with_cash["candidates_missing"] == with_cash["candidates_extra"] == 0
    assert with_cash["features"]["account_value"]["median_rel"] < 1e-5
    _, _, without = _compare(i, out, with_cash=False)
    assert without["pools_equal"] < with_cash["pools_equal"]
    assert without["features"]["account_value"]["median_rel"] > with_cash["features"]["account_value"]["median_rel"]


def test_export_snapshot_loses_only_isolated_margins(real_scenario, tmp_path_factory):
    """From the clearinghouse export, the isolated margin is derived (|size| * entry / leverage): every
    candidate it costs is an isolated account; nothing extra appears and cross accounts are unaffected."""
    out, _ = real_scenario
    i = _lake(tmp_path_factory, out, out / "snapshot")
    steps, pools, r = _compare(i, out, with_cash=True)
    assert r["steps_matched"] == r["steps_truth"] and r["candidates_extra"] == 0
    tsteps, tpool = truth_frames(out / "truth.json")
    ours = pools.join(
        tsteps.join(
            steps.select("step_id", "block_number", "coin", "liquidated_side"),
            on=["block_number", "coin", "liquidated_side"],
        ).select("step", "step_id"),
        on="step_id",
    )
    missing = tpool.join(ours, on=["step", "user"], how="anti")
    isolated = set(i.positions.filter(pl.col("leverage_type") == "isolated")["user"])
    assert set(missing["user"]) <= isolated
    assert r["candidates_missing"] == missing.height < 0.01 * r["candidates_truth"]


def test_liquidation_summaries_check_against_the_replay(real_scenario, tmp_path_factory):
    from forensics.reconstruct.cash import CashSettings
    from pipelines.analysis.inputs import archive_mark_age
    from pipelines.analysis.reconstruct import liquidation_errors

    out, scen = real_scenario
    i, lake = _lake(tmp_path_factory, out, out / "snapshots" / "clearinghouse_state.jsonl", with_lake=True)
    check = liquidation_errors(
        i, cash_events(i.ledger, i.funding)[0], CashSettings(), archive_mark_age(i.asset_ctxs), lake=lake
    )
    assert check["all"]["events"] == scen["misc_events"]["liquidation"]
    import duckdb

    rows = duckdb.sql(f"select * from read_parquet('{lake.glob('liquidation_checks')}')").pl()
    assert rows.height == check["all"]["events"] and rows["replayed"].null_count() == 0
    # the engine values an account after the block's trades, the check before them: close, not equal
    assert check["cross"]["within_1pct"] > 0.9
    assert json.dumps(check)  # plain numbers, for the run summary
