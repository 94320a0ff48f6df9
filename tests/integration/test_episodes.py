"""ADL analysis fanned out per episode: dynamic partitions found from adl_steps, each audited alone."""

from __future__ import annotations

import dagster as dg
import polars as pl

from forensics import simulate
from pipelines.analysis import audit
from pipelines.defs.analytics.episodes import adl_episode_audit, adl_episodes, find_episodes, parse_episode
from pipelines.defs.lake.resources import LakeResource
from pipelines.ingest.hyperliquid import files
from pipelines.lake import Lake


def test_episodes_split_on_gaps():
    steps = pl.DataFrame({"time_ms": [0, 1_000, 60_000, 4_000_000, 4_000_500]})
    keys = find_episodes(steps, gap_ms=30 * 60 * 1000)
    assert keys == ["hyperliquid-0-60000", "hyperliquid-4000000-4000500"]
    assert parse_episode(keys[1]) == ("hyperliquid", 4_000_000, 4_000_500)
    assert find_episodes(pl.DataFrame({"time_ms": []})) == []


def test_each_episode_partition_is_audited_on_its_own(tmp_path):
    out = tmp_path / "scenario"
    simulate.generate(out, scale="tiny", policy="hl_index", exempt=0, seed=5)
    lake = Lake(tmp_path / "lake")
    for f in files.expand_inputs([out / "node_fills_by_block"]):
        files.ingest_node_fills(lake, f)
    for f in sorted((out / "snapshots").glob("*.jsonl")):
        files.ingest_snapshot(lake, f)
    for f in sorted((out / "asset_ctxs").glob("*.jsonl")):
        files.ingest_asset_ctxs(lake, f)
    summary = audit.run(lake)
    steps = lake.read("adl_steps", "hyperliquid")
    keys = find_episodes(steps)
    assert keys and summary.steps.height > 0
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(adl_episodes.name, keys)
    result = dg.materialize(
        [adl_episode_audit],
        partition_key=keys[0],
        instance=instance,
        resources={"lake": LakeResource(lake_root=str(lake.root), db_path=str(tmp_path / "c.duckdb"))},
        run_config={"ops": {"adl_episode_audit": {"config": {"q": 0.05}}}},
    )
    assert result.success
    meta = result.asset_materializations_for_node("adl_episode_audit")[0].metadata
    assert meta["steps"].value == steps.filter(pl.col("time_ms") <= parse_episode(keys[0])[2]).height
    assert meta["best_rule"].value == "hl_index"
