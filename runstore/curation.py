"""Looking after a user's sweeps: list them, label them, retry their runs, add runs to them.

A continuation (a sweep extended by epochs) is the same attempt trained further: the run keeps
its epochs and its event stream, its spec's epochs grow, `continuing` says where its stored
state is and `extensions` (oldest first) what it was before each, until its worker ends it.

A retry is a new attempt of the same run (same id, same spec): the old outcome moves into the
run hash's `attempts` (JSON list, oldest first), the run is queued again from epoch 0 (its
event stream restarts: its epochs belonged to the old attempt) and its sweep's n_terminal
gives the run back. Each write is one WATCHed transaction, so a run is requeued once however
many retries race, and never while a worker could still be writing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from runstore.codec import dumps, encode
from runstore.records import queue_run
from runstore.replies import hash_fields, members
from runstore.store import Store

RETRYABLE = frozenset({"failed", "cancelled", "diverged"})
# the run hash's fields an attempt owns: cleared when the run is queued again
_ATTEMPT_FIELDS = (
    "started_at",
    "finished_at",
    "worker",
    "device",
    "checkpoint",
    "result",
    "continuing",
)
_GONE_FIELDS = ("holder", "claim")


def sweep_ids(store: Store, *, owner: str | None) -> list[str]:
    """Newest first: one owner's sweep ids, or every sweep's (owner None: the admin's)."""
    key = store.keys.all_sweeps() if owner is None else store.keys.owner_sweeps(owner)
    return members(store.client.zrevrange(key, 0, -1))


def sweep_heads(store: Store, sweep_ids: list[str]) -> list[dict[str, Any]]:
    """Each existing sweep's listing fields (no runs read): id, name, tags, n_runs, n_terminal."""
    fields = ["id", "name", "tags", "n_runs", "n_terminal"]
    pipe = store.client.pipeline(transaction=False)
    for sweep_id in sweep_ids:
        pipe.hmget(store.keys.sweep(sweep_id), fields)
    heads = []
    for values in pipe.execute():
        if values[0]:
            heads.append(dict(zip(fields, values, strict=True)))
    return heads


def annotate(store: Store, *, key: str, fields: dict[str, Any]) -> None:
    """Set name / tags / notes on an existing run or sweep hash (None clears a field)."""
    store.client.hset(key, mapping=hash_fields(encode(fields)))


def requeue_attempt(store: Store, *, run_id: str, fused_group: str | None) -> bool:
    """Queue a failed, cancelled or diverged run again as a new attempt; False if it is no
    longer one of those (another retry got there first, or it was deleted)."""
    return _requeued(
        store,
        run_id,
        lambda run: run["status"] in RETRYABLE,
        lambda pipe, run: _requeue(store, pipe, run, fused_group),
    )


def _requeued(
    store: Store,
    run_id: str,
    still: Callable[[dict[str, Any]], bool],
    writes: Callable[[Any, dict[str, Any]], None],
) -> bool:
    """Queue `writes(pipe, run)` in one transaction WATCHing the run, retried from a fresh read
    while the run changes under it; False when it is gone or no longer `still(run)`."""
    with store.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(store.keys.run(run_id))
                run = store.get_run(run_id)
                if run is None or not still(run):
                    return False
                pipe.multi()
                writes(pipe, run)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def _requeue(store: Store, pipe: Any, run: dict[str, Any], fused_group: str | None) -> None:
    """Queue the writes that turn the ended run into a queued new attempt."""
    keys, run_id = store.keys, run["id"]
    attempts = [*(run.get("attempts") or []), past_attempt(run)]
    pipe.hdel(keys.run(run_id), *_ATTEMPT_FIELDS, *_GONE_FIELDS)
    fields = {
        "status": "queued",
        "error": None,
        "cancel_requested": False,
        "last_epoch": 0,
        "attempts": attempts,
        "fused_group": fused_group,
    }
    pipe.hset(keys.run(run_id), mapping=hash_fields(encode(fields)))
    pipe.delete(keys.run_events(run_id))  # epoch k is id k-0: the new attempt starts again at 1
    _queued_again(store, pipe, run, {"attempt": len(attempts) + 1}, after_epoch=0)


def _queued_again(
    store: Store, pipe: Any, run: dict[str, Any], why: dict[str, Any], *, after_epoch: int
) -> None:
    """Queue the writes every requeue shares: the run active again for its owner, a `queued`
    status event after its last epoch kept (with `why`), and its sweep's end given back."""
    keys, run_id = store.keys, run["id"]
    pipe.sadd(keys.owner_active(run["owner"]), run_id)
    data = dumps({"status": "queued", "at": time.time(), **why})
    pipe.xadd(keys.run_events(run_id), {"type": "status", "data": data}, id=f"{after_epoch}-*")
    if run.get("sweep_id"):
        pipe.hincrby(keys.sweep(run["sweep_id"]), "n_terminal", -1)
        entry = {"type": "status", "run_id": run_id, "data": data}
        pipe.xadd(keys.sweep_events(run["sweep_id"]), entry)


def requeue_continuation(
    store: Store,
    *,
    run_id: str,
    spec: dict[str, Any],
    model: dict[str, Any],
    fused_group: str | None,
) -> bool:
    """Queue a succeeded run to train on to `spec` (its spec with more epochs) from the stored
    state of `model`; False when the run is no longer as its caller read it (another extend
    got there first, or its model changed)."""
    return _requeued(
        store,
        run_id,
        lambda run: run["status"] == "succeeded" and run.get("model") == model,
        lambda pipe, run: _continue(store, pipe, run, spec, fused_group),
    )


def _continue(
    store: Store, pipe: Any, run: dict[str, Any], spec: dict[str, Any], fused_group: str | None
) -> None:
    """Queue the writes that turn the succeeded run into a queued continuation."""
    keys, run_id, before = store.keys, run["id"], run["spec"]["epochs"]
    extension = {
        "from_epoch": before,
        "to_epoch": spec["epochs"],
        "at": time.time(),
        "result": run.get("result"),
        "finished_at": run.get("finished_at"),
    }
    pipe.hdel(keys.run(run_id), *_ATTEMPT_FIELDS, *_GONE_FIELDS)
    fields = {
        "status": "queued",
        "spec": spec,
        "error": None,
        "cancel_requested": False,
        "continuing": {"from_epoch": before, "save": run["model"]["save"]},
        "extensions": [*(run.get("extensions") or []), extension],
        "fused_group": fused_group,
    }
    pipe.hset(keys.run(run_id), mapping=hash_fields(encode(fields)))
    _queued_again(store, pipe, run, {"continuing": extension}, after_epoch=before)


def past_attempt(run: dict[str, Any]) -> dict[str, Any]:
    """What the run's history keeps of an ended attempt: its outcome, not its epochs."""
    epochs = run.get("epochs") or []
    return {
        "attempt": len(run.get("attempts") or []) + 1,
        "status": run["status"],
        "error": run.get("error"),
        "result": run.get("result"),
        "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "epochs": len(epochs),
        "last": epochs[-1] if epochs else None,
        "worker": run.get("worker"),
        "device": run.get("device"),
    }


def append_runs(
    store: Store,
    *,
    sweep_id: str,
    runs: list[dict[str, Any]],
    expected: dict[str, Any],
    spec: dict[str, Any],
) -> bool:
    """Add new queued runs to a sweep whose spec is still `expected`, and store its grown
    `spec`, in one transaction WATCHing the sweep; False when the sweep is gone or its spec
    changed (another extend came first: the caller's runs were drawn from the old spec)."""
    key = store.keys.sweep(sweep_id)
    with store.client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(key)
            sweep = store.get_sweep(sweep_id)
            if sweep is None or dumps(sweep["spec"]) != dumps(expected):
                return False
            pipe.multi()
            for run in runs:
                queue_run(pipe, store.keys, run, index=store.creation_index)
            run_ids = sweep["run_ids"] + [run["id"] for run in runs]
            pipe.hset(key, mapping=hash_fields(encode({"run_ids": run_ids, "spec": spec})))
            pipe.hincrby(key, "n_runs", len(runs))
            pipe.execute()
            return True
        except redis.WatchError:
            return False
