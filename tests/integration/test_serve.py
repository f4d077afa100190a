"""`mlplab up`: starts its own Redis (with a password) when none answers, serves, restarts a
crashed child, stops every child cleanly on a signal, and takes them along when it is killed."""

import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.paths import ROOT
from tests.support.servers import free_port
from tests.support.waiting import wait_for

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


def started_pids(log: Path) -> dict[str, list[int]]:
    """Every pid the supervisor logged for each child, in the order they were started."""
    pids: dict[str, list[int]] = {}
    for name, pid in re.findall(r"\bstarted (\S+) \(pid (\d+)\)", log.read_text()):
        pids.setdefault(name, []).append(int(pid))
    return pids


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def users_list(redis_port: int, state_dir: Path) -> subprocess.CompletedProcess:
    """`mlplab users list` against the private Redis, finding its password in state_dir."""
    argv = [sys.executable, "-m", "mlplab.cli", "users", "list", "--prefix", "uptest"]
    argv += ["--redis-url", f"redis://127.0.0.1:{redis_port}/0"]
    env = dict(os.environ, MLPLAB_STATE_DIR=str(state_dir))
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_up_starts_private_redis_api_and_worker_and_stops_them(tmp_path):
    redis_port, api_port = free_port(), free_port()
    proc = start_up(tmp_path, redis_port=redis_port, api_port=api_port, log_name="up.log")
    state = tmp_path / "state"
    try:
        base = f"http://127.0.0.1:{api_port}"
        spec = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
        run_id = httpx.post(f"{base}/v1/runs", json=spec).json()["id"]
        wait_status(base, run_id, "succeeded")
        # the private Redis wants the password that only the state dir's 0600 file holds
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(f"redis://127.0.0.1:{redis_port}/0").ping()
        password = (state / "redis-password").read_text().strip()
        assert stat.S_IMODE((state / "redis-password").stat().st_mode) == 0o600
        assert redis.Redis.from_url(f"redis://:{password}@127.0.0.1:{redis_port}/0").ping()
        redis_pid = started_pids(tmp_path / "up.log")["redis-server"][0]
        assert password not in Path(f"/proc/{redis_pid}/cmdline").read_text()  # ps shows argv
        listed = users_list(redis_port, state)
        assert listed.returncode == 0 and listed.stdout.startswith("NAME"), listed.stderr
        refused = users_list(redis_port, tmp_path / "elsewhere")
        assert refused.returncode == 3 and password not in refused.stderr, refused.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    text = (tmp_path / "up.log").read_text()
    assert code == 0, text
    assert "started redis-server with AOF" in text and "all processes stopped" in text
    assert password not in text
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


def test_a_killed_child_is_restarted_and_the_others_never_notice(tmp_path):
    """SIGKILL the worker: a new one comes up while the API answers throughout. SIGKILL the
    API: a new one comes up and the worker is the same process. Recovery times printed."""
    redis_port, api_port = free_port(), free_port()
    base, log = f"http://127.0.0.1:{api_port}", tmp_path / "up.log"
    proc = start_up(tmp_path, redis_port=redis_port, api_port=api_port, log_name="up.log")
    down: list[Exception] = []
    stop = threading.Event()

    def watch_api() -> None:
        while not stop.wait(0.1):
            try:
                httpx.get(f"{base}/healthz", timeout=30)
            except httpx.TransportError as exc:
                down.append(exc)

    def workers() -> list[dict]:
        try:
            return httpx.get(f"{base}/healthz", timeout=10).json()["workers"]
        except httpx.HTTPError:
            return []

    watcher = threading.Thread(target=watch_api)
    try:
        old_worker, api_pid = workers()[0]["pid"], started_pids(log)["api"][0]
        watcher.start()
        killed = time.monotonic()
        os.kill(old_worker, signal.SIGKILL)
        wait_for(lambda: [w for w in workers() if w["pid"] != old_worker], what="a new worker")
        print(f"\nworker back {time.monotonic() - killed:.1f} s after its SIGKILL")
        stop.set()
        watcher.join()
        new_worker = workers()[0]["pid"]
        killed = time.monotonic()
        os.kill(api_pid, signal.SIGKILL)
        wait_for(lambda: len(started_pids(log)["api"]) == 2 and workers(), what="a new API")
        print(f"API back {time.monotonic() - killed:.1f} s after its SIGKILL")
        assert [w["pid"] for w in workers()] == [new_worker] and alive(new_worker)
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    text = log.read_text()
    assert not down, down  # the API answered all the while the worker was down
    assert started_pids(log)["cpu1"] == [old_worker, new_worker], text
    assert f"cpu1 (pid {old_worker}) exited with SIGKILL; restarting it in" in text
    assert f"api (pid {api_pid}) exited with SIGKILL; restarting it in" in text
    assert "stopping everything" not in text and code == 0


def test_a_killed_up_takes_every_child_with_it(tmp_path):
    """SIGKILL `mlplab up` itself: its Redis, API and worker all end (no orphans)."""
    redis_port, api_port = free_port(), free_port()
    proc = start_up(tmp_path, redis_port=redis_port, api_port=api_port, log_name="up.log")
    children = [pid for pids in started_pids(tmp_path / "up.log").values() for pid in pids]
    assert len(children) == 3 and all(alive(pid) for pid in children)
    killed = time.monotonic()
    proc.kill()
    proc.wait()
    wait_for(
        lambda: not any(alive(pid) for pid in children),
        what=lambda: f"the children to end: {[p for p in children if alive(p)]} still alive",
        timeout=120,
    )
    print(f"\nevery child of a SIGKILLed up gone {time.monotonic() - killed:.1f} s after")


def test_a_redis_older_than_7_is_named_and_refused():
    """XADD `<ms>-*` (runstore's events) needs Redis 7.0: an older one would turn every
    submission into a 500, so `up`, `api` and `worker` stop at once saying why."""
    from mlplab.serve import redis_version, too_old

    assert "Redis 6.2.14; mlplab needs 7.0 or newer" in (too_old("6.2.14") or "")
    assert too_old("6.0.9") and too_old("5.0.7")
    assert too_old("7.0.15") is None and too_old("7.4.0") is None and too_old("10.1") is None
    assert too_old("") is None  # a fork's own numbering is let through
    found = redis_version("redis://127.0.0.1:6379/15")  # the suite's Redis serves
    assert found is not None and too_old(found) is None
    assert redis_version(f"redis://127.0.0.1:{free_port()}/0") is None  # nothing answers
