"""The distributed hourly backfill job (executor from ``LIQF_BACKFILL_EXECUTOR``: in_process, multiprocess, celery)."""

import dagster as dg

from pipelines.distributed.backfill import build_job


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[build_job()])
