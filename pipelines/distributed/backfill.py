"""The hourly Hyperliquid backfill as one Dagster run: one step per hour partition, fanned out
(dynamic outputs) on the chosen executor, then one catalog refresh in the ``duckdb`` pool.

Each hour step ingests only its own hour file (its own input key, so its own lake parts) and reports
a materialization of ``hyperliquid_node_fills_hourly`` for that partition, so the asset's partitions
fill in the UI exactly as with an asset backfill. Steps are idempotent: a retried or repeated hour
replaces its parts (see :mod:`pipelines.lake.remote`).
"""

import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from pipelines.defs.hyperliquid.resources import HyperliquidNodeDataResource
from pipelines.defs.lake.resources import LakeResource
from pipelines.distributed import executors
from pipelines.ingest.hyperliquid import files as hyperliquid_files

JOB_NAME = "hyperliquid_hourly_backfill"
HOUR_STEP = "ingest_node_fills_hour"
HOURLY_ASSET = "hyperliquid_node_fills_hourly"
BACKFILL_TAG = "liqf/backfill"


def hour_keys(start: dt.datetime, end: dt.datetime) -> list[str]:
    """Hourly partition keys from ``start`` to ``end`` inclusive."""
    n = int((end - start).total_seconds() // 3600) + 1
    return [(start + dt.timedelta(hours=i)).strftime("%Y-%m-%d-%H:00") for i in range(max(n, 0))]


class HourWindow(dg.Config):
    partition_keys: list[str]


@dg.op(out=dg.DynamicOut(str))
def backfill_hours(config: HourWindow):
    """The hourly partitions of the backfill, one dynamic output each."""
    for key in config.partition_keys:
        yield dg.DynamicOutput(key, mapping_key="h" + key.replace("-", "").replace(":", "")[:10])


@dg.op(retry_policy=dg.RetryPolicy(max_retries=2, delay=1))
def ingest_node_fills_hour(
    context: dg.OpExecutionContext,
    partition_key: str,
    lake: LakeResource,
    hyperliquid_node_data: HyperliquidNodeDataResource,
) -> dict:
    """Ingest one hour file into the lake (its own parts only); report the partition's materialization."""
    the_lake = lake.lake()
    t0 = time.perf_counter()
    path = hyperliquid_node_data.hour_file(partition_key, the_lake)
    t_read = time.perf_counter() - t0
    report = hyperliquid_files.ingest_node_fills(the_lake, path) if path else None
    t_ingest = time.perf_counter() - t0 - t_read
    result = {
        "partition": partition_key,
        "rows": report.records_written if report else 0,
        "quarantined": report.quarantined if report else 0,
        "bytes": report.bytes if report else 0,
        "seconds": {"read": round(t_read, 3), "ingest": round(t_ingest, 3)},
        "worker": os.uname().nodename + f":{os.getpid()}",
    }
    context.log_event(
        dg.AssetMaterialization(
            asset_key=HOURLY_ASSET,
            partition=partition_key,
            metadata={
                "rows": result["rows"],
                "quarantined": result["quarantined"],
                "bytes": result["bytes"],
                "file": str(path) if path else "none",
            },
        )
    )
    return result


@dg.op(pool="duckdb")
def refresh_catalog_after_backfill(results: list[dict], lake: LakeResource) -> dict:
    """Recreate the DuckDB catalog once, after every hour of the backfill landed (the only DuckDB writer)."""
    catalog = lake.refresh_catalog()
    return {"views": catalog.views, "hours": len(results)}


def build_job(executor_name: str | None = None) -> dg.JobDefinition:
    @dg.job(
        name=JOB_NAME,
        executor_def=executors.executor(executor_name or os.environ.get("LIQF_BACKFILL_EXECUTOR", "in_process")),
        resource_defs={"lake": LakeResource(), "hyperliquid_node_data": HyperliquidNodeDataResource()},
        tags={"kind": "backfill"},
    )
    def hyperliquid_hourly_backfill():
        """Hourly node-fill partitions, fanned out on the executor, then one catalog refresh."""
        refresh_catalog_after_backfill(backfill_hours().map(ingest_node_fills_hour).collect())

    return hyperliquid_hourly_backfill


def reconstructable_job() -> dg.JobDefinition:
    """Target of ``dg.reconstructable``: workers rebuild the job from the same environment variable."""
    return build_job()


@dataclass
class BackfillSummary:
    run_id: str
    status: str
    partitions: int
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    catalog: dict = field(default_factory=dict)
    workers: dict = field(default_factory=dict)  # worker -> hours it finished


def run_backfill(
    instance: dg.DagsterInstance,
    keys: list[str],
    *,
    executor_name: str,
    lake: LakeResource,
    node_data: HyperliquidNodeDataResource,
    progress: Callable[[int, int], None] | None = None,
) -> BackfillSummary:
    """Run the backfill of ``keys`` and follow it (``progress(done, total)``); returns the summary."""
    os.environ["LIQF_BACKFILL_EXECUTOR"] = executor_name
    tag = uuid.uuid4().hex[:12]
    run_config = {
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "ops": {"backfill_hours": {"config": {"partition_keys": keys}}},
        "resources": {
            "lake": {
                "config": {"lake_root": lake.lake_root, "lake_endpoint": lake.lake_endpoint, "db_path": lake.db_path}
            },
            "hyperliquid_node_data": {
                "config": {
                    "root": node_data.root,
                    "endpoint": node_data.endpoint,
                    "requester_pays": node_data.requester_pays,
                }
            },
        },
    }
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(0.5):
            runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_TAG: tag}), limit=1)
            if runs and progress:
                progress(len(_materialized(instance, runs[0].run_id)), len(keys))

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    try:
        result = dg.execute_job(
            dg.reconstructable(reconstructable_job),
            instance=instance,
            run_config=run_config,
            tags={BACKFILL_TAG: tag},
            raise_on_error=False,
        )
        run_id = result.run_id
        status = "success" if result.success else "failure"
    finally:
        stop.set()
        watcher.join()
    return summarize(instance, run_id, status, keys, time.perf_counter() - t0)


def _materialized(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    out = {}
    for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        mat = rec.dagster_event.event_specific_data.materialization
        if mat.partition:
            out[mat.partition] = {k: v.value for k, v in mat.metadata.items()}
    return out


def summarize(
    instance: dg.DagsterInstance, run_id: str, status: str, keys: list[str], seconds: float
) -> BackfillSummary:
    summary = BackfillSummary(run_id, status, len(keys), seconds=round(seconds, 2))
    mats = _materialized(instance, run_id)
    starts: dict[str, int] = {}
    failed: set[str] = set()
    outputs: dict[str, dict] = {}
    for rec in instance.all_logs(run_id):
        ev = rec.dagster_event
        if ev is None or not ev.step_key or not ev.step_key.startswith(HOUR_STEP):
            continue
        if ev.event_type == dg.DagsterEventType.ENGINE_EVENT and "in celery worker" in (
            ev.message or rec.user_message or ""
        ):
            starts[ev.step_key] = starts.get(ev.step_key, 0) + 1
        elif ev.event_type in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED):
            if "celery" not in os.environ.get("LIQF_BACKFILL_EXECUTOR", ""):
                starts[ev.step_key] = starts.get(ev.step_key, 0) + 1
        elif ev.event_type == dg.DagsterEventType.STEP_FAILURE:
            failed.add(ev.step_key)
        elif ev.event_type == dg.DagsterEventType.STEP_OUTPUT:
            outputs[ev.step_key] = {}
    by_step = {HOUR_STEP + "[h" + k.replace("-", "").replace(":", "")[:10] + "]": k for k in keys}
    summary.done = sorted(k for k in keys if k in mats)
    summary.failed = sorted(by_step[s] for s in failed if s in by_step and by_step[s] not in mats)
    summary.failed += sorted(k for k in keys if k not in mats and k not in summary.failed)
    summary.retried = sorted(by_step[s] for s, n in starts.items() if n > 1 and s in by_step)
    summary.rows = sum(int(m.get("rows", 0)) for m in mats.values())
    summary.bytes = sum(int(m.get("bytes", 0)) for m in mats.values())
    summary.catalog = _catalog_output(instance, run_id)
    return summary


def _catalog_output(instance: dg.DagsterInstance, run_id: str) -> dict:
    for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS):
        if rec.dagster_event.step_key == "refresh_catalog_after_backfill":
            return {"refreshed": True}
    return {"refreshed": False}
