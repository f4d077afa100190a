"""A worker frozen past its lease (SIGSTOP, as a stalled VM or a debugger would) loses nothing:
real API and Celery worker processes on a private Redis. Its runs are requeued while it is
frozen; once thawed, it finds its lease lost and drops them silently (no status, no epoch,
no file the next attempt would trust), then takes them up again from the queue and trains
every remaining epoch. Issue 14, item 1: before, they all ended `cancelled`.

The spec is the issue's: epochs of 4 batches, so no poll happens inside an epoch and the lost
lease is first met at the epoch's end.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import torch

from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from tests.support.servers import PrivateRedis, ServerProcesses
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # a hang bound on a busy box

PREFIX = "frozen"
SPEC = {
    "dataset": "mnist-5k",  # offline, 4000 training samples: 4 batches of 1000
    "hidden": [1024, 1024],
    "batch_size": 1000,
    "epochs": 8,
    "device": "cpu",
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ServerProcesses]:
    """An API and one worker on a private Redis; heartbeat 1 s (a lease lasts 3 s)."""
    server = PrivateRedis(tmp_path / "redis", appendonly=False)
    server.start()
    (tmp_path / "logs").mkdir()
    procs = ServerProcesses(redis_url=server.url, prefix=PREFIX, log_dir=tmp_path / "logs")
    procs.env.update(MLPLAB_HEARTBEAT_S="1", MLPLAB_REAP_INTERVAL_S="0.3")
    try:
        procs.start("api")
        procs.start("worker")
        procs.wait_ready(timeout=600)
        yield procs
    finally:
        procs.close()
        server.stop()


def run_record(stack: ServerProcesses, run_id: str) -> dict:
    return httpx.get(f"{stack.base_url}/v1/runs/{run_id}", timeout=30).json()


def submit(stack: ServerProcesses, lrs: list[float]) -> tuple[list[str], str | None]:
    """A lone run (one lr) or a sweep of one fused group; the run ids and the sweep id."""
    if len(lrs) == 1:
        reply = httpx.post(f"{stack.base_url}/v1/runs", json={**SPEC, "lr": lrs[0]}, timeout=30)
        assert reply.status_code == 202, reply.text
        return [reply.json()["id"]], None
    body = {"base": SPEC, "grid": {"lr": lrs}}
    reply = httpx.post(f"{stack.base_url}/v1/sweeps", json=body, timeout=30)
    assert reply.status_code == 202, reply.text
    return reply.json()["run_ids"], reply.json()["id"]


def block_until_epoch(client: redis.Redis, run_id: str, epoch: int) -> None:
    """Wake on the run stream's epoch event itself (XREAD BLOCK), not on a poll interval."""
    stream, last = f"{PREFIX}:run:{run_id}:events", "0-0"
    deadline = time.monotonic() + 600  # a hang bound only
    while time.monotonic() < deadline:
        for _, entries in client.xread({stream: last}, block=5000) or []:
            for entry_id, fields in entries:
                last = entry_id
                if fields["type"] == "epoch" and int(entry_id.split("-")[0]) >= epoch:
                    return
    pytest.fail(f"run {run_id} never recorded epoch {epoch}")


def reference(specs: list[dict]) -> list[list[tuple[float, float]]]:
    """Per-epoch (train, test) losses of the same group trained uninterrupted, as workers do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        results = train_group([RunSpec(**s) for s in specs])
    finally:
        torch.set_num_threads(threads)
    return [[(e.train_loss, e.test_loss) for e in r.epochs] for r in results]


@pytest.mark.parametrize("lrs", [[1e-3], [1e-3, 3e-4, 1e-4]], ids=["lone-run", "group-of-3"])
def test_a_worker_frozen_past_its_lease_ends_its_runs_succeeded(stack, lrs) -> None:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    run_ids, sweep_id = submit(stack, lrs)
    pid = int(httpx.get(f"{stack.base_url}/healthz", timeout=30).json()["workers"][0]["pid"])

    block_until_epoch(client, run_ids[0], 1)
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        assert run_record(stack, run_ids[0])["status"] == "running", "finished before frozen"
        wait_for(
            lambda: all(
                (r := run_record(stack, i))["status"] == "queued" and r["requeues"] >= 1
                for i in run_ids
            ),
            what="the reaper to requeue the frozen worker's runs",
            timeout=600,
        )
        requeued = time.monotonic() - frozen
    finally:
        os.kill(pid, signal.SIGCONT)
    thawed = time.monotonic()
    wait_for(
        lambda: all(run_record(stack, i)["status"] not in ("queued", "running") for i in run_ids),
        what="the runs to end",
        timeout=600,
    )
    print(f"{len(run_ids)} run(s): requeued {requeued:.2f} s after SIGSTOP (lease 3 s), "
          f"ended {time.monotonic() - thawed:.2f} s after SIGCONT")  # fmt: skip

    specs = [run_record(stack, i)["spec"] for i in run_ids]
    for run_id, expected in zip(run_ids, reference(specs), strict=True):
        run = run_record(stack, run_id)
        assert run["status"] == "succeeded", run
        assert run["error"] is None and run["cancel_requested"] is False
        epochs = [e["epoch"] for e in run["epochs"]]
        assert epochs == list(range(1, SPEC["epochs"] + 1))  # each once, none missing
        stream = client.xrange(f"{PREFIX}:run:{run_id}:events")
        assert [int(i.split("-")[0]) for i, f in stream if f["type"] == "epoch"] == epochs
        statuses = [json.loads(f["data"])["status"] for _, f in stream if f["type"] == "status"]
        assert statuses[-1] == "succeeded" and "queued" in statuses[1:], statuses
        assert not {"cancelled", "failed"} & set(statuses), statuses
        assert [(e["train_loss"], e["test_loss"]) for e in run["epochs"]] == expected
        last = run["epochs"][-1]
        assert run["result"]["final_train_loss"] == last["train_loss"]
        assert run["result"]["final_test_loss"] == last["test_loss"]
        assert run["result"]["final_test_accuracy"] == last["test_accuracy"]
    assert "lease lost" in stack.log_tail("worker", 2000)  # the thawed worker noticed
    assert sorted(Path(stack.env["MLPLAB_CHECKPOINT_DIR"]).glob("*.pt")) == []
    if sweep_id is not None:
        sweep = httpx.get(f"{stack.base_url}/v1/sweeps/{sweep_id}", timeout=30).json()
        assert sweep["done"] and sweep["counts"].get("succeeded") == len(run_ids), sweep
        assert sweep["best"] is not None, sweep
