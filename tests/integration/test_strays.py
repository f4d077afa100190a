"""A submission cut in half, settled by the running API: a run recorded but never queued
fails with the reason, a group queued without its token is trained after all. Real API and
Celery worker processes on a private Redis; the halves are written as the API writes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runstore import Store
from runstore.fairqueue import FairQueue
from runstore.strays import STRAY_REASON
from tests.support.servers import PrivateRedis, ServerProcesses
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PREFIX = "strays"
SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "device": "cpu"}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ServerProcesses, Store]]:
    """An API that settles leftovers every 0.3 s (strays after 1 s) and a worker."""
    redis_server = PrivateRedis(tmp_path / "redis", appendonly=False)
    redis_server.start()
    (tmp_path / "logs").mkdir()
    procs = ServerProcesses(redis_url=redis_server.url, prefix=PREFIX, log_dir=tmp_path / "logs")
    procs.env.update(
        MLPLAB_REAP_INTERVAL_S="0.3", MLPLAB_REPAIR_INTERVAL_S="0.3", MLPLAB_STRAY_AFTER_S="1"
    )
    procs.start("api")
    procs.start("worker")
    procs.wait_ready()
    store = Store.from_url(redis_server.url, prefix=PREFIX)
    yield procs, store
    store.client.close()
    procs.close()
    redis_server.stop()


def status(procs: ServerProcesses, run_id: str) -> dict:
    return httpx.get(f"{procs.base_url}/v1/runs/{run_id}", timeout=10).json()


def test_a_run_recorded_but_never_queued_fails_with_the_reason(stack):
    procs, store = stack
    run_id = store.create_run(owner="local", spec=SPEC)["id"]  # then the API lost Redis
    wait_for(
        lambda: status(procs, run_id)["status"] == "failed", what="the stray to fail", timeout=60
    )
    assert status(procs, run_id)["error"] == STRAY_REASON
    assert "failed run(s) " + run_id in procs.log_tail("api", 200)


def test_a_group_queued_without_its_token_is_trained(stack):
    procs, store = stack
    run_ids = [store.create_run(owner="local", spec=SPEC)["id"] for _ in range(2)]
    FairQueue(store.client, prefix=PREFIX).enqueue_runs(run_ids)  # the token was never sent
    for run_id in run_ids:
        wait_for(
            lambda r=run_id: status(procs, r)["status"] == "succeeded",
            what="the tokenless group to train",
            timeout=120,
        )
    assert "sent a spare one" in procs.log_tail("api", 200)
    submitted = httpx.post(f"{procs.base_url}/v1/runs", json=SPEC, timeout=10).json()["id"]
    wait_for(
        lambda: status(procs, submitted)["status"] == "succeeded",
        what="a normal submission",
        timeout=120,
    )
    assert status(procs, submitted)["error"] is None
