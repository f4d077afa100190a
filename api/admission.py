"""Admitting a submission under the caller's quotas (429 when max_queued is full)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from api.settings import ApiSettings
from runstore import Store
from runstore.fairqueue import FairQueue
from runstore.quota import Quota


@contextmanager
def admitted(*, store: Store, owner: str, runs: int, settings: ApiSettings) -> Iterator[None]:
    """Hold room under max_queued for `runs` new runs while the caller writes and queues them.

    Raises runstore.quota.QuotaFull (429, naming the quota and the owner's count) before
    anything is written. `settings` are the owner's (UserSettings): their max_running is
    recorded for the fair-share scheduler.
    """
    quota = Quota(store.client, prefix=store.keys.prefix)
    with quota.lease(owner=owner, runs=runs, limit=settings.max_queued):
        FairQueue(store.client, prefix=store.keys.prefix).set_cap(
            owner=owner, cap=settings.max_running
        )
        yield
