"""/v1/limits (anyone: their own limits and usage) and /v1/users (admins: priority, overrides).

Users are added, revoked and given tokens with the `mlplab users` command on the server
(a token is printed once, where the admin runs it), not over HTTP.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminUser, CurrentUser, SettingsDep, StoreDep, UserSettingsDep
from api.schemas import LimitsPublic, UserPublic, UsersPublic, UserUpdate
from runstore.streams import open_streams
from runstore.users import LIMIT_NAMES

router = APIRouter(prefix="/v1", tags=["users"])


@router.get("/limits", response_model=LimitsPublic, status_code=200)
def get_limits(user: CurrentUser, settings: UserSettingsDep, store: StoreDep) -> dict[str, Any]:
    """The caller's effective limits and quotas (server settings with their overrides) and
    how many of their runs, and how many param-epochs of them, count against the quotas now
    (and how many event streams they hold open, how many models and bytes they store)."""
    usage = {
        **store.quota.usage(owner=user.name),
        "param_epochs": store.quota.param_epochs(owner=user.name),
        "streams": open_streams(store.client, store.keys, owner=user.name),
        **store.models.usage(owner=user.name),
    }
    return {
        "user": user.name,
        "admin": user.admin,
        "priority": user.priority,
        "limits": {name: getattr(settings, name) for name in LIMIT_NAMES},
        "overrides": user.overrides,
        "usage": usage,
    }


@router.get("/users", response_model=UsersPublic, status_code=200)
def list_users(_: AdminUser, store: StoreDep) -> dict[str, Any]:
    """Every user with priority and overrides (admins only)."""
    users = [u.public() for u in store.users.list()]
    return {"data": users, "count": len(users)}


@router.patch("/users/{name}", response_model=UserPublic, status_code=200)
def update_user(
    name: str, change: UserUpdate, _: AdminUser, store: StoreDep, settings: SettingsDep
) -> dict[str, Any]:
    """Set a user's fair-share priority and limit overrides (null drops one; admins only)."""
    users = store.users
    limits: dict[str, int | None] = dict(change.limits.items())
    user = users.update(name, priority=change.priority, limits=limits)
    cap = user.overrides.get("max_running", settings.max_running)
    store.fair.set_cap(owner=name, cap=cap)
    return user.public()
