"""The body of the training task: start runs, train them fused with mlpcore, report to runstore.

A task's runs share a fusion key (the API groups a sweep that way). The worker loads the
dataset once, splits the runs into chunks that fit the device's free memory and its model
cap, and trains the chunks one after another, each as one stacked model. A run stays queued
until its chunk starts, so its status, started_at and events read as if it ran alone.

Nothing is lost (runstore/leases.py, worker/leases.py): a run starts under this process's
lease and every write checks it, so a worker that lost its runs writes nothing more; a group
whose runs were requeued (their worker vanished, or shut down) resumes from its checkpoint
file, every epoch recorded once; on SIGTERM a group hands its runs back at the next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from redis.exceptions import RedisError

from artifacts import DirectoryStore
from lab.stages import advance_sweeps
from mlpcore.data import TensorData, load_dataset
from mlpcore.device import set_threads
from mlpcore.errors import MlpcoreError
from mlpcore.spec import RunSpec
from mlpcore.status import TERMINAL, RunStatus
from mlpcore.train import RunResult, resolve_device
from runstore import Store
from worker import leases, speed
from worker.celery_app import queue, send_token
from worker.checkpoints import (
    Due,
    Ended,
    GroupCheckpoint,
    Written,
    checkpoint_path,
    remove_earlier,
    resumable,
    train_resumable,
)
from worker.chunks import chunk_groups, split_runs
from worker.continuing import continued_states
from worker.criteria import best_by
from worker.early_stop import with_early_stopping
from worker.reporter import StoreReporter, finish
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def run_group(
    run_ids: list[str],
    *,
    store: Store,
    settings: WorkerSettings,
    worker: str,
    claim: str | None = None,
    written: Written | None = None,
) -> dict[str, Any]:
    """Train the runs that are still due, fused in chunks that fit, and record how each ended;
    `written` is told of every checkpoint file written (path, state) as training goes."""
    due = [d for d in (_due(r, store, settings) for r in run_ids) if d is not None]
    for start in sorted({d.start_epoch for d in due}):  # runs continued together share it
        part = [d for d in due if d.start_epoch == start]
        _train_due(
            part, store=store, settings=settings, worker=worker, claim=claim, written=written
        )
    records = store.get_runs(list(run_ids), epochs=False)
    # the next stage of a staged sweep, if one of these runs ended its stage
    advance_sweeps(
        records, store=store, queue=queue(), max_models=settings.max_fused_models, torch_ok=True
    )
    # still running once this task let go of its runs: another worker holds them
    held = [r["id"] for r in records if r["status"] == RunStatus.running]
    outcome: dict[str, Any] = {"runs": {r["id"]: r["status"] for r in records}}
    return {**outcome, "held_elsewhere": held} if held else outcome


def _due(run_id: str, store: Store, settings: WorkerSettings) -> Due | None:
    """The run with its spec on the worker's device; None (failing a bad spec) to skip it."""
    run = next(iter(store.get_runs([run_id], epochs=False)), None)
    if run is None or run["status"] in TERMINAL:
        log.info("run %s: %s, skipped", run_id, run["status"] if run else "missing")
        return None
    if run["reaped"] >= settings.max_reaped:
        _fail(
            store,
            [run_id],
            RuntimeError(
                f"its worker vanished {run['reaped']} times while training it (killed, or out of "
                f"memory?); not retried again (MLPLAB_MAX_REAPED)"
            ),
        )
        return None
    try:
        spec = RunSpec(**run["spec"])
        device = _device(settings.device if spec.device == "auto" else spec.device)
    except (MlpcoreError, ValueError, RuntimeError) as exc:
        _fail(store, [run_id], exc)
        return None
    spec = spec.model_copy(update={"device": device})
    return Due(run_id, spec, run["fused_group"], run["checkpoint"], run.get("continuing"))


def _device(name: str) -> str:
    """The device with its index, as its tensors report it ('cuda' -> 'cuda:0')."""
    return str(torch.empty(0, device=resolve_device(name)).device)


def _train_due(
    due: list[Due],
    *,
    store: Store,
    settings: WorkerSettings,
    worker: str,
    claim: str | None,
    written: Written | None,
) -> None:
    """Load the data once, split the runs to fit, then start and train each chunk in turn;
    on shutdown, hand back the chunk in training and those not started yet."""
    set_threads(settings.torch_threads)
    try:
        data = load_dataset(
            due[0].spec.dataset, device=due[0].spec.device, data_dir=settings.data_dir
        )
        chunks = split_runs([d.spec for d in due], data=data, settings=settings)
    except Exception as exc:  # a dataset that does not load fails every run of the task
        log.exception("runs %s failed", [d.run_id for d in due])
        _fail(store, [d.run_id for d in due], exc)
        return
    log.info(
        "runs %s: %d model(s) in chunk(s) of %s",
        [d.run_id for d in due],
        len(due),
        [len(c) for c in chunks],
    )
    for n, (chunk, group) in enumerate(zip(chunks, chunk_groups(due, chunks), strict=True)):
        members = [due[i] for i in chunk]
        key = group or members[0].run_id
        try:
            if leases.SHUTDOWN.is_set():
                raise leases.HandBack
            started = [
                d
                for d in members
                if _start(d, store, worker, settings, group=group, key=key, claim=claim)
            ]
            if started:
                _train(started, data=data, key=key, store=store, settings=settings, written=written)
        except leases.HandBack:
            rest = [due[i].run_id for c in chunks[n:] for i in c]
            _hand_back(store, rest)
            return


def _start(
    d: Due,
    store: Store,
    worker: str,
    settings: WorkerSettings,
    *,
    group: str | None,
    key: str,
    claim: str | None,
) -> bool:
    """Mark the run running in its group under this process's lease; False to skip it
    (finishing a pending cancel; another live worker holds it)."""
    outcome = store.mark_running(
        run_id=d.run_id,
        worker=worker,
        device=d.spec.device,
        checkpoint=key,
        fused_group=group,
        holder=leases.holder(),
        lease_s=leases.ttl_s(settings),
        claim=claim,
    )
    if outcome == "cancel":
        store.finish_run(run_id=d.run_id, status=RunStatus.cancelled, error=None)
    if outcome != "running":
        log.info("run %s: %s, not started", d.run_id, outcome)
        return False
    leases.hold([d.run_id])
    return True


def _hand_back(store: Store, run_ids: list[str]) -> None:
    """Requeue this worker's runs of the task (and its unstarted ones) in front, for others."""
    requeued = store.leases.hand_back(
        holder=leases.holder(),
        run_ids=run_ids,
        reason="its worker shut down; requeued to resume from its last checkpoint",
    )
    leases.let_go(run_ids)
    if requeued:
        send_token()
    log.warning("shutting down: handed back run(s) %s", requeued)


def _train(
    started: list[Due],
    *,
    data: TensorData,
    key: str,
    store: Store,
    settings: WorkerSettings,
    written: Written | None,
) -> None:
    """Train one chunk as one group (resuming its checkpoint when there is one), writing a
    checkpoint every epoch; an exception fails it all, HandBack and Redis errors leave it to
    be resumed."""
    path = checkpoint_path(settings.checkpoint_dir, key)
    earlier = {d.checkpoint for d in started}  # the file of their last attempt, if one
    prior = earlier.pop() if len(earlier) == 1 else None
    group, resume = resumable(
        started, checkpoint_path(settings.checkpoint_dir, prior or key), store=store
    )
    run_ids = [d.run_id for d in started]
    files = DirectoryStore(settings.artifact_dir)  # the runs' models, at their ends
    states = None if resume is not None else continued_states(group, files=files, store=store)
    reporters = {
        d.run_id: StoreReporter(store, d.run_id, poll_s=settings.cancel_poll_s, files=files)
        for d in started
    }
    wrapped = dict(
        zip(reporters, with_early_stopping(list(reporters.values()), store=store), strict=True)
    )  # plain reporters unless the sweep asks for early stopping
    callbacks = [wrapped.get(d.run_id) or Ended() for d in group]
    saver = GroupCheckpoint(
        path,
        [d.run_id for d in group],
        every_s=settings.checkpoint_every_s,
        background=written is None,  # a `written` hook acts before training goes on
        written=written,
    )
    results: list[RunResult] = []
    try:
        criteria = best_by(store, [d.run_id for d in group])
        results = train_resumable(
            group,
            callbacks,
            data=data,
            saver=saver,
            resume=resume,
            best_by=criteria,
            batched=settings.batched_matmul,
            share=settings.share_prefixes,
            continue_from=states,
        )
        speed.note(results)
    except leases.HandBack:
        _keep_newest(saver, reporters.values())
        raise  # the caller hands the runs back; the file stays to resume from
    except RedisError as exc:  # Redis gone for good: the leases lapse, the reaper requeues
        log.error("runs %s: Redis unreachable, leaving them to be resumed: %s", run_ids, exc)
        _keep_newest(saver, reporters.values())
        return
    except Exception as exc:
        log.exception("runs %s failed", run_ids)
        _fail(store, run_ids, exc, held=True)
    finally:
        saver.close()  # no write after this: the file is settled, removed or another's
        leases.let_go(run_ids)
    # the group has ended; a process that dies mid-group skips this and leaves the file, and
    # so does one whose runs another worker took over (the file is that worker's now)
    if not any(r.lost for r in reporters.values()):
        saver.remove()
        remove_earlier(started, key, settings.checkpoint_dir)
    _release(data.device)
    log.info("runs %s: %d checkpoint(s) written to %s", run_ids, saver.writes, saver.path)
    for d, result in zip(group, results, strict=False):  # none after a failure
        reporter = reporters.get(d.run_id)
        if reporter is not None and not (reporter.finished or reporter.lost):  # on_end did it
            finish(store, d.run_id, result, files=files)


def _keep_newest(saver: GroupCheckpoint, reporters: Iterable[StoreReporter]) -> None:
    """Write the newest epoch's state before the runs are left to be resumed (what was trained
    since the last timed write), unless another worker holds one of them now."""
    if not any(r.lost for r in reporters):
        saver.flush()


def _release(device: torch.device) -> None:
    """Hand a finished group's cached GPU memory back: other workers share the device."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _fail(store: Store, run_ids: list[str], exc: BaseException, *, held: bool = False) -> None:
    """Fail unfinished runs with the exception as the reason; held: runs this process
    started, failed only while it still holds them."""
    holder = leases.holder() if held else None
    for run_id in run_ids:
        store.finish_run(
            run_id=run_id,
            status=RunStatus.failed,
            error=f"{type(exc).__name__}: {exc}",
            holder=holder,
        )
