"""Backfills beyond one machine: Dagster jobs on the in-process, multiprocess or Celery executor."""
