"""The Celery app workers run (``celery -A pipelines.distributed.celery_app worker``, or ``liqf worker``):
dagster-celery's step task, with the broker from ``LIQF_CELERY_BROKER`` and the crash-safe settings."""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from pipelines.distributed.executors import broker_url, celery_settings

app = make_app()
app.conf.update(broker_url=broker_url(), result_backend=broker_url(), **celery_settings())

execute_plan = create_task(app)
