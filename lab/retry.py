"""Repairing and growing a sweep: retry its failed, cancelled and diverged runs as new
attempts, or extend a random sweep by the next draws of its own seeded sampler, a learned one
by more batches (extending by epochs is lab/extend.py). Each is checked against the limits
and the live workers, admitted under the owner's quota, planned into fused groups and queued
exactly as a submission is (lab/submit.py). Torch-free."""

from __future__ import annotations

from typing import Any

from lab import fusion, learned
from lab.budget import runs_cost, sweep_cost
from lab.capability import check_servable
from lab.queue import TaskQueue, send_group
from lab.stages import advance_sweep
from lab.submit import Limits, admitted, check_limits
from mlpcore.errors import SpecError
from mlpcore.spec import RunSpec
from mlpcore.sweep import SweepSpec, expand_sweep
from runstore import Conflict, Store, curation, stages
from runstore.records import new_run


def retry_sweep(
    *, sweep: dict[str, Any], store: Store, queue: TaskQueue, limits: Limits
) -> list[str]:
    """Queue the sweep's failed, cancelled and diverged runs again, fused as the sweep fuses;
    the ids requeued. Conflict when it has none to retry."""
    records = store.get_runs(sweep["run_ids"], epochs=False)
    runs = [r for r in records if r["status"] in curation.RETRYABLE]
    if not runs:
        raise Conflict(f"sweep {sweep['id']} has no failed, cancelled or diverged run to retry")
    specs = [RunSpec(**run["spec"]) for run in runs]
    for run, spec in zip(runs, specs, strict=True):
        check_limits(spec, limits=limits, where=f"run {run['id']}: ")
    check_servable(specs, store=store)
    fuse = bool((sweep.get("spec") or {}).get("fuse", True))
    planned = fusion.plan(specs, fuse=fuse, max_models=limits.max_fused_models)
    owner = sweep["owner"]
    with admitted(store=store, owner=owner, runs=len(runs), cost=runs_cost(specs), limits=limits):
        requeued = [
            curation.requeue_attempt(store, run_id=run["id"], fused_group=group)
            for run, group in zip(runs, planned.groups, strict=True)
        ]
        for chunk in planned.chunks:
            ids = [runs[i]["id"] for i in chunk if requeued[i]]
            if ids:
                send_group(queue, store, ids)
    return [run["id"] for run, done in zip(runs, requeued, strict=True) if done]


def _extend_search(
    *,
    sweep: dict[str, Any],
    spec: SweepSpec,
    grown: SweepSpec,
    store: Store,
    queue: TaskQueue,
    limits: Limits,
) -> list[str]:
    """A learned sweep asks `grown.n - spec.n` more configurations, in batches of its own
    size, from a study of all its runs: promised to the quota now, asked as batches end (at
    once when the search had finished); the ids of the runs created now."""
    expand_sweep(grown, max_runs=limits.max_runs_per_sweep, points=[])  # the size, the space
    record = stages.get(store, sweep["id"]) or {}
    batch = record.get("bounds", [spec.repeats])[0] // spec.repeats
    sizes = learned.batch_sizes((grown.n or 0) - (spec.n or 0), batch)
    bounds = [size * spec.repeats for size in sizes]
    cost = sweep_cost(grown, []) - sweep_cost(spec, [])
    with admitted(store=store, owner=sweep["owner"], runs=sum(bounds), cost=cost, limits=limits):
        body = grown.model_dump(mode="json")
        if not stages.grow(store, sweep["id"], bounds=bounds, spec=body, expected=sweep["spec"]):
            raise Conflict(f"sweep {sweep['id']} was cancelled or changed; it cannot grow now")
    advance_sweep(sweep["id"], store=store, queue=queue, max_models=limits.max_fused_models)
    now = store.get_sweep(sweep["id"]) or {}
    return [r for r in now.get("run_ids", []) if r not in set(sweep["run_ids"])]


def extend_sweep(
    *, sweep: dict[str, Any], n: int, store: Store, queue: TaskQueue, limits: Limits
) -> list[str]:
    """Add the next `n` configurations of a random sweep's own sampler (the same seed: the
    draws after the ones it made), each with the sweep's repeats, or `n` more asked by a
    learned sweep's sampler; the new run ids (a learned sweep's: of its batch asked now)."""
    spec = SweepSpec(**sweep["spec"])
    grown = spec.model_copy(update={"n": (spec.n or 0) + n})
    if learned.is_learned(spec.strategy):
        return _extend_search(sweep=sweep, spec=spec, grown=grown, store=store, queue=queue,
                              limits=limits)  # fmt: skip
    if spec.strategy != "random":
        raise SpecError(
            "extend by n adds samples to a random or learned sweep; "
            f"sweep {sweep['id']} is {spec.strategy}"
        )
    configs = expand_sweep(grown, max_runs=limits.max_runs_per_sweep)[len(sweep["run_ids"]) :]
    for config in configs:
        check_limits(config.spec, limits=limits, where=f"configuration {config.varied}: ")
    specs = [c.spec for c in configs]
    check_servable(specs, store=store)
    planned = fusion.plan(specs, fuse=spec.fuse, max_models=limits.max_fused_models)
    owner = sweep["owner"]
    runs = [
        new_run(
            owner=owner,
            spec=c.spec.model_dump(mode="json"),
            sweep_id=sweep["id"],
            varied=c.varied,
            fused_group=group,
            repeat=c.repeat,
        )
        for c, group in zip(configs, planned.groups, strict=True)
    ]
    with admitted(store=store, owner=owner, runs=len(runs), cost=runs_cost(specs), limits=limits):
        body = grown.model_dump(mode="json")
        if not curation.append_runs(
            store, sweep_id=sweep["id"], runs=runs, expected=sweep["spec"], spec=body
        ):
            raise Conflict(f"sweep {sweep['id']} changed while extending it; try again")
        for chunk in planned.chunks:
            send_group(queue, store, [runs[i]["id"] for i in chunk])
    return [run["id"] for run in runs]
