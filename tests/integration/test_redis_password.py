"""The private Redis's password: kept 0600 in the state dir, found by the parts started later
(`mlplab api`, `mlplab worker`) for a local URL without one, and never shown in a log line."""

import stat

import httpx
import pytest
import redis

from mlplab.redisauth import (
    ensure_password,
    local_url,
    password_path,
    read_password,
    redacted,
    with_password,
)
from tests.support.servers import PrivateRedis, ServerProcesses
from tests.support.waiting import wait_for_run

pytestmark = pytest.mark.integration


def test_the_password_is_made_once_and_kept_0600(tmp_path):
    password = ensure_password(tmp_path / "state")
    assert len(password) >= 32 and ensure_password(tmp_path / "state") == password
    assert stat.S_IMODE(password_path(tmp_path / "state").stat().st_mode) == 0o600
    password_path(tmp_path / "state").chmod(0o644)
    assert read_password(tmp_path / "state") == password
    assert stat.S_IMODE(password_path(tmp_path / "state").stat().st_mode) == 0o600


def test_only_a_local_url_without_a_password_gets_the_kept_one(tmp_path):
    assert local_url("redis://127.0.0.1:6379/0", state_dir=tmp_path) == "redis://127.0.0.1:6379/0"
    password = ensure_password(tmp_path)
    assert local_url("redis://127.0.0.1:6379/0", state_dir=tmp_path) == (
        f"redis://:{password}@127.0.0.1:6379/0"
    )
    assert (
        local_url("redis://localhost/2", state_dir=tmp_path) == f"redis://:{password}@localhost/2"
    )
    for url in ("redis://:mine@127.0.0.1:6379/0", "redis://redis.lab:6379/0", "rediss://x:1/0"):
        assert local_url(url, state_dir=tmp_path) == url


def test_a_url_in_a_log_line_hides_its_password():
    assert redacted("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redacted("rediss://ann:s3cret@redis.lab:6380/1") == "rediss://ann:***@redis.lab:6380/1"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert with_password("redis://[::1]:6379/0", "a/b") == "redis://:a%2Fb@[::1]:6379/0"


def test_api_and_worker_started_later_find_the_password(tmp_path):
    """A Redis with the kept password, the parts given its URL without it: a run trains."""
    private = PrivateRedis(tmp_path / "redis", appendonly=False)
    private.start()
    procs = ServerProcesses(redis_url=private.url, prefix="pwtest", log_dir=tmp_path)
    password = ensure_password(tmp_path / "state")  # the state dir ServerProcesses gives them
    redis.Redis.from_url(private.url).config_set("requirepass", password)
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(private.url).ping()
        procs.start("worker")
        procs.start("api")
        procs.wait_ready()  # healthz ok: the API reads Redis and sees the worker's heartbeat
        with httpx.Client(base_url=procs.base_url, timeout=30) as http:
            spec = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
            run_id = http.post("/v1/runs", json=spec).json()["id"]
            run = wait_for_run(http, run_id, lambda r: r["status"] in ("succeeded", "failed"))
        assert run["status"] == "succeeded", run
    finally:
        procs.close()
        private.stop()
    logs = (tmp_path / "api.log").read_text() + (tmp_path / "worker.log").read_text()
    assert password not in logs
