"""Sweeps as objects a student keeps: list them, label them (and runs), retry their failed
runs, extend random sweeps, and compare sweeps or runs side by side."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api import plots
from api.deps import (
    CurrentUser,
    OwnedRun,
    OwnedSweep,
    QueueDep,
    StoreDep,
    UserSettingsDep,
    checked_id,
    owned,
)
from api.errors import Forbidden
from api.listing import with_queue_positions
from api.redact import runs_for
from api.schemas import RunPublic, SweepPublic
from api.sweep_admin_schemas import (
    ComparePublic,
    ExtendRequest,
    LabelsUpdate,
    RequeuedPublic,
    SweepsPublic,
)
from lab import compare, extend, retry
from lab.sweep_list import SweepState, list_sweeps
from lab.views import sweep_view
from mlpcore.errors import SpecError
from mlpcore.sweep import Metric, Mode
from runstore import Conflict, Store, curation
from runstore.users import User

router = APIRouter(prefix="/v1", tags=["sweeps"])
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a PNG image"}
}


@router.get("/sweeps", response_model=SweepsPublic, status_code=200)
def get_sweeps(
    store: StoreDep,
    user: CurrentUser,
    status: Annotated[
        SweepState | None, Query(description="active: some run still to end; done: all ended")
    ] = None,
    name: Annotated[
        str | None, Query(max_length=200, description="a substring of the name")
    ] = None,
    tag: Annotated[str | None, Query(max_length=32)] = None,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The caller's sweeps, newest first, with their labels, strategy, status counts and best
    so far; admins see everyone's, or one user's with `owner`."""
    if owner is not None and owner != user.name and not user.admin:
        raise Forbidden("only an admin may list another user's sweeps; leave out owner")
    who = owner or (None if user.admin else user.name)
    page, count = list_sweeps(
        store=store, owner=who, state=status, name=name, tag=tag, limit=limit, offset=offset
    )
    return {"data": page, "count": count}


@router.patch("/sweeps/{sweep_id}", response_model=SweepPublic, status_code=200)
def patch_sweep(sweep: OwnedSweep, body: LabelsUpdate, store: StoreDep) -> dict[str, Any]:
    """Set the sweep's name, tags or notes (a field left out is kept; null clears it)."""
    changes = _changes(body)
    curation.annotate(store, key=store.keys.sweep(sweep["id"]), fields=changes)
    return sweep_view(sweep={**sweep, **changes}, store=store)


@router.patch("/runs/{run_id}", response_model=RunPublic, status_code=200)
def patch_run(run: OwnedRun, body: LabelsUpdate, store: StoreDep, user: CurrentUser) -> Any:
    """Set the run's name, tags or notes (a field left out is kept; null clears it)."""
    changes = _changes(body)
    curation.annotate(store, key=store.keys.run(run["id"]), fields=changes)
    return runs_for(user, with_queue_positions([{**run, **changes}], store=store))[0]


def _changes(body: LabelsUpdate) -> dict[str, Any]:
    """The fields to write; SpecError (422) for a body that names none."""
    changes = body.changes()
    if not changes:
        raise SpecError("body: name at least one of name, tags, notes")
    return changes


@router.post("/sweeps/{sweep_id}/retry", response_model=RequeuedPublic, status_code=202)
def retry_sweep(
    sweep: OwnedSweep, store: StoreDep, queue: QueueDep, settings: UserSettingsDep
) -> dict[str, Any]:
    """Queue the sweep's failed, cancelled and diverged runs again as new attempts of the
    same specs (each run keeps its earlier attempts in `attempts`), fused and within the
    quota like a submission; 409 when none is left to retry."""
    ids = retry.retry_sweep(sweep=sweep, store=store, queue=queue, limits=settings)
    return _requeued(sweep["id"], ids, store)


@router.post("/sweeps/{sweep_id}/extend", response_model=RequeuedPublic, status_code=202)
def extend_sweep(
    sweep: OwnedSweep,
    body: ExtendRequest,
    store: StoreDep,
    queue: QueueDep,
    settings: UserSettingsDep,
) -> dict[str, Any]:
    """`{"n": k}`: k more samples of a random sweep, the next draws of its own seeded sampler.
    `{"epochs": E}`: once the sweep has ended, each succeeded run trains on to E epochs from
    its stored final state, its new epochs appended (with a step or no lr schedule it then
    equals a run of E epochs from the start; cosine is a 422); runs whose state is gone are
    listed in `skipped`."""
    if (body.n is None) == (body.epochs is None):
        raise SpecError("body: give exactly one of n (more samples) or epochs")
    if body.epochs is not None:
        ids, skipped = extend.extend_epochs(
            sweep=sweep, epochs=body.epochs, store=store, queue=queue, limits=settings
        )
        return {**_requeued(sweep["id"], ids, store), "skipped": skipped}
    ids = retry.extend_sweep(sweep=sweep, n=body.n or 0, store=store, queue=queue, limits=settings)
    return _requeued(sweep["id"], ids, store)


def _requeued(sweep_id: str, run_ids: list[str], store: Store) -> dict[str, Any]:
    """The answer of a retry or extend: what was queued and the sweep as it is now."""
    sweep = store.get_sweep(sweep_id) or {}
    view = sweep_view(sweep=sweep, store=store) if sweep else {}
    return {"sweep_id": sweep_id, "run_ids": run_ids, "count": len(run_ids), "sweep": view}


CompareIds = Annotated[str | None, Query(max_length=2000, description="comma-separated ids")]


@router.get("/compare", response_model=ComparePublic, status_code=200)
def get_compare(
    store: StoreDep,
    user: CurrentUser,
    sweeps: CompareIds = None,
    runs: CompareIds = None,
    metric: Metric = "final_train_loss",
    mode: Mode | None = None,
) -> dict[str, Any]:
    """One leaderboard across sweeps (`sweeps=A,B`: their common metric, 422 when they
    differ) or runs (`runs=X,Y`: by `metric`), each row naming its sweep."""
    return _comparison(store, user, sweeps, runs, metric, mode)[0]


@router.get("/compare.png", status_code=200, response_class=Response, responses=_PNG)
def get_compare_png(
    store: StoreDep,
    user: CurrentUser,
    sweeps: CompareIds = None,
    runs: CompareIds = None,
    metric: Metric = "final_train_loss",
    mode: Mode | None = None,
) -> Response:
    """Loss curves of the best run of each sweep compared (or of each run), overlaid."""
    table, drawn = _comparison(store, user, sweeps, runs, metric, mode)
    if not drawn:
        raise Conflict("none of the compared sweeps has a succeeded run yet")
    title = f"compare · {table['metric']} ({table['mode']})"
    png = plots.cached_loss_curves(drawn, title=title, label_fields=["compared"], best_run_id=None)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


def _comparison(
    store: Store,
    user: User,
    sweeps: str | None,
    runs: str | None,
    metric: str,
    mode: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The comparison table and the runs its plot draws (with epochs, labelled)."""
    if (sweeps is None) == (runs is None):
        raise SpecError("query: give exactly one of sweeps=A,B or runs=X,Y")
    if sweeps is not None:
        return _compare_sweeps(store, user, _ids(sweeps, "sweeps", 2, compare.MAX_COMPARED))
    run_ids = _ids(runs or "", "runs", 1, compare.MAX_RUNS)
    records = [_owned_run(store, user, run_id) for run_id in run_ids]
    resolved = mode or ("max" if metric.endswith("_accuracy") else "min")
    table = compare.compare_runs(records, metric=metric, mode=resolved)
    return table, [{**r, "varied": {"compared": r.get("name") or r["id"]}} for r in records]


def _compare_sweeps(
    store: Store, user: User, sweep_ids: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sweeps' comparison and the best run of each (with epochs), labelled by sweep."""
    records = [owned(store.get_sweep(i), user=user, kind="sweep", record_id=i) for i in sweep_ids]
    runs = {s["id"]: store.get_runs(s["run_ids"], epochs=False) for s in records}
    table = compare.compare_sweeps(records, runs)
    best = [(s, h["best_run_id"]) for s, h in zip(records, table["sweeps"], strict=True)]
    drawn = []
    for sweep, run_id in best:
        run = store.get_run(run_id) if run_id else None
        if run is not None:
            drawn.append({**run, "varied": {"compared": sweep.get("name") or sweep["id"]}})
    return table, drawn


def _owned_run(store: Store, user: User, run_id: str) -> dict[str, Any]:
    """The caller's run with its epochs, or 404 like any other route."""
    return owned(store.get_run(run_id), user=user, kind="run", record_id=run_id)


def _ids(text: str, field: str, least: int, most: int) -> list[str]:
    """Distinct ids from a comma-separated list, each of the id format (else 404)."""
    ids = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not least <= len(ids) <= most:
        raise SpecError(f"{field}: give {least} to {most} comma-separated ids, not {len(ids)}")
    return [checked_id(i, kind=field.rstrip("s")) for i in ids]
