"""The body of the training task: start runs, train them fused with mlpcore, report to runstore.

A task's runs share a fusion key (the API groups a sweep that way). The worker loads the
dataset once, splits the runs into chunks that fit the device's free memory and its model
cap, and trains the chunks one after another, each as one stacked model. A run stays queued
until its chunk starts, so its status, started_at and events read as if it ran alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import torch

from mlpcore.data import TensorData, load_dataset
from mlpcore.errors import MlpcoreError
from mlpcore.fused import train_group
from mlpcore.memory import free_bytes, split_to_fit
from mlpcore.spec import RunSpec
from mlpcore.train import Callback, EpochMetrics, RunResult, resolve_device
from runstore import TERMINAL, Store, new_id
from worker import stages
from worker.checkpoints import GroupCheckpoint, checkpoint_path
from worker.early_stop import with_early_stopping
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


@dataclass(frozen=True)
class Due:
    """A run this task should train: its spec on the worker's device, its planned group."""

    run_id: str
    spec: RunSpec
    group: str | None


def run_group(
    run_ids: list[str], *, store: Store, settings: WorkerSettings, worker: str
) -> dict[str, Any]:
    """Train the runs that are still due, fused in chunks that fit, and record how each ended."""
    due = [d for d in (_due(r, store, settings) for r in run_ids) if d is not None]
    if due:
        _train_due(due, store=store, settings=settings, worker=worker)
    records = store.get_runs(list(run_ids), epochs=False)
    stages.after_task(records, store=store, settings=settings)  # the next stage, if one is due
    return {"runs": {r["id"]: r["status"] for r in records}}


def _due(run_id: str, store: Store, settings: WorkerSettings) -> Due | None:
    """The run with its spec on the worker's device; None (failing a bad spec) to skip it."""
    run = next(iter(store.get_runs([run_id], epochs=False)), None)
    if run is None or run["status"] in TERMINAL:
        log.info("run %s: %s, skipped", run_id, run["status"] if run else "missing")
        return None
    try:
        spec = RunSpec(**run["spec"])
        device = _device(settings.device if spec.device == "auto" else spec.device)
    except (MlpcoreError, ValueError, RuntimeError) as exc:
        _fail(store, [run_id], exc)
        return None
    return Due(run_id, spec.model_copy(update={"device": device}), run["fused_group"])


def _device(name: str) -> str:
    """The device with its index, as its tensors report it ('cuda' -> 'cuda:0')."""
    return str(torch.empty(0, device=resolve_device(name)).device)


def _train_due(due: list[Due], *, store: Store, settings: WorkerSettings, worker: str) -> None:
    """Load the data once, split the runs to fit, then start and train each chunk in turn."""
    _configure_torch(settings)
    try:
        data = load_dataset(due[0].spec.dataset, device=due[0].spec.device,
                            data_dir=settings.data_dir)
        chunks = split_runs([d.spec for d in due], data=data, settings=settings)
    except Exception as exc:  # a dataset that does not load fails every run of the task
        log.exception("runs %s failed", [d.run_id for d in due])
        _fail(store, [d.run_id for d in due], exc)
        return
    log.info("runs %s: %d model(s) in chunk(s) of %s", [d.run_id for d in due], len(due),
             [len(c) for c in chunks])
    for chunk, group in zip(chunks, chunk_groups(due, chunks), strict=True):
        members = [due[i] for i in chunk]
        key = group or members[0].run_id
        started = [d for d in members if _start(d, store, worker, group=group, key=key)]
        if started:
            _train(started, data=data, key=key, store=store, settings=settings)


def split_runs(
    specs: list[RunSpec], *, data: TensorData, settings: WorkerSettings
) -> list[list[int]]:
    """Consecutive chunks of spec indices, each within memory_fraction of the device's free
    memory and max_fused_models."""
    budget = int(free_bytes(data.device) * settings.memory_fraction)
    chunks = split_to_fit(specs, num_features=data.num_features, num_classes=data.num_classes,
                          budget_bytes=budget, max_models=settings.max_fused_models)
    if len(chunks) > 1:
        log.info("%d models split into %d chunks (budget %.1f MiB on %s, at most %d a chunk)",
                 len(specs), len(chunks), budget / 2**20, data.device, settings.max_fused_models)
    return chunks


def chunk_groups(due: list[Due], chunks: list[list[int]]) -> list[str | None]:
    """The fused_group each chunk trains as: the planned group when the runs train as one
    chunk, `<group>.<k>` for the k-th of several, None for a chunk of one (it runs alone)."""
    planned = {d.group for d in due}
    base = planned.pop() if len(planned) == 1 else None
    base = base or f"g-{new_id()}"
    names = [base] if len(chunks) == 1 else [f"{base}.{k}" for k in range(1, len(chunks) + 1)]
    return [name if len(chunk) > 1 else None for name, chunk in zip(names, chunks, strict=True)]


def _start(d: Due, store: Store, worker: str, *, group: str | None, key: str) -> bool:
    """Mark the run running in its group; False (finishing a pending cancel) to skip it."""
    outcome = store.mark_running(run_id=d.run_id, worker=worker, device=d.spec.device,
                                 checkpoint=key, fused_group=group)
    if outcome == "cancel":
        store.finish_run(run_id=d.run_id, status="cancelled", error=None)
    if outcome != "running":
        log.info("run %s: %s, not started", d.run_id, outcome)
    return outcome == "running"


def _train(
    started: list[Due], *, data: TensorData, key: str, store: Store, settings: WorkerSettings
) -> None:
    """Train one chunk as one group, checkpointing every epoch; an exception fails it all."""
    run_ids = [d.run_id for d in started]
    reporters = [StoreReporter(store, run_id, poll_s=settings.cancel_poll_s) for run_id in run_ids]
    saver = GroupCheckpoint(checkpoint_path(settings.checkpoint_dir, key), run_ids)
    callbacks = with_early_stopping(reporters, store=store)  # plain reporters unless asked
    results: list[RunResult] = []
    try:
        results = train_group([d.spec for d in started], callbacks=callbacks, data=data,
                              on_checkpoint=saver)
    except Exception as exc:
        log.exception("runs %s failed", run_ids)
        _fail(store, run_ids, exc)
    # the group has ended; a process that dies (or is shut down) mid-group skips this and
    # leaves the file to resume from
    saver.remove()
    _release(data.device)
    log.info("runs %s: %d checkpoint(s) written to %s", run_ids, saver.writes, saver.path)
    for reporter, result in zip(reporters, results, strict=False):  # none after a failure
        if not reporter.finished:  # on_end normally did it already
            _finish(store, reporter.run_id, result)


def _configure_torch(settings: WorkerSettings) -> None:
    """Apply the CPU thread count (oversubscribed cores make torch many times slower)."""
    if settings.torch_threads and torch.get_num_threads() != settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)


def _release(device: torch.device) -> None:
    """Hand a finished group's cached GPU memory back: other workers share the device."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _fail(store: Store, run_ids: list[str], exc: BaseException) -> None:
    """Fail unfinished runs with the exception as the reason."""
    for run_id in run_ids:
        store.finish_run(run_id=run_id, status="failed", error=f"{type(exc).__name__}: {exc}")


def _finish(store: Store, run_id: str, result: RunResult) -> None:
    """Record a run's end: its status, final numbers and, unless it succeeded, the reason."""
    error = None if result.status == "succeeded" else result.reason
    store.finish_run(run_id=run_id, status=result.status, result=result.result, error=error)
    log.info("run %s: %s", run_id, result.status)
