"""Loss-curve PNGs of a run and of a sweep, cached per state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api import plots
from api.deps import OwnedRun, OwnedSweep, StoreDep
from lab.views import sweep_runs, sweep_view

router = APIRouter(prefix="/v1", tags=["plots"])
RUN_LABEL_FIELDS = ["activation", "lr"]
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a PNG image"}
}
_NO_STORE = {"Cache-Control": "no-cache"}


@router.get("/runs/{run_id}/plot.png", status_code=200, response_class=Response, responses=_PNG)
def run_plot(run: OwnedRun) -> Response:
    """The run's train (solid) and test (dashed) loss per epoch."""
    png = plots.cached_loss_curves(
        [run], title=_run_title(run), label_fields=RUN_LABEL_FIELDS, best_run_id=None
    )
    return Response(png, media_type="image/png", headers=_NO_STORE)


@router.get("/sweeps/{sweep_id}/plot.png", status_code=200, response_class=Response, responses=_PNG)
def sweep_plot(sweep: OwnedSweep, store: StoreDep) -> Response:
    """One colour per run, labelled by the fields the sweep varies; the best run thicker."""
    runs = sweep_runs(sweep=sweep, store=store)  # without epochs: cheap cache key
    view = sweep_view(sweep=sweep, store=store, runs=runs)
    best = view["best"]
    png = plots.cached_loss_curves(
        runs,
        title=_sweep_title(view),
        label_fields=list(sweep.get("varied") or []),
        best_run_id=best["run_id"] if best else None,
        with_epochs=lambda: store.get_runs(sweep["run_ids"]),
    )
    return Response(png, media_type="image/png", headers=_NO_STORE)


def _run_title(run: dict[str, Any]) -> str:
    """`run ID (status) · final_train_loss 0.1734` once it has a result."""
    spec = run.get("spec") or {}
    title = f"run {run['id']} · {spec.get('dataset', '')} ({run['status']})"
    final = (run.get("result") or {}).get("final_train_loss")
    return title + (f" · final_train_loss {final:.4g}" if final is not None else "")


def _sweep_title(view: dict[str, Any]) -> str:
    """`sweep NAME · metric (mode) · best VALUE`."""
    title = f"sweep {view.get('name') or view['id']} · {view['metric']} ({view['mode']})"
    best = view["best"]
    return title + (f" · best {best['value']:.4g}" if best else "")
