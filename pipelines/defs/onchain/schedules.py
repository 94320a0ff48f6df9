"""Scheduled on-chain pulls: incremental by checkpoint, so every run picks up where the last stopped."""

import dagster as dg

onchain_job = dg.define_asset_job(
    "onchain_arbitrum_job",
    selection=dg.AssetSelection.assets("gmx_v2_arbitrum_events", "arbitrum_venue_reserves", "lake_catalog"),
)


@dg.schedule(
    job=onchain_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def onchain_arbitrum_quarter_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every 15 minutes: GMX v2 events and venue reserves on Arbitrum since the last checkpoint
    (stopped by default: it needs LIQF_RPC_ARBITRUM)."""
    return dg.RunRequest(run_key=context.scheduled_execution_time.strftime("onchain-%Y-%m-%dT%H:%M"))


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[onchain_job], schedules=[onchain_arbitrum_quarter_hourly])
