"""`mlplab up`: starts its own Redis when none answers, serves, and stops every child cleanly."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import redis

from tests.support.paths import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration


def start_up(tmp_path, *, redis_port: int, api_port: int, log_name: str) -> subprocess.Popen:
    """`mlplab up --no-auth` with a private Redis in tmp_path/state; once it is healthy."""
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = dict(
        os.environ,
        MLPLAB_TORCH_THREADS="1",
        MLPLAB_DEVICE="cpu",
        MLPLAB_HEARTBEAT_S="1",
        MLPLAB_KEY_PREFIX="uptest",
        MLPLAB_STATE_DIR=str(tmp_path / "state"),
    )
    argv = [
        sys.executable,
        "-m",
        "mlplab.serve",
        "up",
        "--port",
        str(api_port),
        "--no-auth",
        "--redis-url",
        redis_url,
        "--state-dir",
        str(tmp_path / "state"),
    ]
    log = tmp_path / log_name
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            health = httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2).json()
            if health["status"] == "ok":
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    pytest.fail(f"mlplab up never became healthy:\n{log.read_text()}")


def wait_status(base: str, run_id: str, status: str, *, timeout: float = 120) -> dict:
    """Poll the run until it has the status (a hang bound only)."""
    deadline = time.monotonic() + timeout
    while (run := httpx.get(f"{base}/v1/runs/{run_id}", timeout=10).json())["status"] != status:
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
    return run


def test_up_starts_private_redis_api_and_worker_and_stops_them(tmp_path):
    redis_port, api_port = free_port(), free_port()
    proc = start_up(tmp_path, redis_port=redis_port, api_port=api_port, log_name="up.log")
    try:
        base = f"http://127.0.0.1:{api_port}"
        spec = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
        run_id = httpx.post(f"{base}/v1/runs", json=spec).json()["id"]
        wait_status(base, run_id, "succeeded")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    text = (tmp_path / "up.log").read_text()
    assert code == 0, text
    assert "started redis-server with AOF" in text and "all processes stopped" in text
    assert (tmp_path / "state" / "redis").exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(f"redis://127.0.0.1:{redis_port}/0", socket_connect_timeout=1).ping()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2)


def test_ctrl_c_mid_run_hands_it_back_and_the_next_up_finishes_it(tmp_path):
    """Ctrl-C: the worker checkpoints and requeues its run, Redis (AOF) stops last; the next
    `mlplab up` resumes the run from its checkpoint, every epoch recorded once."""
    redis_port, api_port = free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    spec = {"dataset": "synthetic", "hidden": [512, 512], "batch_size": 8, "epochs": 16}
    proc = start_up(tmp_path, redis_port=redis_port, api_port=api_port, log_name="up1.log")
    try:
        run_id = httpx.post(f"{base}/v1/runs", json=spec).json()["id"]
        deadline = time.monotonic() + 120
        while len(httpx.get(f"{base}/v1/runs/{run_id}").json()["epochs"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the foreground process
        code = proc.wait(timeout=60)
    first = (tmp_path / "up1.log").read_text()
    assert code == 0, first
    assert "handed back" in first and "all processes stopped" in first
    assert "killing it" not in first

    proc = start_up(tmp_path, redis_port=redis_port, api_port=api_port, log_name="up2.log")
    try:
        run = wait_status(base, run_id, "succeeded")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert [e["epoch"] for e in run["epochs"]] == list(range(1, spec["epochs"] + 1))
    assert run["requeues"] == 1
    assert "resuming from epoch" in (tmp_path / "up2.log").read_text()
