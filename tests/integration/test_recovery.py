"""Nothing lost when workers die: real API and Celery worker processes on a private Redis,
killed with SIGKILL or stopped with SIGTERM mid-run, then replaced; a second worker handed a
duplicate of a running group's token; a worker whose lease was taken.

Leases last 3 heartbeats (here 3 x 0.3 s) and the API reaps every 0.3 s, so a vanished
worker's runs are back in the queue about a second later.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import torch

from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from tests.support.paths import ROOT
from tests.support.servers import PrivateRedis, ServerProcesses
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PREFIX = "recovery"
# slow enough to be caught mid-run on any machine (tens of ms an epoch or more), small data
SPEC = {
    "dataset": "synthetic",
    "hidden": [512, 512],
    "batch_size": 8,
    "epochs": 24,
    "device": "cpu",
    "seed": 3,
}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of the test's own, so killing workers touches nothing shared."""
    server = PrivateRedis(tmp_path / "redis", appendonly=False)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def stack(private_redis: str, tmp_path: Path) -> Iterator[ServerProcesses]:
    """An API and the means to start workers, with short leases, on the private Redis."""
    (tmp_path / "logs").mkdir()
    procs = ServerProcesses(redis_url=private_redis, prefix=PREFIX, log_dir=tmp_path / "logs")
    procs.env.update(MLPLAB_HEARTBEAT_S="0.3", MLPLAB_REAP_INTERVAL_S="0.3")
    procs.start("api")
    procs.start("worker")
    procs.wait_ready()
    yield procs
    procs.close()


def run_record(stack: ServerProcesses, run_id: str) -> dict:
    return httpx.get(f"{stack.base_url}/v1/runs/{run_id}", timeout=10).json()


def worker_pid(stack: ServerProcesses) -> int:
    """The Celery worker process's pid (a child of `mlplab worker`), from its heartbeat."""
    workers = httpx.get(f"{stack.base_url}/healthz", timeout=10).json()["workers"]
    return int(workers[0]["pid"])


def reference_losses(specs: list[dict]) -> list[list[tuple[float, float]]]:
    """Each spec's per-epoch (train, test) losses from an uninterrupted run in this process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers run
    torch.set_flush_denormal(True)
    try:
        results = train_group([RunSpec(**s) for s in specs])
    finally:
        torch.set_num_threads(threads)
    return [[(e.train_loss, e.test_loss) for e in r.epochs] for r in results]


def assert_epochs_once_and_exact(
    stack: ServerProcesses, run_ids: list[str], specs: list[dict]
) -> None:
    """Every epoch once in the record and in the stream; losses as an uninterrupted run's."""
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    for run_id, expected in zip(run_ids, reference_losses(specs), strict=True):
        run = run_record(stack, run_id)
        assert run["status"] == "succeeded", run
        epochs = [e["epoch"] for e in run["epochs"]]
        assert epochs == list(range(1, SPEC["epochs"] + 1))
        stream = client.xrange(f"{PREFIX}:run:{run_id}:events")
        stream_epochs = [int(i.split("-")[0]) for i, f in stream if f["type"] == "epoch"]
        assert stream_epochs == epochs
        got = [(e["train_loss"], e["test_loss"]) for e in run["epochs"]]
        assert got == expected


def checkpoint_files(stack: ServerProcesses) -> list[Path]:
    return sorted(Path(stack.env["MLPLAB_CHECKPOINT_DIR"]).glob("*.pt"))


def submit_sweep(stack: ServerProcesses, lrs: list[float]) -> tuple[list[str], list[dict]]:
    body = {"base": SPEC, "grid": {"lr": lrs}}
    reply = httpx.post(f"{stack.base_url}/v1/sweeps", json=body, timeout=30)
    assert reply.status_code == 202, reply.text
    sweep = reply.json()
    specs = [run_record(stack, r)["spec"] for r in sweep["run_ids"]]
    return sweep["run_ids"], specs


def test_a_killed_workers_fused_group_resumes_from_its_checkpoint(stack) -> None:
    run_ids, specs = submit_sweep(stack, [1e-3, 3e-4])
    wait_for(lambda: run_record(stack, run_ids[0])["epochs"][2:], what="epoch 3")
    os.kill(worker_pid(stack), signal.SIGKILL)
    assert len(run_record(stack, run_ids[0])["epochs"]) < SPEC["epochs"], "finished too soon"
    assert checkpoint_files(stack), "the group's checkpoint should be on disk"

    # no worker is alive: the API's reaper notices the lapsed leases and requeues the group
    killed = time.monotonic()
    wait_for(
        lambda: all(run_record(stack, r)["status"] == "queued" for r in run_ids),
        what="the killed worker's runs to be requeued",
    )
    print(f"requeued {time.monotonic() - killed:.2f} s after SIGKILL")
    assert all(run_record(stack, r)["requeues"] == 1 for r in run_ids)
    stack.procs.pop("worker").wait(timeout=30)  # `mlplab worker` ends with its child

    stack.start("worker")
    wait_for(
        lambda: all(run_record(stack, r)["status"] == "succeeded" for r in run_ids),
        what="the resumed runs to finish",
    )
    assert "resuming from epoch" in stack.log_tail("worker", 400)
    assert_epochs_once_and_exact(stack, run_ids, specs)
    assert checkpoint_files(stack) == []


def test_sigterm_hands_the_run_back_and_exits(stack) -> None:
    run_ids, specs = submit_sweep(stack, [1e-3])
    wait_for(lambda: run_record(stack, run_ids[0])["epochs"][1:], what="epoch 2")
    celery = worker_pid(stack)
    supervisor = stack.procs.pop("worker")
    signalled = time.monotonic()
    os.kill(celery, signal.SIGTERM)
    supervisor.wait(timeout=60)  # a hang bound, not a speed check
    print(f"worker gone {time.monotonic() - signalled:.2f} s after SIGTERM")

    run = run_record(stack, run_ids[0])
    assert run["status"] == "queued" and run["requeues"] == 1
    assert len(run["epochs"]) < SPEC["epochs"]
    assert "handed back" in _text(stack.log_dir / "worker.log")
    assert checkpoint_files(stack), "the file to resume from stays"

    stack.start("worker")
    wait_for(
        lambda: run_record(stack, run_ids[0])["status"] == "succeeded",
        what="the handed-back run to finish",
    )
    assert_epochs_once_and_exact(stack, run_ids, specs)


def test_a_duplicate_token_does_not_train_a_held_group_twice(stack) -> None:
    with open(stack.log_dir / "second.log", "ab") as log:  # the child keeps its own fd
        second = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.celery_app",
                "worker",
                "--pool",
                "solo",
                "--hostname",
                "second@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        run_ids, specs = submit_sweep(stack, [1e-3])
        wait_for(lambda: run_record(stack, run_ids[0])["epochs"][1:], what="epoch 2")
        client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
        claim = client.hget(f"{PREFIX}:run:{run_ids[0]}", "claim")
        first = run_record(stack, run_ids[0])["worker"]
        # what Celery does after a visibility timeout: the same task again, to another worker
        from lab.queue import TRAIN_NEXT, create_celery

        create_celery(stack.redis_url, visibility_timeout_s=3600).send_task(
            TRAIN_NEXT, task_id=claim
        )
        wait_for(
            lambda: (
                "held" in _text(stack.log_dir / "second.log")
                or "held" in stack.log_tail("worker", 400)
            ),
            what="the duplicate to give up",
        )
        wait_for(
            lambda: run_record(stack, run_ids[0])["status"] == "succeeded", what="the run to finish"
        )
        assert run_record(stack, run_ids[0])["worker"] == first
        assert "leaving the claim to them" in _text(stack.log_dir / "second.log")
        assert_epochs_once_and_exact(stack, run_ids, specs)
    finally:
        second.terminate()
        second.wait(timeout=30)


def test_a_worker_whose_lease_was_taken_stops_writing(stack) -> None:
    run_ids, _ = submit_sweep(stack, [1e-3])
    run_id = run_ids[0]
    wait_for(lambda: run_record(stack, run_id)["epochs"][1:], what="epoch 2")
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    # as if the reaper had requeued it and another worker had taken it over
    client.hset(f"{PREFIX}:run:{run_id}", "holder", "another-worker")
    client.zadd(f"{PREFIX}:leases", {run_id: 2**50})
    taken_at = len(run_record(stack, run_id)["epochs"])

    wait_for(lambda: "lease lost" in stack.log_tail("worker", 400), what="the worker to notice")
    time.sleep(1.0)
    run = run_record(stack, run_id)
    assert run["status"] == "running"  # the worker did not end it: it is not its run any more
    assert len(run["epochs"]) <= taken_at + 1  # at most the epoch in flight, then nothing
    # the worker goes on serving
    other, _ = submit_sweep(stack, [3e-4])
    wait_for(lambda: run_record(stack, other[0])["status"] == "succeeded", what="the next run")


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
