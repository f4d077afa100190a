"""Celery tasks: thin wrappers that hand run ids to the runner.

`train_next` (a fair-share token, no arguments) is what the API and staged sweeps send;
`train_group` (explicit run ids, no fair share) stays for tools and older messages.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from lab.fairshare import train_next
from lab.queue import ADVANCE_SWEEP, TRAIN_GROUP, TRAIN_NEXT
from lab.stages import advance_sweep
from worker import leases
from worker.celery_app import app, queue, send_token
from worker.runner import run_group
from worker.settings import get_settings
from worker.store import get_store


@app.task(name=TRAIN_GROUP, bind=True)
def train_group_task(self: Task, run_ids: list[str]) -> dict[str, Any]:
    """Train a group of runs sharing a fusion key, fused, and report through the run store."""
    return train_runs(list(run_ids), worker=self.request.hostname)


def train_runs(run_ids: list[str], *, worker: str, claim: str | None = None) -> dict[str, Any]:
    """What both tasks do with a group: train it and record how each run ended."""
    return run_group(
        run_ids, store=get_store(), settings=get_settings(), worker=worker, claim=claim
    )


@app.task(name=TRAIN_NEXT, bind=True)
def train_next_task(self: Task) -> dict[str, Any]:
    """Train the group the fair-share scheduler picks for this token (none: nothing to do)."""
    settings = get_settings()
    return train_next(
        claim=self.request.id,
        store=get_store(),
        train=lambda run_ids: train_runs(
            run_ids, worker=self.request.hostname, claim=self.request.id
        ),
        send_token=send_token,
        visibility_timeout_s=settings.visibility_timeout_s,
        hold_claim=lambda claim: leases.holding_claim(get_store(), claim, settings=settings),
        max_models=settings.max_fused_models if settings.fuse_across else 1,
    )


@app.task(name=ADVANCE_SWEEP)
def advance_sweep_task(sweep_id: str) -> int:
    """Move a learned sweep on where torch may load (its GP batch); the moves made."""
    settings = get_settings()
    max_models = settings.max_fused_models
    return advance_sweep(
        sweep_id, store=get_store(), queue=queue(), max_models=max_models, torch_ok=True
    )
