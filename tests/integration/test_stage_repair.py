"""A staged sweep whose worker was SIGKILLed at a stage change is finished by the API's repair
pass, exactly once, with real processes: a private Redis, two real uvicorn APIs repairing
every 0.3 s (racing each other), a real Celery worker.

The crash state is written from the real records: the test plays the killed worker through
the Store, recording each stage-1 run's end as a worker does and then stopping where the
SIGKILL would, before advancing the sweep (window 1) or after the stage transaction but
before queuing its runs (window 2). Strays count after 1 s, so a stage waiting for its queue
that the strays took for a cut-off submission would fail within the test.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.stages import plan_stage
from runstore import Store, stages
from tests.support.http import sse
from tests.support.servers import PrivateRedis, ServerProcesses
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PREFIX = "stagerepair"
BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "batch_size": 64, "device": "cpu"}
STAGED = {
    "strategy": "staged",
    "base": BASE,
    "keep_top": 2,
    "stages": [{"activation": ["relu", "tanh", "sigmoid"]}, {"lr": [0.05, 0.005]}],
}
REPAIRING = {
    "MLPLAB_REAP_INTERVAL_S": "0.3",
    "MLPLAB_REPAIR_INTERVAL_S": "0.3",
    "MLPLAB_STRAY_AFTER_S": "1",
}


class Stack:
    """The private Redis, two APIs on it (a and b) and a worker, started when asked."""

    def __init__(self, tmp: Path) -> None:
        self.redis = PrivateRedis(tmp / "redis", appendonly=False)
        self.redis.start()
        self.parts = {}
        for name in ("a", "b"):
            (tmp / name).mkdir()
            procs = ServerProcesses(redis_url=self.redis.url, prefix=PREFIX, log_dir=tmp / name)
            procs.env.update(REPAIRING)
            self.parts[name] = procs
        self.store = Store.from_url(self.redis.url, prefix=PREFIX)
        self.http = httpx.Client(base_url=self.parts["a"].base_url, timeout=30)

    def start_apis(self) -> None:
        for procs in self.parts.values():
            procs.start("api")
        for procs in self.parts.values():
            procs.wait_ready(worker=False)

    def close(self) -> None:
        self.http.close()
        self.store.client.close()
        for procs in self.parts.values():
            procs.close()
        self.redis.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = Stack(tmp_path)
    try:
        yield built
    finally:
        built.close()


def killed_worker_ends(store: Store, run_ids: list[str]) -> None:
    """What the killed worker recorded before the SIGKILL: each run started, one epoch, its
    end with a result; nothing after (no advance_sweeps)."""
    for loss, run_id in zip((0.3, 0.1, 0.2), run_ids, strict=True):
        assert store.mark_running(run_id=run_id, worker="killed@host", device="cpu") == "running"
        metrics = {"epoch": 1, "train_loss": loss, "test_loss": loss, "test_accuracy": 0.5}
        store.append_epoch(run_id=run_id, metrics={**metrics, "lr": 0.001, "seconds": 0.1})
        assert store.finish_run(
            run_id=run_id, status="succeeded", result={"final_train_loss": loss}
        )


def submit(stack: Stack) -> tuple[str, list[str]]:
    response = stack.http.post("/v1/sweeps", json=STAGED)
    assert response.status_code == 202, response.text
    return response.json()["id"], response.json()["run_ids"]


def queued(stack: Stack) -> set[str]:
    """The run ids in the owner's fair-share queue."""
    return {run_id for group in stack.store.fair.pending("local") for run_id in group}


def stage_two(stack: Stack, sweep_id: str) -> list[str] | None:
    """Stage 2's run ids once the record has moved on to it."""
    record = stages.get(stack.store, sweep_id)
    return record["stages"][1]["run_ids"] if record and record["current"] == 1 else None


def unqueued(stack: Stack, run_ids: list[str]) -> set[str]:
    """The runs still queued yet in no queue (dispatched ones are running by now or soon)."""
    waiting = {
        r["id"] for r in stack.store.get_runs(run_ids, epochs=False) if r["status"] == "queued"
    }
    running = stack.store.fair.running("local")
    return waiting - queued(stack) - running


def api_logs(stack: Stack) -> str:
    return stack.parts["a"].log_tail("api", 400) + stack.parts["b"].log_tail("api", 400)


def finished_once(stack: Stack, sweep_id: str, first: list[str], started: float) -> list[str]:
    """The sweep ends done with stage 2 created once and trained once; its stream ends; the
    quota's promise is released. Prints how long it took; stage 2's run ids."""
    view = wait_for(
        lambda: (v := stack.http.get(f"/v1/sweeps/{sweep_id}").json())["done"] and v,
        what=lambda: f"the sweep to finish: {stack.http.get(f'/v1/sweeps/{sweep_id}').text}",
        timeout=240,
    )
    print(f"recovery: sweep done {time.monotonic() - started:.2f} s after the crash state")
    second = stage_two(stack, sweep_id)
    assert view["end_reason"] is None and view["counts"] == {"succeeded": 7}
    assert second is not None and view["run_ids"] == first + second and len(set(second)) == 4
    assert [s["status"] for s in view["stages"]] == ["finished", "finished"]
    messages = sse(stack.http, f"/v1/sweeps/{sweep_id}/events")  # ends: the stream is closed
    for run_id in second:
        mine = [m for m in messages if m["event"] == "status" and m["data"]["run_id"] == run_id]
        statuses = [m["data"]["status"] for m in mine]
        assert statuses == ["queued", "running", "succeeded"], run_id  # queued and trained once
    moves = [(m["data"]["current"], m["data"]["status"]) for m in messages if m["event"] == "stage"]
    assert moves == [(1, "running"), (1, "finished")]  # stage 2 created once, then finished
    assert stack.http.get("/v1/limits").json()["usage"]["promised"] == 0
    return second


def test_a_stage_change_killed_before_advancing_is_finished_by_the_repair_pass(stack):
    stack.start_apis()
    sweep_id, first = submit(stack)
    killed_worker_ends(stack.store, first)  # SIGKILL here: the stage ended, nobody advanced
    started = time.monotonic()
    wait_for(lambda: stage_two(stack, sweep_id), what="stage 2 to be created", timeout=180)
    print(f"recovery: stage 2 created {time.monotonic() - started:.2f} s after the crash state")
    stack.parts["a"].start("worker")
    finished_once(stack, sweep_id, first, started)
    assert api_logs(stack).count(f"sweep {sweep_id}: stage 1 had ended") == 1  # one move


def test_a_stage_killed_before_its_runs_were_queued_is_queued_by_the_repair_pass(stack):
    stack.parts["a"].start("api")
    stack.parts["a"].wait_ready(worker=False)
    sweep_id, first = submit(stack)
    stack.parts["a"].stop("api")  # so that nothing repairs while the crash state is written
    killed_worker_ends(stack.store, first)
    planner = functools.partial(plan_stage, max_models=64)
    second = [r["id"] for r in stages.advance(stack.store, sweep_id, planner).runs]
    assert len(second) == 4  # SIGKILL here: stage 2 recorded, its runs never queued
    assert unqueued(stack, second) == set(second)
    stack.start_apis()
    started = time.monotonic()  # both APIs answer: their repair passes run
    wait_for(lambda: not unqueued(stack, second), what="stage 2 to be queued", timeout=180)
    print(f"recovery: stage 2 queued {time.monotonic() - started:.2f} s after the APIs were up")
    stack.parts["a"].start("worker")
    assert finished_once(stack, sweep_id, first, started) == second
    assert api_logs(stack).count(f"sweep {sweep_id}: queued 1 group(s) of stage 2") == 1
