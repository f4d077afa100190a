"""Nothing lost when workers die: real API and Celery worker processes on a private Redis,
killed with SIGKILL or stopped with SIGTERM mid-run, then replaced; a second worker handed a
duplicate of a running group's token; a worker whose lease was taken.

Leases last 3 heartbeats (here 3 x 0.3 s) and the API reaps every 0.3 s, so a vanished
worker's runs are back in the queue about a second later. Every wait is on an event (a record
field, a log line, a worker's heartbeat); the bounds only stop a hang.
"""

from __future__ import annotations

import json
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

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # a hang bound on a busy box

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
    try:
        procs.wait_ready(timeout=600)
        yield procs
    finally:
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

    # no worker is alive until `mlplab worker` restarts its child: the API's reaper notices
    # the lapsed leases and requeues the group (the count stays; the status may move on)
    killed = time.monotonic()
    wait_for(
        lambda: all(run_record(stack, r)["requeues"] == 1 for r in run_ids),
        what="the killed worker's runs to be requeued",
    )
    print(f"requeued {time.monotonic() - killed:.2f} s after SIGKILL")
    wait_for(
        lambda: all(run_record(stack, r)["status"] == "succeeded" for r in run_ids),
        what="the restarted worker to finish the resumed runs",
    )
    assert "resuming from epoch" in stack.log_tail("worker", 400)
    assert_epochs_once_and_exact(stack, run_ids, specs)
    assert checkpoint_files(stack) == []
    assert all(run_record(stack, r)["requeues"] == 1 for r in run_ids)


def test_sigterm_hands_the_run_back_and_exits(stack) -> None:
    run_ids, specs = submit_sweep(stack, [1e-3])
    wait_for(lambda: run_record(stack, run_ids[0])["epochs"][1:], what="epoch 2")
    celery = worker_pid(stack)
    os.kill(celery, signal.SIGTERM)

    # it hands the run back and exits; `mlplab worker` starts a new one, which resumes it
    wait_for(
        lambda: "handed back" in _text(stack.log_dir / "worker.log"),
        what="the worker to hand its run back",
    )
    wait_for(
        lambda: run_record(stack, run_ids[0])["status"] == "succeeded",
        what="the handed-back run to finish",
    )
    assert worker_pid(stack) != celery
    assert run_record(stack, run_ids[0])["requeues"] == 1
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    stream = client.xrange(f"{PREFIX}:run:{run_ids[0]}:events")
    statuses = [json.loads(f["data"]) for _, f in stream if f["type"] == "status"]
    requeued = [s.get("reason") or "" for s in statuses[1:] if s["status"] == "queued"]
    # handed back, not left for its lease to lapse
    assert len(requeued) == 1 and requeued[0].startswith("its worker shut down"), requeued
    assert "resuming from epoch" in stack.log_tail("worker", 400)  # its file was kept
    assert_epochs_once_and_exact(stack, run_ids, specs)


def test_a_duplicate_token_does_not_train_a_held_group_twice(stack) -> None:
    """Celery redelivers a token (visibility timeout) to a second worker while the first still
    trains its group. The first is held frozen, its leases kept alive for it, for as long as
    the duplicate takes, so the group is still held however slowly either worker goes."""
    second = start_second_worker(stack)
    try:
        wait_for(lambda: len(workers(stack)) == 2, what="the second worker to be up", timeout=600)
        run_ids, specs = submit_sweep(stack, [1e-3])
        wait_for(lambda: run_record(stack, run_ids[0])["epochs"][1:], what="epoch 2")
        first = run_record(stack, run_ids[0])["worker"]  # either worker may have taken it
        pid = next(int(w["pid"]) for w in workers(stack) if w["hostname"] == first)
        other_log = stack.log_dir / ("worker.log" if first.startswith("second@") else "second.log")
        client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
        claim = client.hget(f"{PREFIX}:run:{run_ids[0]}", "claim")

        os.kill(pid, signal.SIGSTOP)
        try:
            # its heartbeat cannot renew now: the test does, so that it stays the holder
            client.zadd(f"{PREFIX}:leases", dict.fromkeys(run_ids, 2**50))
            client.zadd(f"{PREFIX}:fair:claims", {claim: 2**50})
            assert run_record(stack, run_ids[0])["status"] == "running", "finished too soon"
            # what Celery does after a visibility timeout: the same task again, to another worker
            from lab.queue import TRAIN_NEXT, create_celery

            create_celery(stack.redis_url, visibility_timeout_s=3600).send_task(
                TRAIN_NEXT, task_id=claim
            )
            wait_for(
                lambda: "leaving the claim to them" in _text(other_log),
                what="the duplicate to give up",
                timeout=600,
            )
        finally:
            os.kill(pid, signal.SIGCONT)  # its next heartbeat renews the leases as before
        assert "held, not started" in _text(other_log)
        wait_for(
            lambda: run_record(stack, run_ids[0])["status"] == "succeeded",
            what="the run to finish",
            timeout=600,
        )
        assert run_record(stack, run_ids[0])["worker"] == first
        assert_epochs_once_and_exact(stack, run_ids, specs)
    finally:
        second.terminate()
        second.wait(timeout=60)


def start_second_worker(stack: ServerProcesses) -> subprocess.Popen[bytes]:
    """A second Celery worker (solo pool) on the stack's Redis, logging to second.log."""
    with open(stack.log_dir / "second.log", "ab") as log:  # the child keeps its own fd
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool",
             "solo", "--hostname", "second@%h", "--without-gossip", "--without-mingle",
             "--loglevel", "INFO"],
            cwd=ROOT,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def workers(stack: ServerProcesses) -> list[dict]:
    """The workers whose heartbeat is live."""
    return httpx.get(f"{stack.base_url}/healthz", timeout=30).json()["workers"]


def test_a_worker_whose_lease_was_taken_stops_writing(stack) -> None:
    run_ids, _ = submit_sweep(stack, [1e-3])
    run_id = run_ids[0]
    wait_for(lambda: run_record(stack, run_id)["epochs"][1:], what="epoch 2")
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    # as if the reaper had requeued it and another worker had taken it over
    client.hset(f"{PREFIX}:run:{run_id}", "holder", "another-worker")
    client.zadd(f"{PREFIX}:leases", {run_id: 2**50})
    # read after the takeover: an append is one Lua step, so any later one meets the fence
    taken_at = len(run_record(stack, run_id)["epochs"])

    wait_for(lambda: "lease lost" in stack.log_tail("worker", 400), what="the worker to notice")
    # the worker goes on serving; its pool is solo, so the next run starts only once it has
    # dropped the taken one
    other, _ = submit_sweep(stack, [3e-4])
    wait_for(lambda: run_record(stack, other[0])["status"] == "succeeded", what="the next run")
    run = run_record(stack, run_id)
    assert run["status"] == "running"  # the worker did not end it: it is not its run any more
    assert run["result"] is None and run["error"] is None
    assert len(run["epochs"]) == taken_at  # not one epoch after the takeover
    assert checkpoint_files(stack), "the file stays for the run's holder to resume from"


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
