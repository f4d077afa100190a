"""Moving staged sweeps on: once a stage's last run has ended, plan the next stage from its
winners, record it exactly once (runstore.stages) and queue it like any sweep (dispatch).

Torch-free. The worker calls `advance_sweeps` after every task, so the process that ends a
stage's last run is the one that moves the sweep on.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from typing import Any

from mlpcore.spec import RunSpec
from mlpcore.staged import Candidate, next_configs, select_winners, stage_field
from mlpcore.sweep import SweepSpec
from runstore import Store, stages
from runstore.stages import Planner, StagePlan
from worker.celery_app import app
from worker.dispatch import TaskQueue, fusion_chunks, group_ids, send_group
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def finished_value(run: dict[str, Any], metric: str) -> float | None:
    """The metric of a run that succeeded with a finite value, else None (not a winner)."""
    value = (run.get("result") or {}).get(metric)
    if run["status"] != "succeeded" or value is None or not math.isfinite(value):
        return None
    return float(value)


def plan_stage(
    sweep: dict[str, Any],
    record: dict[str, Any],
    runs: list[dict[str, Any]],
    *,
    max_models: int,
) -> StagePlan:
    """The winners of the ended stage and, unless it was the last, the next stage's runs."""
    spec = SweepSpec(**sweep["spec"])
    index = record["current"]
    parents = dict(
        zip(record["stages"][index]["run_ids"], record["stages"][index]["parents"], strict=True)
    )
    candidates = [
        Candidate(r["id"], finished_value(r, sweep["metric"]), parents.get(r["id"])) for r in runs
    ]
    winners = select_winners(
        candidates, keep_top=spec.keep_top or 1, carry=spec.carry, mode=sweep["mode"]
    )
    if index + 1 == len(spec.stages):
        return StagePlan(winners)
    if not winners:
        field = record["stages"][index]["field"]
        return StagePlan(
            [],
            reason=f"stage {index + 1} ({field}) ended with no finished run; "
            "later stages were not created",
        )
    return _next_stage(spec, index + 1, winners, {r["id"]: r for r in runs}, max_models)


def _next_stage(
    spec: SweepSpec,
    index: int,
    winners: list[str],
    runs: dict[str, dict[str, Any]],
    max_models: int,
) -> StagePlan:
    """Every winner combined with every value of stage `index`, cut into fused tasks; a
    combination that is the winner itself (the value it already has) keeps the winner."""
    field, values = stage_field(spec.stages[index])
    # each winner's values of the stages so far, from its spec: a winner kept from an earlier
    # stage has only that stage's fields in its own `varied`
    earlier = list(dict.fromkeys(stage_field(stage)[0] for stage in spec.stages[:index]))
    specs = [RunSpec(**runs[w]["spec"]) for w in winners]
    dumped = [s.model_dump(mode="json") for s in specs]
    configs = next_configs(
        [({f: d[f] for f in earlier}, d) for d in dumped], field=field, values=values
    )
    kept: dict[str, None] = {}
    new = []
    for varied, run_spec, parent in configs:
        if run_spec == specs[parent]:
            kept[winners[parent]] = None
        else:
            new.append((varied, run_spec, parent))
    chunks = fusion_chunks([c[1] for c in new], fuse=spec.fuse, max_models=max_models)
    return StagePlan(
        winners,
        configs=[(varied, s.model_dump(mode="json")) for varied, s, _ in new],
        parents=[winners[parent] for _, _, parent in new],
        groups=group_ids(chunks, n_runs=len(new)),
        chunks=chunks,
        kept=list(kept),
    )


def advance_sweep(sweep_id: str, *, store: Store, queue: TaskQueue, max_models: int) -> None:
    """Move the sweep on as far as its ended stages allow, queuing each new stage."""
    planner: Planner = functools.partial(plan_stage, max_models=max_models)
    while (moved := stages.advance(store, sweep_id, planner)) is not None:
        ids = [run["id"] for run in moved.runs]
        log.info(
            "sweep %s: winners %s; %d new run(s), %d kept",
            sweep_id,
            moved.plan.winners,
            len(ids),
            len(moved.plan.kept),
        )
        try:
            for chunk in moved.plan.chunks:
                send_group(queue, store, [ids[i] for i in chunk])
        except Exception:  # its runs failed: the stage may have ended, so look again
            log.exception("sweep %s: a stage could not be queued", sweep_id)
            continue
        if ids:  # a stage of kept runs only has ended already: look again
            return


def advance_sweeps(
    runs: Iterable[dict[str, Any]], *, store: Store, queue: TaskQueue, max_models: int
) -> None:
    """Advance each staged sweep these runs belong to (a no-op for other sweeps)."""
    for sweep_id in dict.fromkeys(r["sweep_id"] for r in runs if r.get("sweep_id")):
        try:
            advance_sweep(sweep_id, store=store, queue=queue, max_models=max_models)
        except Exception:  # never fail the task that trained the runs
            log.exception("sweep %s: could not advance its stages", sweep_id)


def after_task(
    records: Iterable[dict[str, Any]], *, store: Store, settings: WorkerSettings
) -> None:
    """Advance the staged sweeps of a task's runs, queuing through the worker's Celery app."""
    advance_sweeps(records, store=store, queue=_queue(), max_models=settings.max_fused_models)


@functools.lru_cache
def _queue() -> TaskQueue:
    """The worker process's handle for sending tasks."""
    return TaskQueue(app)
