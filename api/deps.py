"""Dependencies as Annotated aliases: settings, stores, queue, the caller, owned records.

The accessors are `async def` because they only read app state (or Redis, asynchronously):
FastAPI then runs them on the event loop instead of sending each to the threadpool.

Identity and ownership live here only: `CurrentUser` (the Bearer token's user, or the admin
user `local` with auth off), `owned` (others' records are 404, exactly like missing ones;
admins own everything), `AdminUser` (403 for others) and `UserSettings` (the server's
settings with the caller's per-user limit overrides).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Request

from api.errors import AuthRequired, Forbidden
from api.settings import ApiSettings
from lab.queue import TaskQueue
from runstore import AsyncStore, NotFound, Store
from runstore.users import User, authenticate_async

LOCAL_USER = "local"
LOCAL = User(name=LOCAL_USER, admin=True)
_QUERY_TOKENS = ("token", "access_token", "api_key", "apikey")
_USE_HEADER = "send the token as a header: Authorization: Bearer <token>"
RECORD_ID = re.compile(r"[0-9a-f]{16}")  # what runstore.new_id makes (tests keep them in step)


async def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def _store(request: Request) -> Store:
    return request.app.state.store


async def _async_store(request: Request) -> AsyncStore:
    return request.app.state.async_store


async def _stream_store(request: Request) -> AsyncStore:
    return request.app.state.stream_store


async def _queue(request: Request) -> TaskQueue:
    return request.app.state.queue


SettingsDep = Annotated[ApiSettings, Depends(_settings)]
StoreDep = Annotated[Store, Depends(_store)]
AsyncStoreDep = Annotated[AsyncStore, Depends(_async_store)]
StreamStoreDep = Annotated[AsyncStore, Depends(_stream_store)]  # SSE reads: a pool of its own
QueueDep = Annotated[TaskQueue, Depends(_queue)]


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None without one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def current_user(request: Request, settings: SettingsDep, store: AsyncStoreDep) -> User:
    """The user whose Bearer token came with the request; with auth off, the admin `local`."""
    if not settings.auth:
        return LOCAL
    if any(name in request.query_params for name in _QUERY_TOKENS):
        raise AuthRequired(f"tokens in the URL are refused (URLs end up in logs); {_USE_HEADER}")
    token = bearer_token(request)
    if token is None:
        raise AuthRequired(f"authentication required: {_USE_HEADER}")
    user = await authenticate_async(store.client, store.keys, token)
    if user is None:
        raise AuthRequired("invalid or revoked token")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    """The caller, if an admin; else 403."""
    if not user.admin:
        raise Forbidden(f"only an admin may do this; {user.name} is not one")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


async def user_settings(settings: SettingsDep, user: CurrentUser) -> ApiSettings:
    """The server's settings with the caller's per-user overrides of limits and quotas."""
    return settings.model_copy(update=user.overrides) if user.overrides else settings


UserSettingsDep = Annotated[ApiSettings, Depends(user_settings)]


def is_record_id(text: str) -> bool:
    """True for a string of the run and sweep id format (runstore.new_id: 16 hex digits)."""
    return RECORD_ID.fullmatch(text) is not None


def checked_id(record_id: str, *, kind: str) -> str:
    """The id, if it has the id format; else NotFound before any Redis call.

    An id is pasted into key names, so `<id>:events` would name the record's stream (a
    WRONGTYPE from Redis, a 500) and other suffixes other keys.
    """
    if not is_record_id(record_id):
        raise NotFound(f"no {kind} with id {record_id[:40]!r}")
    return record_id


def owned(
    record: dict[str, Any] | None, *, user: User, kind: str, record_id: str
) -> dict[str, Any]:
    """The record if it exists and the caller owns it (admins own all); else NotFound, the
    same answer as for a missing id, so others' work is invisible."""
    if record is None or (record["owner"] != user.name and not user.admin):
        raise NotFound(f"no {kind} with id {record_id!r}")
    return record


async def owned_run(run_id: str, store: AsyncStoreDep, user: CurrentUser) -> dict[str, Any]:
    """The caller's run with this id (with its epochs), or 404."""
    record = await store.get_run(checked_id(run_id, kind="run"))
    return owned(record, user=user, kind="run", record_id=run_id)


async def owned_sweep(sweep_id: str, store: AsyncStoreDep, user: CurrentUser) -> dict[str, Any]:
    """The caller's sweep with this id, or 404."""
    record = await store.get_sweep(checked_id(sweep_id, kind="sweep"))
    return owned(record, user=user, kind="sweep", record_id=sweep_id)


OwnedRun = Annotated[dict[str, Any], Depends(owned_run)]
OwnedSweep = Annotated[dict[str, Any], Depends(owned_sweep)]
