"""Importance and parallel coordinates for grid, random, staged and learned sweeps, through
the API in-process (real Redis and broker, no worker: the runs end as a worker records them)."""

import pytest

from lab import stages as lab_stages
from lab.queue import TaskQueue, create_celery
from tests.support.http import bearer
from tests.support.redis_db import UNIT_REDIS_URL

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
PNG = b"\x89PNG\r\n\x1a\n"
SWEEPS = {
    "grid": {"grid": {"activation": ["relu", "tanh"], "lr": [0.1, 0.01, 0.001]}},
    "random": {
        "strategy": "random",
        "n": 8,
        "grid": {"activation": {"choice": ["relu", "tanh"]}, "lr": {"loguniform": [1e-4, 0.1]}},
    },
    "staged": {
        "strategy": "staged",
        "keep_top": 2,
        "stages": [{"activation": ["relu", "tanh", "sigmoid", "gelu"]}, {"lr": [0.1, 0.01]}],
    },
    "tpe": {
        "strategy": "tpe",
        "n": 8,
        "batch": 4,
        "space": {"activation": ["relu", "tanh"], "lr": {"loguniform": [1e-4, 0.1]}},
    },
}


@pytest.fixture
def queue(redis_client):
    task_queue = TaskQueue(create_celery(UNIT_REDIS_URL, visibility_timeout_s=3600))
    yield task_queue
    task_queue.close()


def loss(spec):
    """lr matters most, the activation a little: importance must rank lr first."""
    return abs(spec["lr"] - 0.01) * 10 + (0.01 if spec["activation"] == "tanh" else 0.0)


def finish_all(client, store, queue, sweep_id):
    """End every run of the sweep, batch after batch (stage after stage), as workers would."""
    while True:
        body = client.get(f"/v1/sweeps/{sweep_id}").json()
        runs = store.get_runs(body["run_ids"], epochs=False)
        due = [r for r in runs if r["status"] == "queued"]
        if not due:
            return body
        for run in due:
            store.finish_run(
                run_id=run["id"], status="succeeded", result={"final_train_loss": loss(run["spec"])}
            )
        lab_stages.advance_sweep(sweep_id, store=store, queue=queue, max_models=64, torch_ok=True)


@pytest.mark.parametrize("kind", list(SWEEPS))
def test_importance_and_both_plots_answer_for_every_strategy(client, store, queue, kind):
    sweep = client.post("/v1/sweeps", json={"base": BASE, **SWEEPS[kind]}).json()
    body = finish_all(client, store, queue, sweep["id"])
    assert body["done"], body
    got = client.get(f"/v1/sweeps/{sweep['id']}/importance")
    assert got.status_code == 200, got.text
    data = got.json()
    assert data["evaluator"] == "ped-anova" and data["finished"] == len(body["run_ids"])
    assert set(data["importance"]) == {"activation", "lr"}
    assert abs(sum(data["importance"].values()) - 1) < 1e-9
    parallel = client.get(f"/v1/sweeps/{sweep['id']}/parallel").json()
    axes = {a["field"]: a for a in parallel["axes"]}
    assert axes["activation"]["kind"] == "categorical" and "relu" in axes["activation"]["labels"]
    assert axes["lr"]["kind"] == "numeric"
    assert len(parallel["runs"]) == len(body["run_ids"])
    assert sum(run["best"] for run in parallel["runs"]) == 1
    best = next(run for run in parallel["runs"] if run["best"])
    assert best["run_id"] == body["best"]["run_id"]
    for path in ("importance.png", "parallel.png"):
        png = client.get(f"/v1/sweeps/{sweep['id']}/{path}")
        assert png.status_code == 200 and png.content.startswith(PNG), path


def test_lr_ranks_first_when_it_decides_the_loss(client, store, queue):
    grid = {"grid": {"activation": ["relu", "tanh"], "lr": [0.3, 0.1, 0.01, 0.001]}}
    sweep = client.post("/v1/sweeps", json={"base": BASE, **grid}).json()
    finish_all(client, store, queue, sweep["id"])
    ranked = list(client.get(f"/v1/sweeps/{sweep['id']}/importance").json()["importance"])
    assert ranked[0] == "lr"


def test_importance_is_409_below_the_minimum_of_finished_runs(client, store):
    sweep = client.post("/v1/sweeps", json={"base": BASE, **SWEEPS["grid"]}).json()
    for run_id in sweep["run_ids"][:3]:
        store.finish_run(run_id=run_id, status="succeeded", result={"final_train_loss": 0.5})
    got = client.get(f"/v1/sweeps/{sweep['id']}/importance")
    assert got.status_code == 409
    assert "3 finished run(s)" in got.json()["detail"] and "at least 4" in got.json()["detail"]
    assert client.get(f"/v1/sweeps/{sweep['id']}/importance.png").status_code == 409
    assert client.get(f"/v1/sweeps/{sweep['id']}/parallel.png").status_code == 200


def test_a_sweep_with_nothing_finished_has_no_parallel_plot(client):
    sweep = client.post("/v1/sweeps", json={"base": BASE, **SWEEPS["grid"]}).json()
    got = client.get(f"/v1/sweeps/{sweep['id']}/parallel.png")
    assert got.status_code == 409 and "0 finished run(s)" in got.json()["detail"]


def test_another_users_sweep_is_404(auth_client, users):
    alice, bob = (bearer(users.add(name=name)[1]) for name in ("alice", "bob"))
    sweep = auth_client.post("/v1/sweeps", json={"base": BASE, **SWEEPS["grid"]}, headers=alice)
    for path in ("importance", "importance.png", "parallel", "parallel.png"):
        got = auth_client.get(f"/v1/sweeps/{sweep.json()['id']}/{path}", headers=bob)
        assert got.status_code == 404, path
