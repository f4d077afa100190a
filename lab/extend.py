"""Extending a sweep by epochs: every succeeded run trains on to E epochs from its stored final
state (weights, optimizer state, epoch; worker/artifacts.py stores it), appending epochs to
the same run. With a step or constant lr schedule the continued run equals a run of E epochs
from the start (mlpcore.continuation); a cosine schedule anneals over the total epochs and is
refused. Checked against the limits and the live workers, admitted under the owner's quota
for the added epochs, fused by start epoch, queued as a submission is. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab import fusion
from lab.budget import runs_cost
from lab.capability import check_servable
from lab.queue import TaskQueue, send_group
from lab.submit import Limits, admitted, check_limits
from mlpcore.continuable import continuable
from mlpcore.errors import SpecError
from mlpcore.spec import RunSpec
from mlpcore.status import TERMINAL
from mlpcore.sweep import SweepSpec
from runstore import Conflict, Store, curation
from runstore.artifacts import STORED


@dataclass
class Continuations:
    """The runs an extend continues (with their new specs) and those it cannot, with why."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    specs: list[RunSpec] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def extend_epochs(
    *, sweep: dict[str, Any], epochs: int, store: Store, queue: TaskQueue, limits: Limits
) -> tuple[list[str], list[dict[str, str]]]:
    """Queue the sweep's succeeded runs to train on to `epochs`: the ids queued, and the runs
    skipped for want of a stored state (each with its reason). SpecError (422) for what can
    never continue, Conflict (409) while the sweep runs or when no run can continue."""
    todo = continuations(sweep, epochs, store=store)
    for run, spec in zip(todo.runs, todo.specs, strict=True):
        check_limits(spec, limits=limits, where=f"run {run['id']}: ")
    check_servable(todo.specs, store=store)
    fuse = bool((sweep.get("spec") or {}).get("fuse", True))
    groups = _planned(todo, fuse=fuse, max_models=limits.max_fused_models)
    added = [s.model_copy(update={"epochs": epochs - r["spec"]["epochs"]}) for r, s in
             zip(todo.runs, todo.specs, strict=True)]  # fmt: skip
    owner, queued = sweep["owner"], []
    with admitted(
        store=store, owner=owner, runs=len(todo.runs), cost=runs_cost(added), limits=limits
    ):
        for chunk, group in groups:
            ids = [
                todo.runs[i]["id"]
                for i in chunk
                if curation.requeue_continuation(
                    store,
                    run_id=todo.runs[i]["id"],
                    spec=todo.specs[i].model_dump(mode="json"),
                    model=todo.runs[i]["model"],
                    fused_group=group,
                )
            ]
            if ids:
                send_group(queue, store, ids)
                queued += ids
    return queued, todo.skipped


def continuations(sweep: dict[str, Any], epochs: int, *, store: Store) -> Continuations:
    """What an extend to `epochs` would continue; raises what refuses it as a whole."""
    strategy = SweepSpec(**sweep["spec"]).strategy
    if strategy == "staged":
        raise SpecError(
            "a staged sweep's stages chose their winners at their own epochs; extending it by "
            "epochs would not retrace them. Submit a grid of the winners with the epochs you want"
        )
    runs = store.get_runs(sweep["run_ids"], epochs=False)
    if any(r["status"] not in TERMINAL for r in runs):
        raise Conflict(f"sweep {sweep['id']} still has runs queued or running; extend it by "
                       "epochs once they have ended")  # fmt: skip
    todo = Continuations()
    refused = []
    for run in (r for r in runs if r["status"] == "succeeded"):
        spec = RunSpec(**run["spec"])
        why = continuable(spec, epochs)
        if why is not None:
            refused.append(f"run {run['id']}: {why}")
        elif (reason := _no_state(run)) is not None:
            todo.skipped.append({"run_id": run["id"], "reason": reason})
        else:
            todo.runs.append(run)
            todo.specs.append(spec.model_copy(update={"epochs": epochs}))
    if refused:
        raise SpecError("cannot extend by epochs: " + "; ".join(refused[:3]) + _more(refused))
    if not todo.runs:
        why = "" if not todo.skipped else f" ({todo.skipped[0]['reason']})"
        raise Conflict(f"sweep {sweep['id']} has no succeeded run with a stored state{why}")
    return todo


def _no_state(run: dict[str, Any]) -> str | None:
    """Why the run has no final state to continue from (None: it has one)."""
    model = run.get("model") or {}
    if model.get("state") != STORED:
        return f"its model is {model.get('state') or 'missing'}: {model.get('reason', 'none')}"
    if model.get("resume_epoch") != run["spec"]["epochs"]:
        return "its model was stored without a training state (an older worker)"
    return None


def _planned(
    todo: Continuations, *, fuse: bool, max_models: int
) -> list[tuple[list[int], str | None]]:
    """Fused groups of runs that start from one epoch: (indices into todo, group name)."""
    starts = [int(r["spec"]["epochs"]) for r in todo.runs]
    out = []
    for start in sorted(set(starts)):
        picked = [i for i, s in enumerate(starts) if s == start]
        planned = fusion.plan([todo.specs[i] for i in picked], fuse=fuse, max_models=max_models)
        for chunk in planned.chunks:
            out.append(([picked[i] for i in chunk], planned.groups[chunk[0]]))
    return out


def _more(items: list[str]) -> str:
    return f"; and {len(items) - 3} more" if len(items) > 3 else ""
