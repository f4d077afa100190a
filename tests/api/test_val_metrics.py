"""Val metrics and repeats at the sweep level over HTTP (in-process app, real Redis, no
worker): the 422s, the test-set warning, repeats expansion and fusion, the grouped
leaderboard, best and verdict."""

import pytest

from tests.support.http import queued_groups
from tests.support.redis_db import prefix_keys

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
GRID = {"activation": ["relu", "tanh"], "lr": [0.1, 0.01, 0.001]}


@pytest.fixture
def api_settings(api_settings):
    """Room for a 2x3 sweep with 3 repeats (18 runs)."""
    return api_settings.model_copy(update={"max_runs_per_sweep": 18})


def finish(store, run_id, loss):
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    result = {"final_train_loss": loss, "final_test_loss": loss, "final_test_accuracy": 0.5}
    store.finish_run(run_id=run_id, status="succeeded", result=result)


@pytest.mark.parametrize("metric", ["best_val_loss", "final_val_accuracy"])
def test_a_val_metric_without_a_val_split_is_a_422_naming_metric_and_val_fraction(
    client, redis_client, metric
):
    response = client.post("/v1/sweeps", json={"base": BASE, "grid": GRID, "metric": metric})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"metric {metric}" in detail and "val_fraction is 0" in detail
    staged = {"strategy": "staged", "base": BASE, "metric": metric, "stages": [{"lr": [0.1]}]}
    assert client.post("/v1/sweeps", json=staged).status_code == 422
    assert prefix_keys(redis_client) == []
    ok = {"base": {**BASE, "val_fraction": 0.1}, "grid": GRID, "metric": metric}
    assert client.post("/v1/sweeps", json=ok).status_code == 202


@pytest.mark.parametrize("repeats", [0, 11, "many", None])
def test_repeats_outside_1_to_10_is_a_422_naming_repeats(client, redis_client, repeats):
    response = client.post("/v1/sweeps", json={"base": BASE, "grid": GRID, "repeats": repeats})
    assert response.status_code == 422 and response.json()["detail"].startswith("repeats: ")
    assert prefix_keys(redis_client) == []


def test_max_runs_per_sweep_counts_the_repeats(client, redis_client):
    big = {"base": BASE, "grid": {**GRID, "lr": [0.1, 0.01, 0.001, 1e-4]}, "repeats": 3}
    response = client.post("/v1/sweeps", json=big)
    assert response.status_code == 422
    assert "24 runs (8 configurations x 3 repeats)" in response.json()["detail"]
    assert prefix_keys(redis_client) == []


def test_ranking_on_the_test_set_carries_a_plain_warning(client, store):
    sweep = client.post(
        "/v1/sweeps", json={"base": BASE, "grid": {"lr": [0.1, 0.01]}, "metric": "final_test_loss"}
    ).json()
    assert sweep["warnings"][0].startswith("the winner is chosen on the test set")
    assert client.get(f"/v1/sweeps/{sweep['id']}").json()["warnings"] == sweep["warnings"]
    finish(store, sweep["run_ids"][0], 0.3)
    best = client.get(f"/v1/sweeps/{sweep['id']}/best").json()
    assert best["warnings"] == sweep["warnings"]
    plain = client.post("/v1/sweeps", json={"base": BASE, "grid": {"lr": [0.1]}}).json()
    assert plain["warnings"] == [] and plain["repeats"] == 1 and plain["verdict"] is None


def test_a_2x3_sweep_with_3_repeats_is_18_runs_in_one_fused_group(client, redis_client):
    response = client.post("/v1/sweeps", json={"base": BASE, "grid": GRID, "repeats": 3})
    assert response.status_code == 202, response.text
    sweep = response.json()
    assert len(sweep["run_ids"]) == 18 and sweep["repeats"] == 3
    assert queued_groups(redis_client) == [sweep["run_ids"]]
    runs = client.get("/v1/runs", params={"sweep_id": sweep["id"], "limit": 100}).json()["data"]
    assert len({r["fused_group"] for r in runs}) == 1 and runs[0]["fused_group"]
    assert [(r["repeat"], r["spec"]["seed"]) for r in runs[:4]] == [(0, 0), (1, 1), (2, 2), (0, 0)]
    assert [r["varied"] for r in runs[:4]] == [{"activation": "relu", "lr": 0.1}] * 3 + [
        {"activation": "relu", "lr": 0.01}
    ]


def test_the_leaderboard_best_and_verdict_group_by_configuration(client, store):
    grid = {"activation": ["relu", "tanh"]}
    sweep = client.post("/v1/sweeps", json={"base": BASE, "grid": grid, "repeats": 3}).json()
    ids = sweep["run_ids"]
    for run_id, loss in zip(ids, [0.10, 0.12, 0.14, 0.20, 0.22, 0.24], strict=True):
        finish(store, run_id, loss)
    board = client.get(f"/v1/sweeps/{sweep['id']}/leaderboard").json()
    assert board["by"] == "config" and board["count"] == 2
    relu, tanh = board["data"]
    assert relu["varied"] == {"activation": "relu"} and relu["run_ids"] == ids[:3]
    assert (relu["rank"], relu["n"], relu["run_id"]) == (1, 3, ids[0])
    assert relu["mean"] == relu["value"] == pytest.approx(0.12)
    assert relu["std"] == pytest.approx(0.02) and tanh["mean"] == pytest.approx(0.22)
    by_run = client.get(f"/v1/sweeps/{sweep['id']}/leaderboard", params={"by": "run"}).json()
    assert by_run["by"] == "run" and [r["run_id"] for r in by_run["data"]] == ids
    bad = client.get(f"/v1/sweeps/{sweep['id']}/leaderboard", params={"by": "seed"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("query parameter by")
    best = client.get(f"/v1/sweeps/{sweep['id']}/best").json()
    assert best["run_id"] == ids[0] and best["value"] == pytest.approx(0.12)
    assert best["runs"] == ids[:3] and best["n"] == 3 and best["std"] == pytest.approx(0.02)
    assert best["verdict"]["status"] == "clear"
    view = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert view["best"]["runs"] == ids[:3] and view["verdict"] == best["verdict"]
    assert view["verdict"]["best"]["n"] == view["verdict"]["runner_up"]["n"] == 3
    assert view["verdict"]["se"] == pytest.approx((2 * 0.02**2 / 3) ** 0.5)


def test_a_staged_sweep_with_repeats_runs_each_first_stage_value_k_times(client):
    staged = {
        "strategy": "staged",
        "base": BASE,
        "keep_top": 1,
        "repeats": 2,
        "stages": [{"activation": ["relu", "tanh"]}, {"lr": [0.1, 0.01]}],
    }
    sweep = client.post("/v1/sweeps", json=staged).json()
    assert len(sweep["run_ids"]) == 4 and sweep["stages"][0]["run_ids"] == sweep["run_ids"]
    runs = [client.get(f"/v1/runs/{r}").json() for r in sweep["run_ids"]]
    assert [(r["varied"]["activation"], r["repeat"], r["spec"]["seed"]) for r in runs] == [
        ("relu", 0, 0),
        ("relu", 1, 1),
        ("tanh", 0, 0),
        ("tanh", 1, 1),
    ]


def test_val_fields_appear_on_runs_with_a_val_split_only(client, store):
    sweep = client.post("/v1/sweeps", json={"base": BASE, "grid": {"lr": [0.1, 0.01]}}).json()
    plain, split = sweep["run_ids"]
    epoch = {"epoch": 1, "train_loss": 0.5, "test_loss": 0.5, "test_accuracy": 0.5, "lr": 0.1}
    for run_id, extra in ((plain, {}), (split, {"val_loss": 0.4, "val_accuracy": 0.6})):
        store.mark_running(run_id=run_id, worker="w", device="cpu")
        store.append_epoch(run_id=run_id, metrics={**epoch, "seconds": 0.1, **extra})
        result = {
            "final_train_loss": 0.5,
            **({"best_val_loss": 0.4, "best_epoch": 1} if extra else {}),
        }
        store.finish_run(run_id=run_id, status="succeeded", result=result)
    without, with_split = (client.get(f"/v1/runs/{r}").json() for r in (plain, split))
    assert "val_loss" not in without["epochs"][0] and "best_val_loss" not in without["result"]
    assert "best_epoch" not in without["result"]
    assert (
        with_split["epochs"][0]["val_loss"] == 0.4
        and with_split["epochs"][0]["val_accuracy"] == 0.6
    )
    assert with_split["result"]["best_val_loss"] == 0.4 and with_split["result"]["best_epoch"] == 1
