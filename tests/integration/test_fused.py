"""Fused sweeps end to end: a real uvicorn and a real Celery worker, synthetic data."""

import httpx
import pytest

from tests.support.http import sse
from tests.support.waiting import wait_for_run

pytestmark = pytest.mark.integration

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "batch_size": 64}
# StepLR at 1 follows StepLR at 2 for its first epoch: the fused group trains that epoch once
GRID = {"activation": ["relu", "tanh"], "lr": [0.05, 0.005], "step_size": [1, 2]}
METRICS = ("train_loss", "test_loss", "test_accuracy", "lr")


def submit_and_follow(http, body):
    """Submit a sweep, follow its SSE stream to the end; the record, messages and runs."""
    response = http.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    record = response.json()
    messages = sse(http, f"/v1/sweeps/{record['id']}/events")
    runs = [http.get(f"/v1/runs/{run_id}").json() for run_id in record["run_ids"]]
    return {"record": record, "messages": messages, "runs": runs}


@pytest.fixture(scope="module")
def sweeps(server):
    """The same four configurations as one fused sweep and as an unfused one."""
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        return {
            fuse: submit_and_follow(http, {"base": BASE, "grid": GRID, "fuse": fuse})
            for fuse in (True, False)
        }


def test_a_fused_sweep_shares_one_group_and_an_unfused_one_none(sweeps):
    fused = {run["fused_group"] for run in sweeps[True]["runs"]}
    assert len(fused) == 1 and fused.pop().startswith("g-")
    assert {run["fused_group"] for run in sweeps[False]["runs"]} == {None}


def test_fused_runs_report_what_the_same_runs_report_unfused(sweeps):
    for fused, alone in zip(sweeps[True]["runs"], sweeps[False]["runs"], strict=True):
        assert fused["varied"] == alone["varied"] and fused["spec"] == alone["spec"]
        assert fused["status"] == alone["status"] == "succeeded"
        assert [e["epoch"] for e in fused["epochs"]] == [1, 2, 3]
        for got, want in zip(fused["epochs"], alone["epochs"], strict=True):
            for name in METRICS:
                assert got[name] == pytest.approx(want[name], rel=1e-4)


def test_runs_that_differ_in_their_step_size_share_their_first_epoch(sweeps):
    shared = {
        (run["varied"]["step_size"], (run["result"] or {}).get("shared_epochs"))
        for run in sweeps[True]["runs"]
    }
    assert shared == {(1, 1), (2, None)}
    assert all("shared_epochs" not in (run["result"] or {}) for run in sweeps[False]["runs"])


def test_every_fused_run_streams_every_event(http, sweeps):
    messages = sweeps[True]["messages"]
    for run in sweeps[True]["runs"]:
        mine = [m for m in messages if m["data"]["run_id"] == run["id"]]
        assert [m["data"].get("status") or m["data"]["epoch"] for m in mine] == [
            "queued",
            "running",
            1,
            2,
            3,
            "succeeded",
        ]
        own = sse(http, f"/v1/runs/{run['id']}/events")
        assert [m["data"] for m in own if m["event"] == "epoch"] == run["epochs"]
        assert [m["data"]["status"] for m in own if m["event"] == "status"] == [
            "queued",
            "running",
            "succeeded",
        ]


def test_cancelling_one_run_of_a_fused_group_leaves_its_mates_running(http):
    base = {**BASE, "epochs": 40, "batch_size": 32}
    body = {"base": base, "grid": {"activation": ["relu", "tanh", "sigmoid"]}}
    record = http.post("/v1/sweeps", json=body).json()
    victim, *mates = record["run_ids"]
    wait_for_run(http, victim, lambda r: len(r["epochs"]) >= 1, timeout=60)
    assert http.delete(f"/v1/runs/{victim}").status_code == 202
    stopped = wait_for_run(http, victim, lambda r: r["status"] != "running", timeout=10)
    assert stopped["status"] == "cancelled" and len(stopped["epochs"]) < 40
    for run_id in mates:
        done = wait_for_run(http, run_id, lambda r: r["status"] != "running", timeout=60)
        assert done["status"] == "succeeded" and len(done["epochs"]) == 40
        assert done["fused_group"] == stopped["fused_group"] is not None
    view = http.get(f"/v1/sweeps/{record['id']}").json()
    assert view["done"] and view["counts"] == {"cancelled": 1, "succeeded": 2}
