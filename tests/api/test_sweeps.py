"""Sweeps over HTTP (in-process app, real Redis): submit, best, leaderboard, cancel."""

from tests.support.http import queued_groups

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
SWEEP = {
    "name": "lr x act",
    "base": BASE,
    "grid": {"lr": [0.1, 0.01], "activation": ["relu", "tanh"]},
}


def finish(store, run_id, status="succeeded", loss=None):
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    result = (
        {
            "final_train_loss": loss,
            "final_test_loss": loss,
            "final_test_accuracy": 0.5,
            "runtime_s": 1.0,
        }
        if loss is not None
        else None
    )
    store.finish_run(run_id=run_id, status=status, result=result)


def test_submit_queues_every_configuration(client, redis_client):
    response = client.post("/v1/sweeps", json=SWEEP)
    assert response.status_code == 202
    sweep = response.json()
    assert len(sweep["run_ids"]) == 4 and sweep["counts"] == {"queued": 4}
    assert sweep["varied"] == ["lr", "activation"] and sweep["metric"] == "final_train_loss"
    assert sweep["mode"] == "min" and sweep["best"] is None and not sweep["done"]
    # one fusion key (same hidden, batch, epochs...): one fused task for all four runs
    assert queued_groups(redis_client) == [sweep["run_ids"]]
    runs = client.get("/v1/runs", params={"sweep_id": sweep["id"]}).json()
    assert [r["id"] for r in runs["data"]] == sweep["run_ids"]
    assert [r["varied"] for r in runs["data"]][:2] == [
        {"lr": 0.1, "activation": "relu"},
        {"lr": 0.1, "activation": "tanh"},
    ]
    assert runs["data"][3]["spec"]["lr"] == 0.01 and runs["data"][3]["spec"]["hidden"] == [16]


def test_best_and_leaderboard(client, store):
    sweep = client.post("/v1/sweeps", json=SWEEP).json()
    ids = sweep["run_ids"]
    best = client.get(f"/v1/sweeps/{sweep['id']}/best")
    assert best.status_code == 409 and "succeeded" in best.json()["detail"]
    finish(store, ids[0], loss=0.7)
    finish(store, ids[1], loss=0.2)
    finish(store, ids[2], status="diverged")
    best = client.get(f"/v1/sweeps/{sweep['id']}/best").json()
    assert best["run_id"] == ids[1] and best["value"] == 0.2 and best["mode"] == "min"
    assert best["config"]["varied"] == {"lr": 0.1, "activation": "tanh"}
    assert best["config"]["spec"]["activation"] == "tanh"
    board = client.get(f"/v1/sweeps/{sweep['id']}/leaderboard").json()
    assert [(r["run_id"], r["rank"], r["value"]) for r in board["data"]] == [
        (ids[1], 1, 0.2),
        (ids[0], 2, 0.7),
        (ids[2], None, None),
        (ids[3], None, None),
    ]
    assert board["data"][0]["varied"] == {"lr": 0.1, "activation": "tanh"}
    view = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert view["counts"] == {"succeeded": 2, "diverged": 1, "queued": 1}
    assert view["best"]["run_id"] == ids[1]


def test_max_mode_for_accuracy(client, store):
    sweep = client.post("/v1/sweeps", json={**SWEEP, "metric": "final_test_accuracy"}).json()
    assert sweep["mode"] == "max"
    for run_id, acc in zip(sweep["run_ids"], (0.6, 0.9, 0.1, 0.8), strict=True):
        store.mark_running(run_id=run_id, worker="w", device="cpu")
        store.finish_run(run_id=run_id, status="succeeded", result={"final_test_accuracy": acc})
    board = client.get(f"/v1/sweeps/{sweep['id']}/leaderboard").json()
    assert [r["value"] for r in board["data"]] == [0.9, 0.8, 0.6, 0.1]


def test_cancel_sweep_cancels_unfinished_runs_then_409(client, store):
    sweep = client.post("/v1/sweeps", json=SWEEP).json()
    ids = sweep["run_ids"]
    finish(store, ids[0], loss=0.5)
    store.mark_running(run_id=ids[1], worker="w", device="cpu")
    response = client.delete(f"/v1/sweeps/{sweep['id']}")
    assert response.status_code == 202
    assert response.json()["counts"] == {"succeeded": 1, "running": 1, "cancelled": 2}
    assert store.cancel_requested(run_id=ids[1])
    store.finish_run(run_id=ids[1], status="cancelled")
    again = client.delete(f"/v1/sweeps/{sweep['id']}")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert client.get(f"/v1/sweeps/{sweep['id']}").json()["done"] is True
