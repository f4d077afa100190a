"""Celery tasks: thin wrappers that take run ids and hand them to the runner."""

from __future__ import annotations

from typing import Any

from celery import Task

from worker.celery_app import TRAIN_GROUP, app
from worker.runner import run_group
from worker.settings import get_settings
from worker.store import get_store


@app.task(name=TRAIN_GROUP, bind=True)
def train_group_task(self: Task, run_ids: list[str]) -> dict[str, Any]:
    """Train a group of runs sharing a fusion key, fused, and report through the run store."""
    return run_group(
        list(run_ids), store=get_store(), settings=get_settings(), worker=self.request.hostname
    )
