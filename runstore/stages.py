"""A staged sweep's stage record and its moves, each one atomic (WATCH on the record's key).

The record (JSON at Keys.sweep_stages) holds `status` (running, finished, ended, cancelled),
`reason` (why it ended early), `current` (0-based index of the running stage) and `stages`:
per stage `field`, `values`, `status` (pending, running, finished), `run_ids`, `parents`
(each run's parent winner), `kept` (runs of an earlier stage the stage holds again: a
winner whose configuration the stage repeats is not trained twice; they come first in
`run_ids`, each its own parent) and `winners`. While the record is running the sweep hash's
n_runs counts one run more than exist, so the sweep's stream and `done` wait for the stages
still to come; every move out of running gives that run back.

`bounds` holds each stage's most runs; while the record runs, the bounds of the stages after
`current` are promised to the owner's quota (the counter Keys.owner_promised, summed over
their running staged sweeps, counted by max_queued). Creating a stage releases its bound,
and every move out of running releases what is left, in the same transaction as the move.

While the record runs, its sweep is in Keys.staged_running, so the repair pass finds the
stage changes a vanished process cut off without scanning (lab/stages.py `resume`); each run
a stage move creates carries its stage number (the run hash's `stage`), so the strays leave
it to that repair (runstore/strays.py).

Which runs win and what the next stage holds is the planner's business (lab/stages.py);
this module only applies a plan exactly once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from runstore.codec import dumps
from runstore.events import TERMINAL
from runstore.records import new_run, queue_run
from runstore.replies import decoded, members
from runstore.store import Store


@dataclass
class StagePlan:
    """What a planner decides once every run of the current stage has ended."""

    winners: list[str]
    configs: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)  # each new run's parent winner
    groups: list[str | None] = field(default_factory=list)  # each new run's fused_group
    chunks: list[list[int]] = field(default_factory=list)  # indices of configs, one task each
    kept: list[str] = field(default_factory=list)  # winners the next stage repeats as they are
    repeats: list[int] = field(default_factory=list)  # each new run's repeat index (none: 0)
    reason: str | None = None  # why the sweep ends here when a next stage exists


@dataclass
class Advanced:
    """A stage move that happened: the plan and the runs it created (maybe none)."""

    plan: StagePlan
    runs: list[dict[str, Any]]


T = TypeVar("T")
Planner = Callable[[dict[str, Any], dict[str, Any], list[dict[str, Any]]], StagePlan]


def get(store: Store, sweep_id: str) -> dict[str, Any] | None:
    """The sweep's stage record, or None for a sweep that is not staged."""
    raw = store.client.get(store.keys.sweep_stages(sweep_id))
    return json.loads(raw) if raw else None


def running(store: Store) -> list[str]:
    """The ids of the staged sweeps whose stage record is running, oldest first."""
    return members(store.client.zrange(store.keys.staged_running(), 0, -1))


def start(
    store: Store,
    *,
    sweep_id: str,
    owner: str,
    stages: list[tuple[str, list[Any]]],
    run_ids: list[str],
    bounds: list[int],
) -> dict[str, Any]:
    """Record a new staged sweep whose first stage's runs exist, promising its owner's quota
    the most runs of each later stage (bounds: per stage); returns the record."""
    record: dict[str, Any] = {
        "status": "running",
        "reason": None,
        "current": 0,
        "bounds": bounds,
        "stages": [
            {
                "field": f,
                "values": v,
                "status": "pending",
                "run_ids": [],
                "parents": [],
                "kept": [],
                "winners": [],
            }
            for f, v in stages
        ],
    }
    first = record["stages"][0]
    first.update(status="running", run_ids=list(run_ids), parents=[None] * len(run_ids))
    pipe = store.client.pipeline(transaction=True)
    pipe.set(store.keys.sweep_stages(sweep_id), dumps(record))
    pipe.hincrby(store.keys.sweep(sweep_id), "n_runs", 1)
    pipe.incrby(store.keys.owner_promised(owner), _promised(record))
    pipe.zadd(store.keys.staged_running(), {sweep_id: int(time.time() * 1000)})
    pipe.execute()
    return record


def advance(store: Store, sweep_id: str, planner: Planner) -> Advanced | None:
    """Apply the planner's plan once every run of the current stage has ended; None when
    the stage is still going, the sweep is not running, or another process got there first."""

    def move(pipe: Any, record: dict[str, Any]) -> Advanced | None:
        runs = store.get_runs(record["stages"][record["current"]]["run_ids"], epochs=False)
        if any(run["status"] not in TERMINAL for run in runs):
            return None
        sweep = store.get_sweep(sweep_id)
        if sweep is None:  # deleted under us
            return None
        plan = planner(sweep, record, runs)
        return Advanced(plan, _apply(store, pipe, sweep, record, plan))

    return _with_running_record(store, sweep_id, move, default=None)


def stop(store: Store, sweep_id: str, *, status: str, reason: str) -> bool:
    """Move a running staged sweep to `status` (ended, cancelled): no stage follows."""

    def move(pipe: Any, record: dict[str, Any]) -> bool:
        record.update(status=status, reason=reason)
        owner = decoded(store.client.hget(store.keys.sweep(sweep_id), "owner"))
        pipe.multi()
        _end(store, pipe, sweep_id, owner, record)
        pipe.execute()
        return True

    return _with_running_record(store, sweep_id, move, default=False)


def grow(
    store: Store,
    sweep_id: str,
    *,
    bounds: list[int],
    spec: dict[str, Any],
    expected: dict[str, Any],
) -> bool:
    """Append field-less stages (a learned sweep's batches, each at most its bound of runs) to
    a running or finished record and store the sweep's grown `spec`, promising the bounds to
    its owner's quota; a finished record runs again from its last batch (the next advance
    asks the first new one). False when the record ended otherwise or the spec changed."""
    key, sweep_key = store.keys.sweep_stages(sweep_id), store.keys.sweep(sweep_id)
    with store.client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(key, sweep_key)
            record, sweep = _load(decoded(pipe.get(key))), store.get_sweep(sweep_id)
            if record is None or sweep is None or dumps(sweep["spec"]) != dumps(expected):
                return False
            if record["status"] not in ("running", "finished"):
                return False
            blank = {"field": None, "status": "pending"}
            lists = ("values", "run_ids", "parents", "kept", "winners")
            record["stages"] += [{**blank, **{k: [] for k in lists}} for _ in bounds]
            record["bounds"] = record.get("bounds", []) + bounds
            reopened = record["status"] == "finished"
            record.update(status="running", reason=None)
            pipe.multi()
            pipe.hset(sweep_key, "spec", dumps(spec))
            pipe.incrby(store.keys.owner_promised(sweep["owner"]), sum(bounds))
            if reopened:
                pipe.zadd(store.keys.staged_running(), {sweep_id: int(time.time() * 1000)})
            _write(store, pipe, sweep_id, record, n_runs=1 if reopened else 0)
            pipe.execute()
            return True
        except redis.WatchError:
            return False


def _with_running_record(
    store: Store, sweep_id: str, move: Callable[[Any, dict[str, Any]], T], *, default: T
) -> T:
    """`move(pipe, record)` on the running stage record with its key WATCHed, retried from
    a fresh read whenever the key changes before `move` executes its MULTI; `default` when
    there is no record or it is no longer running."""
    key = store.keys.sweep_stages(sweep_id)
    with store.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                record = _load(decoded(pipe.get(key)))
                if record is None or record["status"] != "running":
                    return default
                return move(pipe, record)
            except redis.WatchError:
                continue


def _load(raw: str | None) -> dict[str, Any] | None:
    return json.loads(raw) if raw else None


def _apply(
    store: Store, pipe: Any, sweep: dict[str, Any], record: dict[str, Any], plan: StagePlan
) -> list[dict[str, Any]]:
    """Queue the plan's writes in the watched pipeline and execute them."""
    index = record["current"]
    record["stages"][index].update(status="finished", winners=plan.winners)
    repeats = plan.repeats or [0] * len(plan.configs)
    runs = [
        new_run(
            owner=sweep["owner"],
            spec=spec,
            sweep_id=sweep["id"],
            varied=varied,
            fused_group=group,
            repeat=repeat,
        )
        for (varied, spec), group, repeat in zip(plan.configs, plan.groups, repeats, strict=True)
    ]
    last = index + 1 == len(record["stages"])
    pipe.multi()
    if last or not (runs or plan.kept):
        reason = None if last else plan.reason
        record.update(status="finished" if last else "ended", reason=reason)
        _end(store, pipe, sweep["id"], sweep["owner"], record)
    else:
        before = _promised(record)
        _queue_stage(store, pipe, sweep, record, runs, plan)  # current moves on by one
        _release(store, pipe, sweep["owner"], before - _promised(record))
    pipe.execute()
    return runs


def _queue_stage(
    store: Store,
    pipe: Any,
    sweep: dict[str, Any],
    record: dict[str, Any],
    runs: list[dict[str, Any]],
    plan: StagePlan,
) -> None:
    """Queue the writes of the next stage: its runs, the sweep's run ids, the record."""
    run_ids = [run["id"] for run in runs]
    record["current"] += 1
    record["stages"][record["current"]].update(
        status="running",
        run_ids=plan.kept + run_ids,
        parents=plan.kept + plan.parents,
        kept=plan.kept,
    )
    for run in runs:
        queue_run(pipe, store.keys, run, index=store.creation_index)
        pipe.hset(store.keys.run(run["id"]), "stage", record["current"] + 1)
    pipe.hset(store.keys.sweep(sweep["id"]), "run_ids", dumps(sweep["run_ids"] + run_ids))
    _write(store, pipe, sweep["id"], record, n_runs=len(runs))


def _end(store: Store, pipe: Any, sweep_id: str, owner: str | None, record: dict[str, Any]) -> None:
    """Queue the writes of a move out of running (record already updated): what is left of
    the promise is given back, the extra run too, and the sweep leaves the running index."""
    _release(store, pipe, owner, _promised(record))
    pipe.zrem(store.keys.staged_running(), sweep_id)
    _write(store, pipe, sweep_id, record, n_runs=-1)


def _promised(record: dict[str, Any]) -> int:
    """The runs the stages after the current one may still create (records written before
    stages had bounds promise nothing)."""
    return sum(record.get("bounds", [])[record["current"] + 1 :])


def _release(store: Store, pipe: Any, owner: str | None, runs: int) -> None:
    """Queue giving back `runs` of a sweep's promise to its owner's quota."""
    if runs > 0 and owner:
        pipe.decrby(store.keys.owner_promised(owner), runs)


def _write(store: Store, pipe: Any, sweep_id: str, record: dict[str, Any], *, n_runs: int) -> None:
    """Queue the record, the n_runs change and a `stage` event on the sweep stream."""
    pipe.set(store.keys.sweep_stages(sweep_id), dumps(record))
    pipe.hincrby(store.keys.sweep(sweep_id), "n_runs", n_runs)
    data = {
        "status": record["status"],
        "reason": record["reason"],
        "current": record["current"],
        "stages": public_stages(record),
    }
    pipe.xadd(store.keys.sweep_events(sweep_id), {"type": "stage", "data": dumps(data)})


def public_stages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The stages as the API shows them (without the parents)."""
    keys = ("field", "values", "status", "run_ids", "winners")
    return [
        {**{k: stage[k] for k in keys}, "kept": stage.get("kept", [])} for stage in record["stages"]
    ]
