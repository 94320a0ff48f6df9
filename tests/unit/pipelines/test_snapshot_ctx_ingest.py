"""Snapshot and asset-context files: rows, quarantine, reconciliation."""

from __future__ import annotations

import json

import polars as pl

from pipelines.ingest.hyperliquid.files import ingest_asset_ctxs, ingest_snapshot


def test_snapshot_file(lake, api_example, tmp_path):
    state = json.loads(api_example("hyperliquid_clearinghouseState_isolated_ccxt_fixture.json").read_text())["response"]
    lines = [
        json.dumps({"time": 1760126694218, "user": "0x" + "ab" * 20, "state": state}),
        json.dumps(
            {
                "time": 1760126694218,
                "user": "0x" + "cd" * 20,
                "state": {"marginSummary": {"accountValue": "5"}, "assetPositions": []},
            }
        ),
        "{broken",
        json.dumps({"time": 1760126694218, "user": "<script>", "state": state}),
    ]
    path = tmp_path / "snap.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = ingest_snapshot(lake, path)
    assert (report.records_read, report.records_written, report.quarantined) == (4, 2, 2)
    pos = pl.read_parquet(list(lake.table_dir("position_snapshots").rglob("*.parquet")))
    assert pos.height == 1 and pos["leverage_type"][0] == "isolated"
    q = pl.read_parquet(list(lake.table_dir("quarantine").rglob("*.parquet")))
    assert sorted(q["reason"]) == ["invalid user address", "malformed JSON line"]


def test_asset_ctx_file(lake, api_example, tmp_path):
    ctxs = json.loads(api_example("hyperliquid_metaAndAssetCtxs_docs.json").read_text())["response"]
    short = [ctxs[0], ctxs[1][:2]]
    path = tmp_path / "ctx.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"time": 1760130964000, "ctxs": ctxs},
                {"time": 1760130965000, "ctxs": ctxs},
                {"time": 1760130966000, "ctxs": short},
            ]
        )
        + "\n"
    )
    report = ingest_asset_ctxs(lake, path)
    assert (report.records_read, report.records_written, report.quarantined) == (3, 2, 1)
    assert report.rows_by_table["asset_ctxs"] == 6
    assert "universe has 3 coins but ctxs has 2" in report.reasons
