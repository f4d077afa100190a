"""The one Celery app a worker runs (`celery -A worker.celery_app`), built from the worker's
settings, and this process's handle for sending tasks. The task names and the app factory
are the orchestration's (lab/queue.py); the API builds its own app for sending.
"""

from __future__ import annotations

import functools
import gc

from celery.signals import worker_process_init, worker_ready

from lab.queue import TRAIN_NEXT, TaskQueue, create_celery
from worker.settings import get_settings

app = create_celery(
    get_settings().redis_url,
    visibility_timeout_s=get_settings().visibility_timeout_s,
    include=["worker.tasks", "worker.heartbeat", "worker.exitguard"],
)


@worker_process_init.connect
def configure_torch(**_: object) -> None:
    """Once in each worker process, before its first task: torch's process-wide set-up."""
    from mlpcore.device import configure_process  # here: CUDA and threads only after the fork

    configure_process(threads=get_settings().torch_threads)


@worker_ready.connect
def freeze_imports(**_: object) -> None:
    """Move everything imported so far (torch, Celery) out of the garbage collector's sight."""
    # The collection at interpreter exit walks every object; with torch loaded that took 3 to
    # 6 s on a busy box, most of a worker's time to stop after SIGTERM. Frozen objects are
    # never collected, which costs nothing here: modules live as long as the process anyway.
    gc.freeze()


@functools.lru_cache
def queue() -> TaskQueue:
    """The worker process's handle for sending tasks (a staged sweep's next stage)."""
    return TaskQueue(app)


def send_token() -> None:
    """One fair-share token (a group put back or handed back needs one)."""
    app.send_task(TRAIN_NEXT)
