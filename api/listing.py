"""Which runs a caller may list, and where queued runs stand in the fair-share queue."""

from __future__ import annotations

from typing import Any

from api.errors import Forbidden
from mlpcore.status import RunStatus
from runstore import Store
from runstore.users import User


def visible_run_ids(*, store: Store, user: User, owner: str | None) -> list[str]:
    """Newest first: the caller's own runs; an admin's: one owner's, or everyone's without one.

    A non-admin naming another owner gets 403 (for any name, so it tells nothing about who
    exists); naming themselves is the same as naming nobody.
    """
    if owner is not None and owner != user.name and not user.admin:
        raise Forbidden("only an admin may list another user's runs; leave out owner")
    if user.admin and owner is None:
        return store.all_run_ids()
    return store.owner_run_ids(owner=owner or user.name)


def with_queue_positions(runs: list[dict[str, Any]], *, store: Store) -> list[dict[str, Any]]:
    """The runs with `queue_position` (runs dispatched before it; None once not queued)."""
    if not any(run["status"] == RunStatus.queued for run in runs):
        return runs
    positions = store.fair.positions()
    for run in runs:
        run["queue_position"] = (
            positions.get(run["id"]) if run["status"] == RunStatus.queued else None
        )
    return runs
