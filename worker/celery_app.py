"""The one Celery app. Torch-free: the API imports it to send tasks by name."""

from __future__ import annotations

from celery import Celery

from worker.settings import get_settings

TRAIN_GROUP = "mlplab.train_group"  # trains the given run ids now (bypasses fair share)
TRAIN_NEXT = "mlplab.train_next"  # a token: trains the group the fair-share scheduler picks


def create_celery(broker_url: str, *, visibility_timeout_s: int) -> Celery:
    """A Celery app on a Redis broker, configured for long, at-least-once training tasks."""
    app = Celery("mlplab", broker=broker_url, include=["worker.tasks", "worker.heartbeat"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # state lives in runstore, not in a result backend
        task_acks_late=True,  # a task lost with its worker is redelivered ...
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # ... and a busy worker holds no queued task hostage
        broker_transport_options={"visibility_timeout": visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,  # for flower
        worker_hijack_root_logger=False,
    )
    return app


app = create_celery(
    get_settings().redis_url, visibility_timeout_s=get_settings().visibility_timeout_s
)
