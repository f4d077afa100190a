"""Repeats end to end: a staged sweep whose configurations each run twice, fused, through a
real uvicorn and a real Celery worker; stage winners by the configuration's mean."""

import statistics

import httpx
import pytest

from tests.support.http import sse

pytestmark = pytest.mark.integration

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "batch_size": 64}
STAGED = {
    "strategy": "staged",
    "base": BASE,
    "keep_top": 1,
    "repeats": 2,
    # the base lr is 0.001: the winner's own value, so stage 2 keeps its two runs
    "stages": [{"activation": ["relu", "tanh"]}, {"lr": [0.05, 0.001]}],
}


def loss(run):
    return run["result"]["final_train_loss"]


def follow(http, body):
    """Submit, read the sweep's stream to its end; the 202 body, the view and the runs."""
    response = http.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    record = response.json()
    sse(http, f"/v1/sweeps/{record['id']}/events")
    view = http.get(f"/v1/sweeps/{record['id']}").json()
    page = http.get("/v1/runs", params={"sweep_id": record["id"], "limit": 100}).json()
    return record, view, {r["id"]: r for r in page["data"]}


@pytest.fixture(scope="module")
def staged(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        record, view, runs = follow(http, STAGED)
        board = http.get(f"/v1/sweeps/{record['id']}/leaderboard").json()
        return {"record": record, "view": view, "runs": runs, "board": board}


def test_the_first_stage_runs_each_value_twice_as_one_fused_group(staged):
    first = staged["view"]["stages"][0]
    runs = [staged["runs"][r] for r in first["run_ids"]]
    assert [(r["varied"], r["repeat"], r["spec"]["seed"]) for r in runs] == [
        ({"activation": "relu"}, 0, 0),
        ({"activation": "relu"}, 1, 1),
        ({"activation": "tanh"}, 0, 0),
        ({"activation": "tanh"}, 1, 1),
    ]
    assert len({r["fused_group"] for r in runs}) == 1 and runs[0]["fused_group"]
    assert all(r["status"] == "succeeded" for r in runs)


def test_the_stage_winner_is_the_configuration_with_the_best_mean(staged):
    view, runs = staged["view"], staged["runs"]
    first, second = view["stages"]
    means = {
        act: statistics.fmean(
            loss(runs[r]) for r in first["run_ids"] if runs[r]["varied"]["activation"] == act
        )
        for act in ("relu", "tanh")
    }
    winner = min(means, key=means.get)
    mine = [r for r in first["run_ids"] if runs[r]["varied"]["activation"] == winner]
    assert first["winners"] == [min(mine, key=lambda r: loss(runs[r]))]  # its best run
    assert second["kept"] == mine and second["run_ids"][:2] == mine
    new = [runs[r] for r in second["run_ids"][2:]]
    assert [(r["varied"], r["repeat"], r["spec"]["seed"]) for r in new] == [
        ({"activation": winner, "lr": 0.05}, 0, 0),
        ({"activation": winner, "lr": 0.05}, 1, 1),
    ]
    assert len({r["fused_group"] for r in new}) == 1
    assert view["done"] and view["counts"] == {"succeeded": 6}


def test_each_stage_has_its_verdict_and_the_sweep_its_best_configuration(staged):
    view, runs, board = staged["view"], staged["runs"], staged["board"]
    for stage in view["stages"]:
        verdict = stage["verdict"]
        assert verdict["status"] in ("clear", "noise")
        assert verdict["best"]["n"] == verdict["runner_up"]["n"] == 2
        assert verdict["summary"] and verdict["se"] is not None
    assert board["by"] == "config" and board["count"] == 3
    top = board["data"][0]
    assert top["mean"] == pytest.approx(statistics.fmean(loss(runs[r]) for r in top["run_ids"]))
    assert top["std"] == pytest.approx(statistics.stdev(loss(runs[r]) for r in top["run_ids"]))
    best = view["best"]
    assert best["runs"] == top["run_ids"] and best["value"] == pytest.approx(top["mean"])
    assert view["verdict"]["best"]["run_ids"] == top["run_ids"] and view["repeats"] == 2


VAL_GRID = {
    "base": {**BASE, "val_fraction": 0.2, "epochs": 3},
    "grid": {"activation": ["relu", "tanh"]},
    "metric": "best_val_loss",
    "repeats": 2,
}


def test_a_val_metric_ranks_configurations_by_their_mean_best_val_loss(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        record, view, runs = follow(http, VAL_GRID)
        board = http.get(f"/v1/sweeps/{record['id']}/leaderboard").json()
    assert view["done"] and view["counts"] == {"succeeded": 4} and view["warnings"] == []
    for run in runs.values():
        val = [e["val_loss"] for e in run["epochs"]]
        assert len(val) == 3 and run["result"]["best_val_loss"] == min(val)
        assert run["result"]["best_epoch"] == 1 + val.index(min(val))
    means = [
        statistics.fmean(runs[r]["result"]["best_val_loss"] for r in row["run_ids"])
        for row in board["data"]
    ]
    assert [row["mean"] for row in board["data"]] == pytest.approx(means)
    assert means == sorted(means) and view["best"]["runs"] == board["data"][0]["run_ids"]
    assert view["verdict"]["metric"] == "best_val_loss"
