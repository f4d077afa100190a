"""Trained models end to end: a real uvicorn and a real Celery worker train on the synthetic
dataset, the worker stores each run's weights, the client downloads and rebuilds them, and
the rebuilt module scores exactly the test accuracy the run reported."""

import hashlib

import httpx
import pytest
import torch
from safetensors.torch import load

from mlpcore.data import load_dataset
from mlplab.client import Client, NotFound
from runstore.users import UserStore
from tests.support.http import bearer
from tests.support.redis_db import connect
from tests.support.waiting import wait_for_run

pytestmark = pytest.mark.integration

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "batch_size": 64}
FINISHED = ("succeeded", "failed", "diverged", "cancelled", "stopped_early")


def finished(http, run_id, headers=None):
    return wait_for_run(http, run_id, lambda r: r["status"] in FINISHED, headers=headers)


def reloaded_accuracy(model, x_test, y_test):
    """The reloaded module's test accuracy, computed as the trainer computes it (float32)."""
    with torch.no_grad():
        correct = (model(x_test).argmax(dim=-1) == y_test).sum()
    return (correct.float() / len(y_test)).item()


@pytest.fixture(scope="module")
def test_set(server):
    data = load_dataset("synthetic", device="cpu", data_dir=server.log_dir / "data")
    return data.x_test, data.y_test


@pytest.fixture
def client(server):
    with Client(server.base_url) as c:
        yield c


def test_a_solo_runs_model_reloads_and_scores_its_reported_accuracy(
    http, client, test_set, tmp_path
):
    run_id = http.post("/v1/runs", json=SPEC).json()["id"]
    record = finished(http, run_id)
    assert record["status"] == "succeeded" and record["model"]["state"] == "stored"
    model = client.load_model(run_id)
    assert isinstance(model, torch.nn.Sequential)
    assert reloaded_accuracy(model, *test_set) == record["result"]["final_test_accuracy"]
    path = client.download_model(run_id, tmp_path / "m.safetensors")
    info = client.model_info(run_id)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info["files"]["final"]["sha256"]
    assert info["config"]["widths"] == [32, 16, 4] and info["config"]["spec"]["hidden"] == [16]
    assert record["model"]["files"] == {"final": info["files"]["final"]["bytes"]}
    assert record["model"]["bytes"] > info["files"]["final"]["bytes"]  # model.json counts too


def test_each_run_of_a_fused_group_gets_its_own_model_equal_to_its_solo_runs(
    http, client, test_set
):
    grid = {"activation": ["relu", "tanh"], "lr": [0.05, 0.005]}
    sweep = http.post("/v1/sweeps", json={"base": SPEC, "grid": grid, "fuse": True}).json()
    solo = http.post("/v1/runs", json={**SPEC, "activation": "tanh", "lr": 0.005}).json()["id"]
    records = [finished(http, run_id) for run_id in sweep["run_ids"]]
    assert len({r["fused_group"] for r in records}) == 1
    for record in records:
        model = client.load_model(record["id"])
        assert reloaded_accuracy(model, *test_set) == record["result"]["final_test_accuracy"]
    finished(http, solo)
    [twin] = [r for r in records if r["varied"] == {"activation": "tanh", "lr": 0.005}]
    fused_state = load(http.get(f"/v1/runs/{twin['id']}/model").content)
    solo_state = load(http.get(f"/v1/runs/{solo}/model").content)
    assert fused_state.keys() == solo_state.keys()
    assert all(torch.equal(fused_state[k], solo_state[k]) for k in solo_state)  # bit for bit


def test_with_a_val_split_the_best_epochs_model_is_kept_too(http, client, test_set):
    spec = {**SPEC, "epochs": 4, "val_fraction": 0.2}
    run_id = http.post("/v1/runs", json=spec).json()["id"]
    record = finished(http, run_id)
    assert set(record["model"]["files"]) == {"final", "best"}
    best_epoch = client.model_info(run_id)["best_epoch"]
    assert best_epoch == record["result"]["best_epoch"] and 1 <= best_epoch <= 4
    best = client.load_model(run_id, which="best")
    reported = record["epochs"][best_epoch - 1]["test_accuracy"]
    assert reloaded_accuracy(best, *test_set) == reported
    response = http.get(f"/v1/runs/{run_id}/model", params={"which": "best"})
    disposition = f'attachment; filename="{run_id}-best.safetensors"'
    assert response.headers["content-disposition"] == disposition
    png = http.get(f"/v1/runs/{run_id}/confusion.png", params={"which": "best"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_finished_runs_confusion_matrix_is_a_png_and_adds_up(http):
    run_id = http.post("/v1/runs", json=SPEC).json()["id"]
    record = finished(http, run_id)
    matrix = record["result"]["confusion"]
    assert len(matrix) == len(record["result"]["class_names"]) == 4
    correct = sum(matrix[k][k] for k in range(4)) / sum(map(sum, matrix))
    assert correct == pytest.approx(record["result"]["final_test_accuracy"], abs=1e-6)
    png = http.get(f"/v1/runs/{run_id}/confusion.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({**SPEC, "optimizer": "sgd", "lr": 1e6}, "diverged"),
        ({**SPEC, "train_subset": 1, "val_fraction": 0.5}, "failed"),  # nothing to split
    ],
)
def test_a_run_that_did_not_succeed_has_no_model_and_says_why(http, client, spec, status):
    run_id = http.post("/v1/runs", json=spec).json()["id"]
    record = finished(http, run_id)
    assert record["status"] == status and record["model"] is None
    response = http.get(f"/v1/runs/{run_id}/model")
    assert response.status_code == 404 and f"it {status}" in response.json()["detail"]
    with pytest.raises(NotFound, match=f"it {status}"):
        client.load_model(run_id)


def test_over_max_artifact_bytes_the_owners_oldest_models_are_evicted(auth_server):
    store = UserStore(connect(auth_server.redis_url), prefix=auth_server.prefix)
    _, token = store.add(name="evie")
    headers = bearer(token)
    with httpx.Client(base_url=auth_server.base_url, timeout=30) as http:
        ids = []
        for n in range(3):
            ids.append(http.post("/v1/runs", json=SPEC, headers=headers).json()["id"])
            record = finished(http, ids[-1], headers)
            assert record["model"]["state"] == "stored"
            if n == 0:  # room for two and a half models: the third evicts the first
                limit = int(2.5 * record["model"]["bytes"])
                store.update("evie", limits={"max_artifact_bytes": limit})
        records = [http.get(f"/v1/runs/{i}", headers=headers).json() for i in ids]
        reason = f"evicted: over max_artifact_bytes ({limit} bytes)"
        assert records[0]["model"]["state"] == "evicted" and records[0]["model"]["reason"] == reason
        assert [r["model"]["state"] for r in records[1:]] == ["stored", "stored"]
        response = http.get(f"/v1/runs/{ids[0]}/model", headers=headers)
        assert response.status_code == 404 and reason in response.json()["detail"]
        usage = http.get("/v1/limits", headers=headers).json()["usage"]
        assert usage["models"] == 2
        assert usage["artifact_bytes"] == sum(r["model"]["bytes"] for r in records[1:])


def test_delete_is_owner_only_and_idempotent(auth_server):
    store = UserStore(connect(auth_server.redis_url), prefix=auth_server.prefix)
    ann, bob = (bearer(store.add(name=name)[1]) for name in ("dana", "olaf"))
    with httpx.Client(base_url=auth_server.base_url, timeout=30) as http:
        run_id = http.post("/v1/runs", json=SPEC, headers=ann).json()["id"]
        finished(http, run_id, ann)
        assert http.delete(f"/v1/runs/{run_id}/model", headers=bob).status_code == 404
        assert http.get(f"/v1/runs/{run_id}/model", headers=bob).status_code == 404
        assert http.get(f"/v1/runs/{run_id}/model", headers=ann).status_code == 200
        for _ in range(2):
            assert http.delete(f"/v1/runs/{run_id}/model", headers=ann).status_code == 204
        record = http.get(f"/v1/runs/{run_id}", headers=ann).json()
        assert record["model"]["state"] == "deleted"
        assert http.get(f"/v1/runs/{run_id}/model", headers=ann).status_code == 404
