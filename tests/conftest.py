"""Shared fixtures: the real Redis (own DB index, flushed), the API in-process, real servers.

Unit tests use DB 15; the integration servers (a real uvicorn and a real Celery worker,
started through `python -m mlplab.serve`) use DB 14, so flushing one never pulls the broker's
keys from under the other; the servers with auth on (users, fair share) use DB 13. Override
with MLPLAB_TEST_REDIS_URL / MLPLAB_TEST_SERVER_REDIS_URL / MLPLAB_TEST_AUTH_SERVER_REDIS_URL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

UNIT_REDIS_URL = os.environ.get("MLPLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SERVER_REDIS_URL = os.environ.get("MLPLAB_TEST_SERVER_REDIS_URL", "redis://127.0.0.1:6379/14")
AUTH_SERVER_REDIS_URL = os.environ.get(
    "MLPLAB_TEST_AUTH_SERVER_REDIS_URL", "redis://127.0.0.1:6379/13"
)
TEST_PREFIX = "mlplabtest"
ROOT = Path(__file__).resolve().parent.parent


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
def api_settings():
    """API settings on the unit-test DB with small limits, auth off (the user `local`)."""
    from api.settings import ApiSettings

    return ApiSettings(
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


def starlette_test_client() -> type:
    """Starlette's TestClient; its import warns that httpx should become httpx2 (not ours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcesses:
    """`mlplab api` and `mlplab worker` as subprocesses against one Redis DB."""

    def __init__(self, *, redis_url: str, prefix: str, log_dir: Path, auth: bool = False) -> None:
        self.redis_url, self.prefix, self.log_dir, self.auth = redis_url, prefix, log_dir, auth
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = dict(
            os.environ,
            MLPLAB_REDIS_URL=redis_url,
            MLPLAB_KEY_PREFIX=prefix,
            MLPLAB_DEVICE="cpu",
            MLPLAB_TORCH_THREADS="1",
            MLPLAB_HEARTBEAT_S="1",
            MLPLAB_CANCEL_POLL_S="0.05",
            MLPLAB_DATA_DIR=str(log_dir / "data"),
            MLPLAB_MAX_EPOCHS="400",
            MLPLAB_MAX_RUNS_PER_SWEEP="16",
            MLPLAB_SSE_KEEPALIVE_S="1",
            MLPLAB_CHECKPOINT_DIR=str(log_dir / "checkpoints"),
            MLPLAB_STATE_DIR=str(log_dir / "state"),
        )

    def start(self, part: str) -> None:
        """Start `api` or `worker`, logging to a file in the log dir."""
        argv = [sys.executable, "-m", "mlplab.serve", part, "--port", str(self.port)]
        argv += [] if self.auth else ["--no-auth"]
        with open(self.log_dir / f"{part}.log", "ab") as log:  # the child keeps its own fd
            self.procs[part] = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self, part: str) -> None:
        """SIGTERM a part and wait for it (and the children it supervises) to exit."""
        proc = self.procs.pop(part)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def wait_ready(self, *, worker: bool = True, timeout: float = 90) -> None:
        """Poll /healthz until it answers (and, with worker=True, a worker is alive)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for part, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{part} exited early:\n{self.log_tail(part)}")
            try:
                body = httpx.get(f"{self.base_url}/healthz", timeout=2).json()
                if body["status"] == "ok" or (not worker and body["redis"]):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"server not ready in {timeout}s:\n{self.log_tail('api')}\n{self.log_tail('worker')}"
        )

    def log_tail(self, part: str, lines: int = 40) -> str:
        """The end of a part's log."""
        path = self.log_dir / f"{part}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop everything still running."""
        for part in list(self.procs):
            self.stop(part)


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


def parse_sse(lines) -> list[dict]:
    """SSE messages (id, event, data parsed as JSON) from an iterable of text lines."""
    import json

    messages, current = [], {}
    for line in lines:
        if not line:
            if "data" in current:
                messages.append({**current, "data": json.loads(current["data"])})
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return messages


def python_stdout(code: str, **env: str) -> str:
    """What `python -c code` prints, run in a fresh process from the repo root with `env` added
    to the environment (for process-wide state: imports, torch flags); asserts it exits 0."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
