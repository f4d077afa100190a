"""What the routes do: check limits, record, queue, cancel, summarise sweeps."""

from __future__ import annotations

import logging
from typing import Any

from api import ranking, staged
from api.admission import admitted
from api.errors import LimitExceeded
from api.queue import TaskQueue
from api.settings import ApiSettings
from mlpcore.spec import RunSpec
from mlpcore.sweep import SweepSpec, expand_sweep, sweep_size
from runstore import TERMINAL, Conflict, Store
from worker.dispatch import fusion_chunks, group_ids, send_group

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
    with admitted(store=store, owner=owner, runs=1, settings=settings):
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
    for where, spec in staged.stage_specs(sweep):  # a later stage's values, before any run
        check_limits(spec, settings=settings, where=where)
    chunks = fusion_chunks(
        [c.spec for c in configs], fuse=sweep.fuse, max_models=settings.max_fused_models
    )
    # sweep_size: every run of a grid or random sweep; a staged one's most over all stages,
    # so its later stages have room too
    with admitted(store=store, owner=owner, runs=sweep_size(sweep), settings=settings):
        record, runs = store.create_sweep(
            owner=owner,
            spec=sweep.model_dump(mode="json"),
            metric=sweep.metric,
            mode=sweep.resolved_mode(),
            configs=[(c.varied, c.spec.model_dump(mode="json")) for c in configs],
            groups=group_ids(chunks, n_runs=len(configs)),
        )
        staged.start(sweep=sweep, record=record, runs=runs, store=store)
        for chunk in chunks:
            _send(queue, store, [runs[i]["id"] for i in chunk])
    return sweep_view(sweep=record, store=store, runs=runs)


def _send(queue: TaskQueue, store: Store, run_ids: list[str]) -> None:
    """Queue a task by the one function the worker's staged sweeps use too."""
    send_group(queue, store, run_ids)


def cancel_run(*, run: dict[str, Any], store: Store) -> dict[str, Any]:
    """Cancel a queued run or ask a running one to stop; 409 when it already finished."""
    outcome = store.cancel_run(run_id=run["id"])
    fresh = store.get_run(run["id"]) or run
    if outcome not in ("cancelled", "requested"):
        raise Conflict(f"run {run['id']} already finished ({fresh['status']}); nothing to cancel")
    return fresh


def cancel_sweep(*, sweep: dict[str, Any], store: Store) -> dict[str, Any]:
    """Cancel every unfinished run of the sweep; 409 when none is left."""
    stopped = staged.cancel(sweep=sweep, store=store)  # first: no stage may start after
    runs = store.get_runs(sweep["run_ids"], epochs=False)
    outcomes = [store.cancel_run(run_id=r["id"]) for r in runs if r["status"] not in TERMINAL]
    if not stopped and not any(o in ("cancelled", "requested") for o in outcomes):
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
    extra = staged.view(sweep=sweep, store=store, runs=runs)
    done = all(run["status"] in TERMINAL for run in runs) and not extra.pop("staging")
    return {**sweep, "counts": ranking.status_counts(runs), "done": done, "best": best, **extra}
