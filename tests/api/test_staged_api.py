"""Staged sweeps through the API in-process (real Redis, no worker): submit, refuse, cancel."""

from tests.support.redis_db import prefix_keys

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
STAGED = {
    "strategy": "staged",
    "base": BASE,
    "keep_top": 2,
    "stages": [{"activation": ["relu", "tanh", "sigmoid"]}, {"lr": [0.1, 0.01]}],
}


def test_a_staged_sweep_answers_its_first_stage_and_the_plan(client):
    response = client.post("/v1/sweeps", json=STAGED)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["varied"] == ["activation", "lr"] and len(body["run_ids"]) == 3
    assert body["stages"] == [
        {
            "field": "activation",
            "values": ["relu", "tanh", "sigmoid"],
            "status": "running",
            "run_ids": body["run_ids"],
            "kept": [],
            "winners": [],
            "verdict": None,
        },
        {
            "field": "lr",
            "values": [0.1, 0.01],
            "status": "pending",
            "run_ids": [],
            "kept": [],
            "winners": [],
            "verdict": None,
        },
    ]
    assert body["epochs_saved"] == 0 and body["end_reason"] is None and not body["done"]
    runs = [client.get(f"/v1/runs/{r}").json() for r in body["run_ids"]]
    assert [r["varied"] for r in runs] == [{"activation": a} for a in ("relu", "tanh", "sigmoid")]


def test_a_plain_sweep_has_no_stages(client):
    body = client.post("/v1/sweeps", json={"base": BASE, "grid": {"lr": [0.1]}}).json()
    assert body["stages"] is None and body["epochs_saved"] == 0


def test_bad_values_of_a_later_stage_are_refused_before_anything_is_recorded(client, redis_client):
    bad = {**STAGED, "stages": [STAGED["stages"][0], {"lr": [0.1, 0.0]}]}
    response = client.post("/v1/sweeps", json=bad)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("stage 2 (lr) value 0.0: lr")
    over = {**STAGED, "stages": [STAGED["stages"][0], {"epochs": [2, 100]}]}
    response = client.post("/v1/sweeps", json=over)
    assert response.status_code == 422 and response.json()["code"] == "limit_exceeded"
    assert "stage 2 (epochs) value 100: epochs: 100" in response.json()["detail"]
    assert prefix_keys(redis_client) == []


def test_a_staged_sweep_over_max_runs_counts_its_later_stages(client):
    big = {**STAGED, "keep_top": 3, "stages": [*STAGED["stages"], {"seed": [0, 1, 2]}]}
    response = client.post("/v1/sweeps", json=big)  # 3 + 3*2 + 3*3 = 18 > 16
    assert response.status_code == 422
    assert "up to 18 configurations" in response.json()["detail"]


def test_cancelling_a_staged_sweep_creates_no_later_stage(client, store):
    body = client.post("/v1/sweeps", json=STAGED).json()
    response = client.delete(f"/v1/sweeps/{body['id']}")
    assert response.status_code == 202
    view = response.json()
    assert view["done"] and view["counts"] == {"cancelled": 3}
    assert view["end_reason"].startswith("the sweep was cancelled")
    assert [s["status"] for s in view["stages"]] == ["running", "pending"]


def test_cancelling_the_last_queued_run_of_a_stage_moves_the_sweep_on(client, store):
    body = client.post("/v1/sweeps", json=STAGED).json()
    relu, tanh, sigmoid = body["run_ids"]
    store.finish_run(run_id=relu, status="succeeded", result={"final_train_loss": 0.2})
    store.finish_run(run_id=tanh, status="succeeded", result={"final_train_loss": 0.1})
    assert client.delete(f"/v1/runs/{sigmoid}").json()["status"] == "cancelled"
    view = client.get(f"/v1/sweeps/{body['id']}").json()
    first, second = view["stages"]
    assert first["winners"] == [tanh, relu] and second["status"] == "running"
    runs = [client.get(f"/v1/runs/{r}").json() for r in second["run_ids"]]
    assert [r["varied"] for r in runs] == [
        {"activation": a, "lr": lr} for a in ("tanh", "relu") for lr in (0.1, 0.01)
    ]
    assert view["run_ids"] == body["run_ids"] + second["run_ids"] and not view["done"]
