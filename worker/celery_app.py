"""The one Celery app. Torch-free: the API imports it to send tasks by name."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from worker.settings import get_settings

TRAIN_GROUP = "mlplab.train_group"  # trains the given run ids now (bypasses fair share)
TRAIN_NEXT = "mlplab.train_next"  # a token: trains the group the fair-share scheduler picks

REDIS_TIMEOUT_S = 5.0  # broker socket connect/read timeout; above kombu's 1 s BRPOP wait


def create_celery(
    broker_url: str, *, visibility_timeout_s: int, redis_timeout_s: float = REDIS_TIMEOUT_S
) -> Celery:
    """A Celery app on a Redis broker, configured for long, at-least-once training tasks.

    Redis outages: a publish to a dead or silent broker fails within a few socket timeouts
    (kombu's socket timeout is otherwise None: a publish to a frozen Redis waits forever), and
    a worker that lost its broker reconnects forever (Celery gives up after 100 tries by
    default, then the worker exits), every 2 s at first, at most every 30 s.
    """
    app = Celery("mlplab", broker=broker_url, include=["worker.tasks", "worker.heartbeat"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # state lives in runstore, not in a result backend
        task_acks_late=True,  # a task lost with its worker is redelivered ...
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # ... and a busy worker holds no queued task hostage
        broker_transport_options=_transport_options(visibility_timeout_s, redis_timeout_s),
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,  # None: never give up on the broker
        # Celery 6's default, set to silence its warning on every reconnect. The solo pool's
        # consumer notices a lost broker only between tasks, so nothing is cancelled by it.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_send_task_events=True,  # for flower
        worker_hijack_root_logger=False,
    )
    return app


def _transport_options(visibility_timeout_s: int, redis_timeout_s: float) -> dict[str, Any]:
    """kombu's Redis transport options: redelivery after visibility_timeout, socket timeouts,
    keepalive and kombu's health checks (a half-open BRPOP connection is dropped, not waited on).
    """
    return {
        "visibility_timeout": visibility_timeout_s,
        "socket_timeout": redis_timeout_s,
        "socket_connect_timeout": redis_timeout_s,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }


@worker_process_init.connect
def configure_torch(**_: object) -> None:
    """Once in each worker process, before its first task: torch's process-wide set-up."""
    from mlpcore.device import configure_process  # here: the API imports this module, not torch

    configure_process(threads=get_settings().torch_threads)


app = create_celery(
    get_settings().redis_url, visibility_timeout_s=get_settings().visibility_timeout_s
)
