"""What the routes do: check limits, record, queue, cancel, summarise sweeps."""

from __future__ import annotations

import logging
from typing import Any

from api import ranking
from api.errors import LimitExceeded
from api.queue import TaskQueue
from api.settings import ApiSettings
from mlpcore.spec import RunSpec
from mlpcore.sweep import SweepSpec, expand_sweep
from runstore import TERMINAL, Conflict, Store, new_id

log = logging.getLogger(__name__)


def check_limits(spec: RunSpec, *, settings: ApiSettings, where: str = "") -> None:
    """Raise LimitExceeded naming the first server limit the spec goes over."""
    checks = [
        ("epochs", spec.epochs, "max_epochs", settings.max_epochs),
        ("hidden", max(spec.hidden, default=0), "max_hidden_width", settings.max_hidden_width),
        ("hidden", len(spec.hidden), "max_hidden_layers", settings.max_hidden_layers),
        ("batch_size", spec.batch_size, "max_batch_size", settings.max_batch_size),
    ]
    for field, value, limit_name, limit in checks:
        if value > limit:
            what = f"{field}: {value}" if field != "hidden" else f"hidden: {spec.hidden}"
            raise LimitExceeded(f"{where}{what} is over the server limit {limit_name}={limit}")


def submit_run(
    *, spec: RunSpec, owner: str, store: Store, queue: TaskQueue, settings: ApiSettings
) -> dict[str, Any]:
    """Check, record and queue one run; return its record."""
    check_limits(spec, settings=settings)
    run = store.create_run(owner=owner, spec=spec.model_dump(mode="json"))
    _send(queue, store, [run["id"]])
    return run


def submit_sweep(
    *, sweep: SweepSpec, owner: str, store: Store, queue: TaskQueue, settings: ApiSettings
) -> dict[str, Any]:
    """Expand and check every configuration, then record and queue all runs; return the sweep."""
    configs = expand_sweep(sweep, max_runs=settings.max_runs_per_sweep)
    for index, config in enumerate(configs):
        where = f"configuration {index} {config.varied}: "
        check_limits(config.spec, settings=settings, where=where)
    chunks = fusion_chunks([c.spec for c in configs], fuse=sweep.fuse,
                           max_models=settings.max_fused_models)
    record, runs = store.create_sweep(
        owner=owner, spec=sweep.model_dump(mode="json"), metric=sweep.metric,
        mode=sweep.resolved_mode(),
        configs=[(c.varied, c.spec.model_dump(mode="json")) for c in configs],
        groups=group_ids(chunks, n_runs=len(configs)),
    )
    for chunk in chunks:
        _send(queue, store, [runs[i]["id"] for i in chunk])
    return sweep_view(sweep=record, store=store, runs=runs)


def fusion_chunks(specs: list[RunSpec], *, fuse: bool, max_models: int) -> list[list[int]]:
    """Indices of the runs each task trains: runs sharing a fusion key, in sweep order, at
    most max_models a task; one run a task when not fusing."""
    if not fuse:
        return [[i] for i in range(len(specs))]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(spec.fusion_key(), []).append(index)
    return [g[a:a + max_models] for g in groups.values() for a in range(0, len(g), max_models)]


def group_ids(chunks: list[list[int]], *, n_runs: int) -> list[str | None]:
    """Each run's fused_group: an id shared by its chunk's runs, None for a chunk of one."""
    ids: list[str | None] = [None] * n_runs
    for chunk in chunks:
        group = f"g-{new_id()}" if len(chunk) > 1 else None
        for index in chunk:
            ids[index] = group
    return ids


def _send(queue: TaskQueue, store: Store, run_ids: list[str]) -> None:
    """Queue a task; if the broker refuses, fail the runs rather than leave them queued."""
    try:
        queue.submit(run_ids)
    except Exception as exc:
        for run_id in run_ids:
            store.finish_run(run_id=run_id, status="failed", error=f"could not be queued: {exc}")
        raise


def cancel_run(*, run: dict[str, Any], store: Store) -> dict[str, Any]:
    """Cancel a queued run or ask a running one to stop; 409 when it already finished."""
    outcome = store.cancel_run(run_id=run["id"])
    fresh = store.get_run(run["id"]) or run
    if outcome not in ("cancelled", "requested"):
        raise Conflict(f"run {run['id']} already finished ({fresh['status']}); nothing to cancel")
    return fresh


def cancel_sweep(*, sweep: dict[str, Any], store: Store) -> dict[str, Any]:
    """Cancel every unfinished run of the sweep; 409 when none is left."""
    runs = store.get_runs(sweep["run_ids"], epochs=False)
    outcomes = [store.cancel_run(run_id=r["id"]) for r in runs if r["status"] not in TERMINAL]
    if not any(o in ("cancelled", "requested") for o in outcomes):
        raise Conflict(f"sweep {sweep['id']} has no unfinished runs; nothing to cancel")
    return sweep_view(sweep=sweep, store=store)


def sweep_runs(*, sweep: dict[str, Any], store: Store) -> list[dict[str, Any]]:
    """The sweep's runs without their epochs, in sweep order."""
    return store.get_runs(sweep["run_ids"], epochs=False)


def sweep_view(
    *, sweep: dict[str, Any], store: Store, runs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The sweep record with status counts, done and the best run so far."""
    runs = runs if runs is not None else sweep_runs(sweep=sweep, store=store)
    best = ranking.best(runs, metric=sweep["metric"], mode=sweep["mode"])
    done = all(run["status"] in TERMINAL for run in runs)
    return {**sweep, "counts": ranking.status_counts(runs), "done": done, "best": best}
