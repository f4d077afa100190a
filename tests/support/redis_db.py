"""The real Redis the tests use: one DB index per kind of test, and the key prefix.

Unit tests use DB 15; the integration servers (a real uvicorn and a real Celery worker,
started through `python -m mlplab.serve`) use DB 14, so flushing one never pulls the broker's
keys from under the other; the servers with auth on (users, fair share) use DB 13. Override
with MLPLAB_TEST_REDIS_URL / MLPLAB_TEST_SERVER_REDIS_URL / MLPLAB_TEST_AUTH_SERVER_REDIS_URL.
"""

from __future__ import annotations

import os

import pytest
import redis

UNIT_REDIS_URL = os.environ.get("MLPLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SERVER_REDIS_URL = os.environ.get("MLPLAB_TEST_SERVER_REDIS_URL", "redis://127.0.0.1:6379/14")
AUTH_SERVER_REDIS_URL = os.environ.get(
    "MLPLAB_TEST_AUTH_SERVER_REDIS_URL", "redis://127.0.0.1:6379/13"
)
TEST_PREFIX = "mlplabtest"


def connect(url: str) -> redis.Redis:
    """A client for url, or a clear failure: these tests need the real Redis."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis must answer at {url} for these tests: {exc}")
    return client


def prefix_keys(client: redis.Redis, prefix: str = TEST_PREFIX) -> list[str]:
    """Every key under a runstore prefix, sorted."""
    return sorted(client.scan_iter(f"{prefix}:*", count=1000))


def pings(client: redis.Redis) -> bool:
    """True when the server answers PING."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
