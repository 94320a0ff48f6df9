"""The audit report as an asset, a daily digest schedule, and the report in the ADL-episode analysis."""

import datetime as dt
from pathlib import Path

import dagster as dg

from pipelines import report
from pipelines.defs.lake.resources import PROJECT_ROOT, LakeResource

GROUP = "reports"


class AuditReportConfig(dg.Config):
    """Venue, window (default: the last ``days`` up to now; 0 = everything in the lake) and output root."""

    venue: str = "hyperliquid"
    days: int = 0
    out_root: str = str(PROJECT_ROOT / "data" / "reports")
    pdf: bool = True


@dg.asset(
    deps=["adl_rule_fits", "exemption_flags", "adl_waves", "lake_catalog"],
    group_name=GROUP,
    kinds={"html", "pdf"},
    code_version="1",
)
def audit_report(config: AuditReportConfig, lake: LakeResource) -> dg.MaterializeResult:
    """The self-contained ADL audit report (HTML with inline charts, and PDF): what happened, the inferred
    rule and its evidence, flagged accounts with their evidence, haircuts, provenance and methods."""
    now = dt.datetime.now(dt.UTC)
    since_ms = int((now - dt.timedelta(days=config.days)).timestamp() * 1000) if config.days else None
    out_dir = Path(config.out_root) / config.venue / now.strftime("%Y-%m-%dT%H%M")
    context = report.gather(
        lake.lake(),
        Path(lake.db_path),
        venue=config.venue,
        since_ms=since_ms,
        until_ms=None,
        q=0.05,
        gap_seconds=5.0,
        command=f"dagster asset audit_report ({config.venue})",
    )
    paths = report.write(context, out_dir, pdf=config.pdf)
    s = context["summary"]
    return dg.MaterializeResult(
        metadata={
            "html": dg.MetadataValue.path(str(paths.html)),
            "pdf": dg.MetadataValue.path(str(paths.pdf)) if paths.pdf else dg.MetadataValue.text("not rendered"),
            "inferred_rule": dg.MetadataValue.text(s["verdict"]),
            "flagged_accounts": dg.MetadataValue.int(s["flagged"]),
            "adl_legs": dg.MetadataValue.int(s["adl_legs"]),
            # computed from generated inputs (the ingest ledger's marks): the report carries a banner then
            "simulated": dg.MetadataValue.bool(context["simulation"].simulated),
        }
    )


daily_digest_job = dg.define_asset_job("daily_digest_job", selection=dg.AssetSelection.assets("audit_report"))


@dg.schedule(job=daily_digest_job, cron_schedule="0 6 * * *", execution_timezone="UTC")
def daily_digest_report(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every day at 06:00 UTC, the audit report over the last day."""
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"digest-{day}", run_config={"ops": {"audit_report": {"config": {"days": 1}}}})


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[audit_report], jobs=[daily_digest_job], schedules=[daily_digest_report])
