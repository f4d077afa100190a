"""A learned sweep survives its processes: a worker SIGKILLed mid-batch and an API killed and
restarted both leave the search where it was, every batch asked once, no run twice, none
lost (real API and Celery worker processes on a private Redis, as tests/integration/
test_recovery.py). Every wait is on a record field; the bounds only stop a hang."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.servers import PrivateRedis, ServerProcesses
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PREFIX = "learned"
# slow enough to be caught mid-batch (as test_recovery's SPEC), one shape: a batch trains fused
BASE = {"dataset": "synthetic", "hidden": [512, 512], "batch_size": 8, "epochs": 8, "device": "cpu"}
SWEEP = {
    "strategy": "tpe",
    "base": BASE,
    "space": {"lr": {"loguniform": [1e-4, 1e-2]}, "activation": ["relu", "tanh"]},
    "n": 6,
    "batch": 3,
    "seed": 5,
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ServerProcesses]:
    """An API and a worker with short leases on a redis-server of the test's own."""
    server = PrivateRedis(tmp_path / "redis", appendonly=False)
    server.start()
    (tmp_path / "logs").mkdir()
    procs = ServerProcesses(redis_url=server.url, prefix=PREFIX, log_dir=tmp_path / "logs")
    procs.env.update(MLPLAB_HEARTBEAT_S="0.3", MLPLAB_REAP_INTERVAL_S="0.3")
    procs.start("api")
    procs.start("worker")
    try:
        procs.wait_ready(timeout=600)
        yield procs
    finally:
        procs.close()
        server.stop()


def get(stack: ServerProcesses, path: str) -> dict:
    return httpx.get(f"{stack.base_url}{path}", timeout=10).json()


def submit(stack: ServerProcesses) -> dict:
    reply = httpx.post(f"{stack.base_url}/v1/sweeps", json=SWEEP, timeout=30)
    assert reply.status_code == 202, reply.text
    return reply.json()


def worker_pid(stack: ServerProcesses) -> int:
    return int(get(stack, "/healthz")["workers"][0]["pid"])


def second_batch_training(stack: ServerProcesses, sweep_id: str) -> bool:
    """Batch 2 exists and one of its runs has trained two epochs."""
    ids = get(stack, f"/v1/sweeps/{sweep_id}")["run_ids"]
    return len(ids) == 6 and any(len(get(stack, f"/v1/runs/{r}")["epochs"]) >= 2 for r in ids[3:])


def assert_searched_once(stack: ServerProcesses, sweep_id: str) -> None:
    """Two batches of three, every run succeeded with each epoch once, no stray run."""
    view = get(stack, f"/v1/sweeps/{sweep_id}")
    assert view["done"] and view["counts"] == {"succeeded": 6}, view
    assert view["search"]["batches_done"] == 2 and view["search"]["next"] is None
    assert view["search"]["trials"]["complete"] == 6
    assert len(set(view["run_ids"])) == 6
    for run_id in view["run_ids"]:
        run = get(stack, f"/v1/runs/{run_id}")
        assert [e["epoch"] for e in run["epochs"]] == list(range(1, BASE["epochs"] + 1))
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    runs = [k for k in client.scan_iter(f"{PREFIX}:run:*") if k.count(":") == 2]
    assert len(runs) == 6, runs  # no run created twice by a repeated batch move


def test_a_worker_killed_mid_batch_resumes_the_search(stack) -> None:
    sweep = submit(stack)
    wait_for(lambda: second_batch_training(stack, sweep["id"]), what="batch 2 training",
             timeout=600)  # fmt: skip
    os.kill(worker_pid(stack), signal.SIGKILL)
    wait_for(lambda: get(stack, f"/v1/sweeps/{sweep['id']}")["done"], what="the search to end",
             timeout=600)  # fmt: skip
    assert_searched_once(stack, sweep["id"])
    requeued = [get(stack, f"/v1/runs/{r}")["requeues"] for r in sweep["run_ids"]]
    assert requeued == [0, 0, 0]  # batch 1 was done before the kill


def test_an_api_restart_loses_nothing_of_the_search(stack) -> None:
    sweep = submit(stack)
    wait_for(lambda: len(get(stack, f"/v1/runs/{sweep['run_ids'][0]}")["epochs"]) >= 1,
             what="batch 1 training", timeout=600)  # fmt: skip
    stack.kill_api()
    stack.start("api")
    stack.wait_ready(timeout=600)
    wait_for(lambda: get(stack, f"/v1/sweeps/{sweep['id']}")["done"], what="the search to end",
             timeout=600)  # fmt: skip
    assert_searched_once(stack, sweep["id"])
