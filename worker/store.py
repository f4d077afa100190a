"""The worker process's run store, built once from its settings."""

from __future__ import annotations

from functools import lru_cache

from runstore import Store
from worker.settings import get_settings


@lru_cache
def get_store() -> Store:
    """One Store (and connection pool) per worker process."""
    settings = get_settings()
    return Store.from_url(settings.redis_url, prefix=settings.key_prefix)
