"""Hourly pull of the tracked accounts (today's partition, re-pulled idempotently each hour)."""

import dagster as dg

from pipelines.defs.hyperliquid.partitions import daily

tracked_accounts_job = dg.define_asset_job(
    "hyperliquid_tracked_accounts_job",
    selection=dg.AssetSelection.assets("hyperliquid_tracked_accounts", "lake_catalog"),
    partitions_def=daily,
)


@dg.schedule(job=tracked_accounts_job, cron_schedule="5 * * * *", execution_timezone="UTC")
def hyperliquid_hourly_pull(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every hour at :05, pull today's window for the tracked accounts."""
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    hour = context.scheduled_execution_time.strftime("%Y-%m-%dT%H")
    return dg.RunRequest(run_key=f"tracked-{hour}", partition_key=day)


node_files_job = dg.define_asset_job(
    "hyperliquid_node_files_job",
    selection=dg.AssetSelection.assets(
        "hyperliquid_node_fills", "hyperliquid_position_snapshots", "hyperliquid_asset_ctxs", "lake_catalog"
    ),
    partitions_def=daily,
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[tracked_accounts_job, node_files_job], schedules=[hyperliquid_hourly_pull])
