"""`mlplab up`: starts its own Redis when none answers, serves, and stops every child cleanly."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import redis

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.integration


def test_up_starts_private_redis_api_and_worker_and_stops_them(tmp_path):
    redis_port, api_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = dict(os.environ, MLPLAB_TORCH_THREADS="1", MLPLAB_DEVICE="cpu",
               MLPLAB_HEARTBEAT_S="1", MLPLAB_KEY_PREFIX="uptest")
    argv = [sys.executable, "-m", "mlplab.serve", "up", "--port", str(api_port), "--no-auth",
            "--redis-url", redis_url, "--state-dir", str(tmp_path / "state")]
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"mlplab up never became healthy:\n{log.read_text()}")
        spec = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
        run_id = httpx.post(f"{base}/v1/runs", json=spec).json()["id"]
        while httpx.get(f"{base}/v1/runs/{run_id}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    text = log.read_text()
    assert code == 0, text
    assert "started redis-server with AOF" in text and "all processes stopped" in text
    assert (tmp_path / "state" / "redis").exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2)
