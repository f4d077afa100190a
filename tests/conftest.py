"""The fixtures every test directory shares: the real Redis (own DB index, flushed), the API
in-process, real servers. Helpers (plain functions and classes) live in tests/support; the
Redis DB indexes are described in tests/support/redis_db.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.http import starlette_test_client
from tests.support.redis_db import (
    AUTH_SERVER_REDIS_URL,
    SERVER_REDIS_URL,
    TEST_PREFIX,
    UNIT_REDIS_URL,
    connect,
)
from tests.support.servers import ServerProcesses


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The unit-test DB, empty before and after the test."""
    client = connect(UNIT_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def store(redis_client: redis.Redis):
    """A Store on the unit-test DB under the test prefix."""
    from runstore import Store

    return Store(redis_client, prefix=TEST_PREFIX)


@pytest.fixture
def api_settings(tmp_path: Path):
    """API settings on the unit-test DB with small limits, auth off (the user `local`), and
    an artifact store of the test's own."""
    from api.settings import ApiSettings

    return ApiSettings(
        artifact_dir=tmp_path / "artifacts",
        redis_url=UNIT_REDIS_URL,
        key_prefix=TEST_PREFIX,
        max_epochs=50,
        max_hidden_width=1024,
        max_runs_per_sweep=16,
        sse_keepalive_s=0.5,
        auth=False,
    )


@pytest.fixture
def client(api_settings, redis_client):
    """The app in-process (its startup and shutdown run) against the real Redis."""
    from api.main import create_app

    with starlette_test_client()(create_app(api_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcesses]:
    """A real API and a real Celery worker on DB 14, shared by the integration tests."""
    client = connect(SERVER_REDIS_URL)
    client.flushdb()
    procs = ServerProcesses(
        redis_url=SERVER_REDIS_URL, prefix=TEST_PREFIX, log_dir=tmp_path_factory.mktemp("server")
    )
    procs.start("worker")
    procs.start("api")
    try:
        procs.wait_ready()
        yield procs
    finally:
        procs.close()
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcesses]:
    """A real API with token auth on and a real worker (DB 13), for users and fair share."""
    client = connect(AUTH_SERVER_REDIS_URL)
    client.flushdb()
    procs = ServerProcesses(
        redis_url=AUTH_SERVER_REDIS_URL,
        prefix=TEST_PREFIX,
        auth=True,
        log_dir=tmp_path_factory.mktemp("auth-server"),
    )
    procs.env["MLPLAB_MAX_RUNS_PER_SWEEP"] = "64"
    procs.start("worker")
    procs.start("api")
    try:
        procs.wait_ready()
        yield procs
    finally:
        procs.close()
        client.flushdb()
        client.close()


@pytest.fixture
def users(redis_client: redis.Redis):
    """A UserStore on the unit-test DB under the test prefix."""
    from runstore.users import UserStore

    return UserStore(redis_client, prefix=TEST_PREFIX)


@pytest.fixture
def auth_client(api_settings, redis_client):
    """The app in-process with token auth on (add users with the `users` fixture)."""
    from api.main import create_app

    settings = api_settings.model_copy(update={"auth": True})
    with starlette_test_client()(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def server_redis(server: ServerProcesses) -> redis.Redis:
    """A client on the integration servers' Redis DB."""
    return connect(server.redis_url)


@pytest.fixture
def http(server: ServerProcesses) -> Iterator[httpx.Client]:
    """An HTTP client on the running API."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client
