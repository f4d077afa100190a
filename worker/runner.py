"""The body of the training task: start runs, train them with mlpcore, report to runstore."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from mlpcore.errors import MlpcoreError
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from mlpcore.train import Callback, EpochMetrics, RunResult, resolve_device
from runstore import TERMINAL, Store
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


class StoreReporter(Callback):
    """Appends each epoch to the run's stream, polls its cancel flag (throttled), ends it."""

    def __init__(self, store: Store, run_id: str, *, poll_s: float) -> None:
        self.store = store
        self.run_id = run_id
        self.poll_s = poll_s
        self.finished = False
        self._next_poll = 0.0
        self._stop = False

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        """Publish the epoch with the wall-clock time it ended (for latency measurements)."""
        metrics_data = {**metrics.to_dict(), "ts": time.time()}
        self.store.append_epoch(run_id=self.run_id, metrics=metrics_data)

    def should_stop(self) -> bool:
        """True once a cancel was requested; Redis is read at most every poll_s seconds."""
        now = time.monotonic()
        if not self._stop and now >= self._next_poll:
            self._next_poll = now + self.poll_s
            self._stop = self.store.cancel_requested(run_id=self.run_id)
        return self._stop

    def on_end(self, result: RunResult) -> None:
        """Record the end at once: in a fused group the others may train on."""
        _finish(self.store, self.run_id, result)
        self.finished = True


def run_group(
    run_ids: list[str], *, store: Store, settings: WorkerSettings, worker: str
) -> dict[str, Any]:
    """Train the runs that are still due, together, and record how each ended."""
    started = [s for s in (_start(r, store, settings, worker) for r in run_ids) if s is not None]
    if started:
        _train(started, store=store, settings=settings)
    records = store.get_runs(list(run_ids), epochs=False)
    return {"runs": {r["id"]: r["status"] for r in records}}


def _start(
    run_id: str, store: Store, settings: WorkerSettings, worker: str
) -> tuple[str, RunSpec] | None:
    """Mark the run running and return its spec on the worker's device; None to skip it."""
    run = next(iter(store.get_runs([run_id], epochs=False)), None)
    if run is None or run["status"] in TERMINAL:
        log.info("run %s: %s, skipped", run_id, run["status"] if run else "missing")
        return None
    try:
        spec = RunSpec(**run["spec"])
        name = settings.device if spec.device == "auto" else spec.device
        device = str(resolve_device(name))
    except (MlpcoreError, ValueError) as exc:
        store.finish_run(run_id=run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        return None
    outcome = store.mark_running(run_id=run_id, worker=worker, device=device)
    if outcome == "cancel":
        store.finish_run(run_id=run_id, status="cancelled", error=None)
    if outcome != "running":
        log.info("run %s: %s, not started", run_id, outcome)
        return None
    return run_id, spec.model_copy(update={"device": device})


def _train(started: list[tuple[str, RunSpec]], *, store: Store, settings: WorkerSettings) -> None:
    """Train the started runs in one group; any exception fails them all with its reason."""
    run_ids = [run_id for run_id, _ in started]
    reporters = [StoreReporter(store, run_id, poll_s=settings.cancel_poll_s) for run_id in run_ids]
    _configure_torch(settings)
    try:
        results = train_group(
            [spec for _, spec in started], callbacks=list(reporters), data_dir=settings.data_dir
        )
    except Exception as exc:
        log.exception("runs %s failed", run_ids)
        for run_id in run_ids:
            store.finish_run(run_id=run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        return
    for reporter, result in zip(reporters, results, strict=True):
        if not reporter.finished:  # on_end normally did it already
            _finish(store, reporter.run_id, result)


def _configure_torch(settings: WorkerSettings) -> None:
    """Apply the CPU thread count (oversubscribed cores make torch many times slower)."""
    if settings.torch_threads and torch.get_num_threads() != settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)


def _finish(store: Store, run_id: str, result: RunResult) -> None:
    """Record a run's end: its status, final numbers and, unless it succeeded, the reason."""
    error = None if result.status == "succeeded" else result.reason
    store.finish_run(run_id=run_id, status=result.status, result=result.result, error=error)
    log.info("run %s: %s", run_id, result.status)
