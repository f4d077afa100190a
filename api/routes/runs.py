"""/v1/runs: submit, list, read, stream and cancel runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.deps import (
    CurrentUser,
    OwnedRun,
    QueueDep,
    SettingsDep,
    StoreDep,
    StreamStoreDep,
    UserSettingsDep,
    checked_id,
    owned,
)
from api.listing import visible_run_ids, with_queue_positions
from api.redact import runs_for
from api.schemas import IdempotencyKey, RunPublic, RunsPublic
from api.sse import run_events, sse_response
from lab import cancel, submit
from mlpcore.spec import RunSpec
from mlpcore.status import RunStatus
from runstore import after_position

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.post("", response_model=RunPublic, status_code=202)
def submit_run(
    spec: RunSpec,
    store: StoreDep,
    queue: QueueDep,
    settings: UserSettingsDep,
    user: CurrentUser,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Submit one run spec; it is queued for a worker (429 when max_queued or the compute
    budget is full, 422 when no live worker has its dataset or device). With an
    Idempotency-Key used before: the run that key made, as it is now."""
    run = submit.submit_run(
        spec=spec,
        owner=user.name,
        store=store,
        queue=queue,
        limits=settings,
        key=idempotency_key,
        key_wait_s=settings.idempotency_wait_s,
    )
    return with_queue_positions([run], store=store)[0]


@router.get("", response_model=RunsPublic, status_code=200)
def list_runs(
    store: StoreDep,
    user: CurrentUser,
    sweep_id: str | None = None,
    status: RunStatus | None = None,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The caller's runs, newest first (sweep runs in sweep order), filtered and paginated.

    Admins see everyone's runs, or one user's with `owner`; others may name only themselves.
    """
    if sweep_id is not None:
        record = store.get_sweep(checked_id(sweep_id, kind="sweep"))
        sweep = owned(record, user=user, kind="sweep", record_id=sweep_id)
        run_ids = sweep["run_ids"]
    else:
        run_ids = visible_run_ids(store=store, user=user, owner=owner)
    wanted = status.value if status is not None else None
    runs, count = store.list_runs(run_ids=run_ids, status=wanted, limit=limit, offset=offset)
    return {"data": runs_for(user, with_queue_positions(runs, store=store)), "count": count}


@router.get("/{run_id}", response_model=RunPublic, status_code=200)
def get_run(run: OwnedRun, store: StoreDep, user: CurrentUser) -> dict[str, Any]:
    """The run record with its epochs so far, its queue_position while queued and, once
    finished, its result (its error without server paths, except for admins)."""
    return runs_for(user, with_queue_positions([run], store=store))[0]


@router.get(
    "/{run_id}/events",
    status_code=200,
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_run(
    run: OwnedRun,
    reader: StreamStoreDep,
    settings: UserSettingsDep,
    user: CurrentUser,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """SSE: `epoch` events (id = epoch number) and `status` events, ending after the last.
    429 while the caller holds max_streams streams already."""
    after = after_position(last_event_id)
    keepalive_s = settings.sse_keepalive_s
    events = run_events(reader, run["id"], after=after, keepalive_s=keepalive_s, user=user)
    return await sse_response(
        events, store=reader, owner=user.name, limit=settings.max_streams, keepalive_s=keepalive_s
    )


@router.delete("/{run_id}", response_model=RunPublic, status_code=202)
def cancel_run(
    run: OwnedRun, store: StoreDep, queue: QueueDep, settings: SettingsDep
) -> dict[str, Any]:
    """Cancel: a queued run never starts; a running one stops within a few batches."""
    return cancel.cancel_run(
        run=run, store=store, queue=queue, max_models=settings.max_fused_models
    )
