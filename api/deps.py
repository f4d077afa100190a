"""Dependencies as Annotated aliases: settings, stores, queue, the caller, owned records.

The accessors are `async def` because they only read app state: FastAPI then runs them on
the event loop instead of sending each to the threadpool.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from api.errors import AuthRequired
from api.queue import TaskQueue
from api.settings import ApiSettings
from runstore import AsyncStore, NotFound, Store

LOCAL_USER = "local"


async def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def _store(request: Request) -> Store:
    return request.app.state.store


async def _async_store(request: Request) -> AsyncStore:
    return request.app.state.async_store


async def _queue(request: Request) -> TaskQueue:
    return request.app.state.queue


SettingsDep = Annotated[ApiSettings, Depends(_settings)]
StoreDep = Annotated[Store, Depends(_store)]
AsyncStoreDep = Annotated[AsyncStore, Depends(_async_store)]
QueueDep = Annotated[TaskQueue, Depends(_queue)]


async def current_user(settings: SettingsDep) -> str:
    """The caller's user name; with auth off everyone is the one local user."""
    if settings.auth:
        raise AuthRequired("token auth is not available yet; run the server with --no-auth")
    return LOCAL_USER


CurrentUser = Annotated[str, Depends(current_user)]


def owned(record: dict[str, Any] | None, *, user: str, kind: str, record_id: str) -> dict[str, Any]:
    """The record if it exists and is the caller's; else NotFound (others' work is invisible)."""
    if record is None or record["owner"] != user:
        raise NotFound(f"no {kind} with id {record_id!r}")
    return record


async def owned_run(run_id: str, store: AsyncStoreDep, user: CurrentUser) -> dict[str, Any]:
    """The caller's run with this id (with its epochs), or 404."""
    return owned(await store.get_run(run_id), user=user, kind="run", record_id=run_id)


async def owned_sweep(sweep_id: str, store: AsyncStoreDep, user: CurrentUser) -> dict[str, Any]:
    """The caller's sweep with this id, or 404."""
    return owned(await store.get_sweep(sweep_id), user=user, kind="sweep", record_id=sweep_id)


OwnedRun = Annotated[dict[str, Any], Depends(owned_run)]
OwnedSweep = Annotated[dict[str, Any], Depends(owned_sweep)]
