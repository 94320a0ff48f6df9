"""Executor choice for backfills, and the Celery settings that workers and the coordinator share.

Celery settings matter for crashes: tasks are acknowledged only after they finish (``acks_late``) and a
task whose worker died is put back (``reject_on_worker_lost``, and the Redis broker's
``visibility_timeout`` for a worker killed outright), so another worker runs the partition again.
The visibility timeout must exceed the longest partition (``LIQF_CELERY_VISIBILITY_TIMEOUT``).
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTORS = ("in_process", "multiprocess", "celery")
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def broker_url() -> str:
    return os.environ.get("LIQF_CELERY_BROKER", DEFAULT_BROKER)


def celery_settings() -> dict:
    visibility = int(os.environ.get("LIQF_CELERY_VISIBILITY_TIMEOUT", "3600"))
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": visibility,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "result_backend_transport_options": {"visibility_timeout": visibility},
    }


def executor(name: str, *, max_concurrent: int = 2) -> dg.ExecutorDefinition:
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        return dg.multiprocess_executor.configured(
            {"max_concurrent": int(os.environ.get("LIQF_MULTIPROCESS_MAX", max_concurrent))}
        )
    if name == "celery":
        # optional and heavy (Celery): only for --executor celery
        from dagster_celery import celery_executor

        broker = broker_url()
        return celery_executor.configured({"broker": broker, "backend": broker, "config_source": celery_settings()})
    raise ValueError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")


class BrokerDown(RuntimeError):
    pass


def check_broker(url: str, timeout: float = 3.0) -> None:
    """One-line failure when the Celery broker does not answer."""
    # only for --executor celery (kombu comes with Celery)
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means the same to the user
        raise BrokerDown(
            f"cannot reach the Celery broker at {_redact(url)}: start it (redis-server) "
            "or set --broker/LIQF_CELERY_BROKER"
        ) from None


def _redact(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
