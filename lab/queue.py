"""Sending training tasks: the Celery task names, the app factory and the handle on the broker.

Torch-free, and nothing is built at import: the API builds its own app for sending, the
worker's `worker/celery_app.py` builds the one `celery -A` loads. Tasks are sent by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery

from mlpcore.status import RunStatus
from runstore import Store

TRAIN_GROUP = "mlplab.train_group"  # trains the given run ids now (bypasses fair share)
TRAIN_NEXT = "mlplab.train_next"  # a token: trains the group the fair-share scheduler picks
ADVANCE_SWEEP = "mlplab.advance_sweep"  # asks a learned sweep's next batch where torch may load

REDIS_TIMEOUT_S = 5.0  # broker socket connect/read timeout; above kombu's 1 s BRPOP wait


def create_celery(
    broker_url: str,
    *,
    visibility_timeout_s: int,
    redis_timeout_s: float = REDIS_TIMEOUT_S,
    include: Sequence[str] = (),
) -> Celery:
    """A Celery app on a Redis broker, configured for long, at-least-once training tasks;
    `include` names the task modules a worker loads (none for an app that only sends).

    Redis outages: a publish to a dead or silent broker fails within a few socket timeouts
    (kombu's socket timeout is otherwise None: a publish to a frozen Redis waits forever), and
    a worker that lost its broker reconnects forever (Celery gives up after 100 tries by
    default, then the worker exits), every 2 s at first, at most every 30 s.
    """
    app = Celery("mlplab", broker=broker_url, include=list(include))
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


class TaskQueue:
    """A handle on the Celery broker that sends training tasks."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def send_token(self) -> None:
        """One `train_next` token: a worker taking it trains the group fair share picks."""
        self.celery.send_task(TRAIN_NEXT)

    def send_advance(self, sweep_id: str) -> None:
        """Ask a worker to move a sweep on (a GP batch past its startup needs torch)."""
        self.celery.send_task(ADVANCE_SWEEP, args=[sweep_id])

    def waiting_tokens(self) -> int:
        """Tokens waiting in the broker's queue, not yet taken by a worker."""
        with self.celery.connection_for_read() as conn:
            return int(conn.default_channel.client.llen(self.celery.conf.task_default_queue))

    def close(self) -> None:
        """Release the broker connections."""
        self.celery.close()


def send_group(queue: TaskQueue, store: Store, run_ids: list[str]) -> None:
    """Queue a group on its owner's fair-share queue and send its token; if Redis or the
    broker refuses, fail the runs rather than leave them queued (the scheduler drops a group
    whose runs all ended)."""
    try:
        store.fair.enqueue_runs(run_ids)
        queue.send_token()
    except Exception as exc:
        for run_id in run_ids:
            store.finish_run(
                run_id=run_id, status=RunStatus.failed, error=f"could not be queued: {exc}"
            )
        raise
