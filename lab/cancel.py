"""Cancelling: a queued run never starts, a running one stops at its next poll, a sweep stops
creating stages; a cancel that ends a stage moves its staged sweep on."""

from __future__ import annotations

from typing import Any

from lab import stages
from lab.queue import TaskQueue
from lab.views import sweep_view
from mlpcore.status import TERMINAL
from runstore import Conflict, Store

_TOOK = ("cancelled", "requested")  # runstore's cancel outcomes that changed something


def cancel_run(
    *, run: dict[str, Any], store: Store, queue: TaskQueue, max_models: int
) -> dict[str, Any]:
    """Cancel a queued run or ask a running one to stop; 409 when it already finished."""
    outcome = store.cancel_run(run_id=run["id"])
    fresh = store.get_run(run["id"]) or run
    if outcome not in _TOOK:
        raise Conflict(f"run {run['id']} already finished ({fresh['status']}); nothing to cancel")
    stages.advance_sweeps([fresh], store=store, queue=queue, max_models=max_models)
    return fresh


def cancel_sweep(*, sweep: dict[str, Any], store: Store) -> dict[str, Any]:
    """Cancel every unfinished run of the sweep; 409 when none is left."""
    stopped = stages.cancel(sweep=sweep, store=store)  # first: no stage may start after
    runs = store.get_runs(sweep["run_ids"], epochs=False)
    outcomes = [store.cancel_run(run_id=r["id"]) for r in runs if r["status"] not in TERMINAL]
    if not stopped and not any(o in _TOOK for o in outcomes):
        raise Conflict(f"sweep {sweep['id']} has no unfinished runs; nothing to cancel")
    return sweep_view(sweep=sweep, store=store)
