"""The Dagster code location loads, and its Hyperliquid assets materialize with passing GX checks."""

from __future__ import annotations

import json

import dagster as dg

from pipelines.definitions import defs as load_definitions
from pipelines.defs.hyperliquid.assets import (
    hyperliquid_asset_ctxs,
    hyperliquid_node_fills,
    hyperliquid_position_snapshots,
)
from pipelines.defs.hyperliquid.resources import HyperliquidNodeDataResource
from pipelines.defs.lake.assets import lake_catalog
from pipelines.defs.lake.resources import LakeResource
from tests.unit.pipelines.test_ingest_node_fills import USER_A, USER_B, block, fill, write_lines


def test_definitions_load():
    defs = load_definitions()
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"hyperliquid_node_fills", "hyperliquid_tracked_accounts", "lake_catalog"} <= keys
    assert defs.resolve_schedule_def("hyperliquid_hourly_pull")
    for key in keys:
        assert defs.resolve_assets_def(key).descriptions_by_key, f"{key} has no docstring"


def test_materialize_node_assets_and_catalog(tmp_path, api_example):
    node = tmp_path / "node"
    day = node / "node_fills_by_block" / "hourly" / "20251010"
    day.mkdir(parents=True)
    write_lines(day / "21.lz4", [block(0, [fill(USER_A, 1), fill(USER_B, 1, side="A", dir="Open Short")]), "not json"])
    (node / "snapshots").mkdir()
    state = json.loads(api_example("hyperliquid_clearinghouseState_isolated_ccxt_fixture.json").read_text())["response"]
    (node / "snapshots" / "start.jsonl").write_text(
        json.dumps({"time": 1760126694218, "user": USER_A, "state": state}) + "\n"
    )
    (node / "asset_ctxs").mkdir()
    ctxs = json.loads(api_example("hyperliquid_metaAndAssetCtxs_docs.json").read_text())["response"]
    (node / "asset_ctxs" / "ctx.jsonl").write_text(json.dumps({"time": 1760130964000, "ctxs": ctxs}) + "\n")

    resources = {
        "lake": LakeResource(lake_root=str(tmp_path / "lake"), db_path=str(tmp_path / "c.duckdb")),
        "hyperliquid_node_data": HyperliquidNodeDataResource(root=str(node)),
    }
    result = dg.materialize(
        [hyperliquid_node_fills, hyperliquid_position_snapshots, hyperliquid_asset_ctxs, lake_catalog],
        resources=resources,
        partition_key="2025-10-10",
        selection=[
            "hyperliquid_node_fills",
            "hyperliquid_position_snapshots",
            "hyperliquid_asset_ctxs",
            "lake_catalog",
        ],
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [(c.check_name, c.description) for c in checks if not c.passed]
    fills_md = result.asset_materializations_for_node("hyperliquid_node_fills")[0].metadata
    assert fills_md["records_read"].value == 3 and fills_md["records_quarantined"].value == 1
    catalog_md = result.asset_materializations_for_node("lake_catalog")[0].metadata
    assert catalog_md["rows_fills"].value == 2 and catalog_md["rows_position_snapshots"].value == 1


def test_monitoring_schedules_sensor_and_freshness(tmp_path):
    from pipelines.defs.analytics.audit import adl_episode_sensor
    from pipelines.defs.reports.assets import daily_digest_report

    defs = load_definitions()
    for name in ("hyperliquid_hourly_pull", "daily_digest_report"):
        assert defs.resolve_schedule_def(name)
    ctx = dg.build_schedule_context(scheduled_execution_time=__import__("datetime").datetime(2025, 10, 11, 6))
    req = daily_digest_report(ctx)
    assert req.run_key == "digest-2025-10-11" and req.run_config["ops"]["audit_report"]["config"]["days"] == 1
    graph = defs.resolve_asset_graph()
    for key in ("hyperliquid_node_fills", "lake_catalog", "exemption_flags"):
        assert graph.get(dg.AssetKey(key)).freshness_policy is not None

    # the sensor fires only when newly ingested fills contain ADL legs
    node = tmp_path / "node" / "node_fills_by_block" / "hourly" / "20251010"
    node.mkdir(parents=True)
    vault = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
    adl = {"liquidatedUser": vault, "markPx": "98", "method": "backstop"}
    write_lines(
        node / "21.lz4",
        [
            block(
                0,
                [
                    fill(USER_B, 2, side="A", dir="Auto-Deleveraging", startPosition="0.3", liquidation=adl),
                    fill(vault, 2, dir="Close Short", liquidation=adl),
                ],
            )
        ],
    )
    resources = {
        "lake": LakeResource(lake_root=str(tmp_path / "lake"), db_path=str(tmp_path / "c.duckdb")),
        "hyperliquid_node_data": HyperliquidNodeDataResource(root=str(tmp_path / "node")),
    }
    with dg.instance_for_test() as instance:
        dg.materialize([hyperliquid_node_fills], resources=resources, partition_key="2025-10-10", instance=instance)
        sensor_ctx = dg.build_sensor_context(instance=instance, definitions=defs)
        result = adl_episode_sensor.evaluate_tick(sensor_ctx)
        assert [r.tags.get("liqf/trigger") for r in result.run_requests] == ["adl_episode"]
