"""Daily CEX pulls and a sensor that normalizes closed capture hours."""

import dagster as dg

from pipelines.defs.cex.assets import VENUE_ASSETS, daily
from pipelines.defs.lake.resources import LakeResource
from pipelines.ingest import capture

cex_daily_job = dg.define_asset_job(
    "cex_daily_job",
    selection=dg.AssetSelection.assets(*VENUE_ASSETS),
    partitions_def=daily,
)
capture_job = dg.define_asset_job(
    "cex_capture_job",
    selection=dg.AssetSelection.assets("captured_liquidations", "cex_adl_episodes"),
)


@dg.schedule(job=cex_daily_job, cron_schedule="20 * * * *", execution_timezone="UTC")
def cex_hourly_pull(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every hour at :20, re-pull today's partition of every CEX venue (idempotent per window)."""
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"cex-{context.scheduled_execution_time:%Y-%m-%dT%H}", partition_key=day)


@dg.sensor(job=capture_job, minimum_interval_seconds=300)
def cex_closed_capture_hours(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    """When `liqf capture` closes an hourly file, normalize it (cursor = newest closed file seen)."""
    files = sorted(str(p) for v in capture.DEFAULT_URLS for p in capture.closed_hours(lake.lake(), v))
    newest = files[-1] if files else ""
    if not newest or newest == (context.cursor or ""):
        return dg.SensorResult(skip_reason="no newly closed capture hour")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=newest)], cursor=newest)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        jobs=[cex_daily_job, capture_job], schedules=[cex_hourly_pull], sensors=[cex_closed_capture_hours]
    )
