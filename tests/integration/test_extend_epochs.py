"""A sweep extended by epochs, end to end (real uvicorn and Celery worker, synthetic data):
its succeeded runs train on from their stored states, fused, their epochs appended, and end
exactly as the runs of a sweep trained that long from the start (CPU, bit for bit)."""

import pytest
from safetensors.torch import load

from tests.support.waiting import wait_for_run

pytestmark = pytest.mark.integration

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "batch_size": 64}
STEP = {**BASE, "scheduler": "step", "step_size": 2, "gamma": 0.5}
GRID = {"activation": ["relu", "tanh"], "lr": [0.05, 0.005]}
ENDED = ("succeeded", "failed", "diverged", "cancelled", "stopped_early")


def sweep_runs(http, body):
    """Submit a sweep and wait for every run to end; the run records by varied config."""
    response = http.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep = response.json()
    return sweep["id"], ended(http, sweep["run_ids"])


def ended(http, run_ids):
    records = [wait_for_run(http, r, lambda run: run["status"] in ENDED) for r in run_ids]
    assert all(r["status"] == "succeeded" for r in records), records
    return {tuple(sorted(r["varied"].items())): r for r in records}


def numbers(run):
    """The run's epochs without the wall-clock fields."""
    return [{k: v for k, v in e.items() if k not in ("seconds", "ts")} for e in run["epochs"]]


def test_extended_runs_equal_runs_trained_that_long_from_the_start(http, server):
    short_id, short = sweep_runs(http, {"base": STEP, "grid": GRID})
    _, whole = sweep_runs(http, {"base": {**STEP, "epochs": 5}, "grid": GRID})
    response = http.post(f"/v1/sweeps/{short_id}/extend", json={"epochs": 5})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["count"] == 4 and body["skipped"] == [] and not body["sweep"]["done"]
    continued = ended(http, body["run_ids"])
    log = (server.log_dir / "worker.log").read_text()
    said = [line for line in log.splitlines() if "continuing from epoch 3" in line]
    assert any(all(r in line for r in body["run_ids"]) for line in said), said  # not retrained
    assert len({r["fused_group"] for r in continued.values()}) == 1  # continued as one group
    for key, run in continued.items():
        assert [e["epoch"] for e in run["epochs"]] == [1, 2, 3, 4, 5]
        assert numbers(run)[:3] == numbers(short[key])  # the first three kept as they were
        assert numbers(run) == numbers(whole[key])
        assert run["result"]["final_train_loss"] == whole[key]["result"]["final_train_loss"]
        assert run["spec"]["epochs"] == 5 and run["attempts"] == []
        (extension,) = run["extensions"]
        assert extension["from_epoch"] == 3 and extension["to_epoch"] == 5
        assert extension["result"] == short[key]["result"]
        assert run["model"]["state"] == "stored" and run["model"]["resume_epoch"] == 5
        mine = load(http.get(f"/v1/runs/{run['id']}/model").content)
        theirs = load(http.get(f"/v1/runs/{whole[key]['id']}/model").content)
        assert mine.keys() == theirs.keys()
        assert all((mine[k] == theirs[k]).all() for k in mine)
    view = http.get(f"/v1/sweeps/{short_id}").json()
    assert view["done"] and view["counts"] == {"succeeded": 4}
    again = http.post(f"/v1/sweeps/{short_id}/extend", json={"epochs": 5})
    assert again.status_code == 422 and "5 epochs already" in again.json()["detail"]


def test_a_cosine_sweep_is_refused_with_the_reason(http):
    sweep_id, runs = sweep_runs(
        http, {"base": {**BASE, "scheduler": "cosine"}, "grid": {"lr": [0.05]}}
    )
    response = http.post(f"/v1/sweeps/{sweep_id}/extend", json={"epochs": 6})
    assert response.status_code == 422
    assert "anneals the lr over the run's total epochs" in response.json()["detail"]
    (run,) = runs.values()
    assert http.get(f"/v1/runs/{run['id']}").json()["spec"]["epochs"] == 3  # nothing changed
