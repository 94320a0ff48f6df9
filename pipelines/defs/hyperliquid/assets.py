"""Hyperliquid assets: node files and info-API pulls into the normalized lake tables."""

import datetime as dt

import dagster as dg

from forensics.tables import ACCOUNT_SNAPSHOTS, ASSET_CTXS, FILLS, LEDGER_EVENTS, POSITION_SNAPSHOTS
from pipelines.defs.hyperliquid.partitions import daily, hourly
from pipelines.defs.hyperliquid.resources import (
    HyperliquidInfoResource,
    HyperliquidNodeDataResource,
    TrackedUsersResource,
)
from pipelines.defs.lake.checks import ingest_metadata, quality_results, quality_specs, read_source_rows
from pipelines.defs.lake.resources import LakeResource
from pipelines.ingest.hyperliquid import api as hyperliquid_api
from pipelines.ingest.hyperliquid import files as hyperliquid_files

GROUP = "hyperliquid"


@dg.asset(
    partitions_def=daily,
    group_name=GROUP,
    kinds={"parquet", "python"},
    check_specs=quality_specs("hyperliquid_node_fills", [FILLS]),
    code_version="1",
)
def hyperliquid_node_fills(
    context: dg.AssetExecutionContext, lake: LakeResource, hyperliquid_node_data: HyperliquidNodeDataResource
) -> dg.MaterializeResult:
    """Every fill leg of one UTC day from the node's ``node_fills_by_block`` hourly files (both legs of
    every trade, liquidation and ADL markers kept), normalized into ``fills``; bad records quarantined."""
    files = hyperliquid_node_data.fill_files(context.partition_key)
    reports = [hyperliquid_files.ingest_node_fills(lake.lake(), f) for f in files]
    if not files:
        context.log.warning(
            f"no node_fills_by_block files for {context.partition_key} under {hyperliquid_node_data.root}"
        )
    df = read_source_rows(lake.lake(), FILLS, [r.source_key for r in reports])
    return dg.MaterializeResult(
        metadata={
            **ingest_metadata(reports),
            "files": len(files),
            "adl_legs": int(df["is_adl"].sum()) if df.height else 0,
        },
        check_results=quality_results("hyperliquid_node_fills", FILLS, df),
    )


@dg.asset(
    partitions_def=hourly,
    group_name=GROUP,
    kinds={"parquet", "python", "s3"},
    check_specs=quality_specs("hyperliquid_node_fills_hourly", [FILLS]),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
    code_version="1",
)
def hyperliquid_node_fills_hourly(
    context: dg.AssetExecutionContext, lake: LakeResource, hyperliquid_node_data: HyperliquidNodeDataResource
) -> dg.MaterializeResult:
    """Every fill leg of one node hour file (``hourly/YYYYMMDD/H.lz4``, local or ``s3://``) in ``fills``:
    the unit of a distributed backfill. The file of hour H also holds the last blocks of hour H-1
    (files are bucketed by local_time), so a window's rows are complete once its next hour is in."""
    the_lake = lake.lake()
    path = hyperliquid_node_data.hour_file(context.partition_key, the_lake)
    if path is None:
        context.log.warning(
            f"no node_fills_by_block file for hour {context.partition_key} under {hyperliquid_node_data.root}"
        )
        reports = []
    else:
        reports = [hyperliquid_files.ingest_node_fills(the_lake, path)]
    df = read_source_rows(the_lake, FILLS, [r.source_key for r in reports])
    return dg.MaterializeResult(
        metadata={**ingest_metadata(reports), "files": len(reports), "bytes": sum(r.bytes for r in reports)},
        check_results=quality_results("hyperliquid_node_fills_hourly", FILLS, df),
    )


@dg.asset(
    group_name=GROUP,
    kinds={"parquet", "python"},
    check_specs=quality_specs("hyperliquid_position_snapshots", [POSITION_SNAPSHOTS, ACCOUNT_SNAPSHOTS]),
    code_version="1",
)
def hyperliquid_position_snapshots(
    lake: LakeResource, hyperliquid_node_data: HyperliquidNodeDataResource
) -> dg.MaterializeResult:
    """Positions and account margin summaries from clearinghouseState snapshot files (``snapshots/*.jsonl``)."""
    reports = [hyperliquid_files.ingest_snapshot(lake.lake(), f) for f in hyperliquid_node_data.files("snapshots")]
    keys = [r.source_key for r in reports]
    checks = quality_results(
        "hyperliquid_position_snapshots", POSITION_SNAPSHOTS, read_source_rows(lake.lake(), POSITION_SNAPSHOTS, keys)
    ) + quality_results(
        "hyperliquid_position_snapshots", ACCOUNT_SNAPSHOTS, read_source_rows(lake.lake(), ACCOUNT_SNAPSHOTS, keys)
    )
    return dg.MaterializeResult(metadata=ingest_metadata(reports), check_results=checks)


@dg.asset(
    group_name=GROUP,
    kinds={"parquet", "python"},
    check_specs=quality_specs("hyperliquid_asset_ctxs", [ASSET_CTXS]),
    code_version="1",
)
def hyperliquid_asset_ctxs(
    lake: LakeResource, hyperliquid_node_data: HyperliquidNodeDataResource
) -> dg.MaterializeResult:
    """Mark, oracle, mid, funding and open interest per coin over time from metaAndAssetCtxs files."""
    reports = [hyperliquid_files.ingest_asset_ctxs(lake.lake(), f) for f in hyperliquid_node_data.files("asset_ctxs")]
    df = read_source_rows(lake.lake(), ASSET_CTXS, [r.source_key for r in reports])
    return dg.MaterializeResult(
        metadata=ingest_metadata(reports), check_results=quality_results("hyperliquid_asset_ctxs", ASSET_CTXS, df)
    )


@dg.asset(
    partitions_def=daily,
    group_name=GROUP,
    kinds={"parquet", "api"},
    check_specs=quality_specs("hyperliquid_tracked_accounts", [FILLS, LEDGER_EVENTS]),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL),
    code_version="1",
)
def hyperliquid_tracked_accounts(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    hyperliquid_info: HyperliquidInfoResource,
    tracked_users: TrackedUsersResource,
) -> dg.MaterializeResult:
    """Fills, ledger updates and current positions of the tracked accounts for one UTC day, pulled
    from the info API (time-paged, rate-limited), plus the venue's asset contexts at pull time."""
    window = context.partition_time_window
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    since_ms = int(window.start.timestamp() * 1000)
    until_ms = min(int(window.end.timestamp() * 1000) - 1, now_ms)
    users = hyperliquid_api.read_users(tracked_users.users_file)
    client = hyperliquid_info.client()
    try:
        reports = hyperliquid_api.pull(lake.lake(), client, users, since_ms, until_ms)
    finally:
        client.close()
    keys = [r.source_key for r in reports]
    checks = quality_results(
        "hyperliquid_tracked_accounts", FILLS, read_source_rows(lake.lake(), FILLS, keys)
    ) + quality_results(
        "hyperliquid_tracked_accounts", LEDGER_EVENTS, read_source_rows(lake.lake(), LEDGER_EVENTS, keys)
    )
    return dg.MaterializeResult(metadata={**ingest_metadata(reports), "users": len(users)}, check_results=checks)
