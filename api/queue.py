"""Sending training tasks to the workers, by name, through the Celery app."""

from __future__ import annotations

from celery import Celery

from worker.celery_app import TRAIN_GROUP, create_celery


class TaskQueue:
    """The API's handle on the Celery broker."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    @classmethod
    def from_url(cls, broker_url: str, *, visibility_timeout_s: int) -> TaskQueue:
        """A queue on its own Celery app for this broker."""
        return cls(create_celery(broker_url, visibility_timeout_s=visibility_timeout_s))

    def submit(self, run_ids: list[str]) -> None:
        """Queue one task that trains these runs together."""
        self.celery.send_task(TRAIN_GROUP, args=[run_ids])

    def close(self) -> None:
        """Release the broker connections."""
        self.celery.close()
