"""Planning and sending training tasks, for the API (submissions) and the worker (a staged
sweep's next stage): one way to cut runs into fused tasks, one function that queues a task.

Torch-free: the API imports it. Tasks are sent by name through a Celery app.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from mlpcore.spec import RunSpec
from runstore import Store, new_id
from runstore.fairqueue import FairQueue
from worker.celery_app import TRAIN_NEXT, create_celery


class TaskQueue:
    """A handle on the Celery broker that sends training tasks."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    @classmethod
    def from_url(cls, broker_url: str, *, visibility_timeout_s: int) -> TaskQueue:
        """A queue on its own Celery app for this broker."""
        return cls(create_celery(broker_url, visibility_timeout_s=visibility_timeout_s))

    def send_token(self) -> None:
        """One `train_next` token: a worker taking it trains the group fair share picks."""
        self.celery.send_task(TRAIN_NEXT)

    def waiting_tokens(self) -> int:
        """Tokens waiting in the broker's queue, not yet taken by a worker."""
        with self.celery.connection_for_read() as conn:
            return int(conn.default_channel.client.llen(self.celery.conf.task_default_queue))

    def close(self) -> None:
        """Release the broker connections."""
        self.celery.close()


def fusion_chunks(specs: list[RunSpec], *, fuse: bool, max_models: int) -> list[list[int]]:
    """Indices of the runs each task trains: runs sharing a fusion key, in sweep order, at
    most max_models a task; one run a task when not fusing."""
    if not fuse:
        return [[i] for i in range(len(specs))]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(spec.fusion_key(), []).append(index)
    return [g[a : a + max_models] for g in groups.values() for a in range(0, len(g), max_models)]


def group_ids(chunks: list[list[int]], *, n_runs: int) -> list[str | None]:
    """Each run's fused_group: an id shared by its chunk's runs, None for a chunk of one."""
    ids: list[str | None] = [None] * n_runs
    for chunk in chunks:
        group = f"g-{new_id()}" if len(chunk) > 1 else None
        for index in chunk:
            ids[index] = group
    return ids


def send_group(queue: TaskQueue, store: Store, run_ids: list[str]) -> None:
    """Queue a group on its owner's fair-share queue and send its token; if Redis or the
    broker refuses, fail the runs rather than leave them queued (the scheduler drops a group
    whose runs all ended)."""
    try:
        FairQueue(store.client, prefix=store.keys.prefix).enqueue_runs(run_ids)
        queue.send_token()
    except Exception as exc:
        for run_id in run_ids:
            store.finish_run(run_id=run_id, status="failed", error=f"could not be queued: {exc}")
        raise
