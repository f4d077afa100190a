"""Repairing and growing a sweep: retry its failed, cancelled and diverged runs as new
attempts, or extend a random sweep by the next draws of its own seeded sampler (extending by
epochs is lab/extend.py). Both are
checked against the limits and the live workers, admitted under the owner's quota, planned
into fused groups and queued exactly as a submission is (lab/submit.py). Torch-free."""

from __future__ import annotations

from typing import Any

from lab import fusion
from lab.budget import runs_cost
from lab.capability import check_servable
from lab.queue import TaskQueue, send_group
from lab.submit import Limits, admitted, check_limits
from mlpcore.errors import SpecError
from mlpcore.spec import RunSpec
from mlpcore.sweep import SweepSpec, expand_sweep
from runstore import Conflict, Store, curation
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


def extend_sweep(
    *, sweep: dict[str, Any], n: int, store: Store, queue: TaskQueue, limits: Limits
) -> list[str]:
    """Add the next `n` configurations of a random sweep's own sampler (the same seed: the
    draws after the ones it made), each with the sweep's repeats; the new run ids."""
    spec = SweepSpec(**sweep["spec"])
    if spec.strategy != "random":
        raise SpecError(
            f"extend by n adds samples to a random sweep; sweep {sweep['id']} is {spec.strategy}"
        )
    grown = spec.model_copy(update={"n": (spec.n or 0) + n})
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
