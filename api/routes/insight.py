"""Understanding a sweep of any strategy: parameter importance and parallel coordinates, as
JSON (the dashboard draws them) and as PNGs. Owner-only like every sweep route; 409 while too
few runs have finished (lab/importance.py says how many)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api import insight_plots
from api.deps import OwnedSweep, StoreDep
from lab import importance
from lab.views import sweep_runs

router = APIRouter(prefix="/v1", tags=["insight"])
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a PNG image"}
}
_NO_STORE = {"Cache-Control": "no-cache"}


class ImportancePublic(BaseModel):
    """Each varied field's share of the importance for the sweep's metric (sums to 1)."""

    sweep_id: str
    metric: str
    mode: Literal["min", "max"]
    evaluator: str  # Optuna's PED-ANOVA
    finished: int  # the runs it was computed over
    importance: dict[str, float]  # most important first


class ParallelAxis(BaseModel):
    """One field's axis: its category labels, or its numeric range."""

    field: str
    kind: Literal["categorical", "numeric"]
    labels: list[str] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False


class ParallelRun(BaseModel):
    """One finished run: its position (0..1) on every axis, its configuration and metric."""

    run_id: str
    values: dict[str, float | None]
    config: dict[str, Any]
    metric: float
    best: bool


class ParallelPublic(BaseModel):
    """Parallel coordinates of the sweep's finished runs."""

    sweep_id: str
    metric: str
    mode: Literal["min", "max"]
    axes: list[ParallelAxis]
    runs: list[ParallelRun]
    importance_needs: int  # finished runs the importance needs (409 below)


@router.get("/sweeps/{sweep_id}/importance", response_model=ImportancePublic, status_code=200)
def sweep_importance(sweep: OwnedSweep, store: StoreDep) -> dict[str, Any]:
    """Each varied field's importance over the finished runs; 409 below the minimum."""
    return importance.importance(sweep, sweep_runs(sweep=sweep, store=store))


@router.get(
    "/sweeps/{sweep_id}/importance.png", status_code=200, response_class=Response, responses=_PNG
)
def sweep_importance_png(sweep: OwnedSweep, store: StoreDep) -> Response:
    """The importances as bars, the most important on top."""
    data = importance.importance(sweep, sweep_runs(sweep=sweep, store=store))
    png = insight_plots.importance_png(data, title=_title(sweep, "importance"))
    return Response(png, media_type="image/png", headers=_NO_STORE)


@router.get("/sweeps/{sweep_id}/parallel", response_model=ParallelPublic, status_code=200)
def sweep_parallel(sweep: OwnedSweep, store: StoreDep) -> dict[str, Any]:
    """Parallel-coordinates data: an axis per varied field, a line per finished run."""
    return importance.parallel(sweep, sweep_runs(sweep=sweep, store=store))


@router.get(
    "/sweeps/{sweep_id}/parallel.png", status_code=200, response_class=Response, responses=_PNG
)
def sweep_parallel_png(sweep: OwnedSweep, store: StoreDep) -> Response:
    """One line per finished run coloured by the metric, the best highlighted."""
    data = importance.parallel(sweep, sweep_runs(sweep=sweep, store=store))
    png = insight_plots.parallel_png(data, title=_title(sweep, "parallel coordinates"))
    return Response(png, media_type="image/png", headers=_NO_STORE)


def _title(sweep: dict[str, Any], what: str) -> str:
    """`sweep NAME · what · metric (mode)`."""
    return (
        f"sweep {sweep.get('name') or sweep['id']} · {what} · {sweep['metric']} ({sweep['mode']})"
    )
