"""/v1/sweeps: submit a sweep, follow it, rank its runs, cancel it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from api.deps import (
    CurrentUser,
    OwnedSweep,
    QueueDep,
    StoreDep,
    StreamStoreDep,
    UserSettingsDep,
)
from api.plan_schemas import DryRunPublic
from api.schemas import BestPublic, IdempotencyKey, LeaderboardPublic, SweepPublic
from api.sse import sse_response, sweep_events
from lab import cancel, ranking, submit
from lab.views import best_view, sweep_runs, sweep_view
from mlpcore.sweep import SweepSpec
from runstore import Conflict, after_position

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


@router.post("", response_model=SweepPublic | DryRunPublic, status_code=202)
def submit_sweep(
    sweep: SweepSpec,
    store: StoreDep,
    queue: QueueDep,
    settings: UserSettingsDep,
    user: CurrentUser,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    dry_run: Annotated[bool, Query(description="only say how it would train")] = False,
) -> dict[str, Any]:
    """Submit a sweep; every configuration is validated and checked against the live
    workers, and the whole sweep must fit the caller's max_queued quota and compute budget
    (else 429), before any run is queued. With an Idempotency-Key used before: the sweep
    that key made, as it is now. With dry_run=true: 200 with its fused groups, cost and
    time estimate, checked the same way, nothing written."""
    if dry_run:
        response.status_code = 200
        return submit.dry_run(sweep=sweep, store=store, limits=settings)
    return submit.submit_sweep(
        sweep=sweep,
        owner=user.name,
        store=store,
        queue=queue,
        limits=settings,
        key=idempotency_key,
        key_wait_s=settings.idempotency_wait_s,
    )


@router.get("/{sweep_id}", response_model=SweepPublic, status_code=200)
def get_sweep(sweep: OwnedSweep, store: StoreDep) -> dict[str, Any]:
    """The sweep: its runs, their status counts and the best run so far."""
    return sweep_view(sweep=sweep, store=store)


@router.get("/{sweep_id}/best", response_model=BestPublic, status_code=200)
def get_best(sweep: OwnedSweep, store: StoreDep) -> dict[str, Any]:
    """The best finished run so far (with repeats: the best configuration, by the mean of its
    runs, and its best run); 409 while none has finished."""
    best = best_view(sweep=sweep, runs=sweep_runs(sweep=sweep, store=store))
    if best is None:
        raise Conflict(f"no run of sweep {sweep['id']} has succeeded yet")
    return best


@router.get("/{sweep_id}/leaderboard", response_model=LeaderboardPublic, status_code=200)
def get_leaderboard(
    sweep: OwnedSweep,
    store: StoreDep,
    by: Annotated[
        Literal["run", "config"] | None,
        Query(
            description="rank runs, or configurations (mean over repeats); default: "
            "configurations when the sweep has repeats"
        ),
    ] = None,
) -> dict[str, Any]:
    """Runs (or, with repeats, configurations: mean, std, n) ranked by the sweep's metric,
    best first; unfinished ones last."""
    runs = sweep_runs(sweep=sweep, store=store)
    by = by or ("config" if ranking.grouped(sweep) else "run")
    rows = ranking.sweep_leaderboard(sweep, runs, by=by)
    return {
        "sweep_id": sweep["id"],
        "metric": sweep["metric"],
        "mode": sweep["mode"],
        "by": by,
        "data": rows,
        "count": len(rows),
    }


@router.get(
    "/{sweep_id}/events",
    status_code=200,
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_sweep(
    sweep: OwnedSweep,
    reader: StreamStoreDep,
    settings: UserSettingsDep,
    user: CurrentUser,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """SSE over all the sweep's runs (each event carries run_id); ends when all are done.
    429 while the caller holds max_streams streams already."""
    after = after_position(last_event_id)
    keepalive_s = settings.sse_keepalive_s
    events = sweep_events(reader, sweep["id"], after=after, keepalive_s=keepalive_s, user=user)
    return await sse_response(
        events, store=reader, owner=user.name, limit=settings.max_streams, keepalive_s=keepalive_s
    )


@router.delete("/{sweep_id}", response_model=SweepPublic, status_code=202)
def cancel_sweep(sweep: OwnedSweep, store: StoreDep) -> dict[str, Any]:
    """Cancel every unfinished run of the sweep."""
    return cancel.cancel_sweep(sweep=sweep, store=store)
