"""POST /v1/sweeps/{id}/extend with epochs, in-process against the real Redis: what it writes
on each continued run (the same run, its epochs kept, queued to start from its stored state,
fused only with runs that start from the same epoch) and everything it refuses, changing
nothing. Training the continued runs is tests/integration/test_extend_epochs.py."""

import json

import pytest

from artifacts import DirectoryStore
from runstore import curation
from tests.support.models import finished_result, store_model
from tests.support.redis_db import TEST_PREFIX

BASE = {"dataset": "synthetic", "hidden": [8], "epochs": 2, "scheduler": "step", "step_size": 1}
GRID = {"base": BASE, "grid": {"lr": [0.1, 0.01]}}
QUEUE = f"{TEST_PREFIX}:fair:q:local"
EPOCH = {"train_loss": 0.5, "test_loss": 0.6, "test_accuracy": 0.5, "lr": 0.1, "seconds": 0.1}


def pending(redis_client):
    return [json.loads(group) for group in redis_client.lrange(QUEUE, 0, -1)]


@pytest.fixture
def files(api_settings):
    return DirectoryStore(api_settings.artifact_dir)


def end(store, files, run_id, *, state=True):
    """End the run as a worker does: its epochs, succeeded, its model (and state) stored."""
    epochs = store.get_run(run_id)["spec"]["epochs"]
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    for epoch in range(1, epochs + 1):
        store.append_epoch(run_id=run_id, metrics={"epoch": epoch, **EPOCH})
    model = store_model(store, files, run_id)
    model = {**model, "resume_epoch": epochs} if state else model
    store.finish_run(run_id=run_id, status="succeeded", result=finished_result(), model=model)


def ended_sweep(client, store, files, body=GRID, *, state=True):
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep = response.json()
    for run_id in sweep["run_ids"]:
        end(store, files, run_id, state=state)
    return sweep


def test_continued_runs_keep_their_epochs_and_queue_from_their_state(
    client, store, files, redis_client
):
    sweep = ended_sweep(client, store, files)
    redis_client.delete(QUEUE)  # the submission's own groups
    response = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"epochs": 4})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["run_ids"] == sweep["run_ids"] and body["skipped"] == []
    assert body["sweep"]["counts"] == {"queued": 2} and not body["sweep"]["done"]
    for run_id in sweep["run_ids"]:
        run = client.get(f"/v1/runs/{run_id}").json()
        assert run["status"] == "queued" and run["spec"]["epochs"] == 4
        assert [e["epoch"] for e in run["epochs"]] == [1, 2] and run["result"] is None
        assert run["model"]["state"] == "stored"  # the epoch-2 model until the run ends again
        (extension,) = run["extensions"]
        assert extension["from_epoch"] == 2 and extension["to_epoch"] == 4
        assert extension["result"] == finished_result()
        assert store.get_run(run_id)["continuing"] == {
            "from_epoch": 2,
            "save": run["model"]["save"],
        }
        fkey = redis_client.hget(f"{TEST_PREFIX}:run:{run_id}", "fkey")
        assert fkey.endswith(" from epoch 2")
    assert pending(redis_client) == [sweep["run_ids"]]  # one fused group
    again = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"epochs": 6})
    assert again.status_code == 409 and "still has runs" in again.json()["detail"]


def test_runs_from_different_epochs_queue_apart(client, store, files, redis_client):
    body = {"base": BASE, "grid": {"epochs": [2, 3]}}
    sweep = ended_sweep(client, store, files, body)
    redis_client.delete(QUEUE)  # the submission's own groups
    response = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"epochs": 5})
    assert response.status_code == 202, response.text
    assert sorted(pending(redis_client)) == sorted([[r] for r in sweep["run_ids"]])
    keys = {redis_client.hget(f"{TEST_PREFIX}:run:{r}", "fkey") for r in sweep["run_ids"]}
    assert len(keys) == 2


def test_runs_without_a_state_are_skipped_and_said(client, store, files):
    sweep = ended_sweep(client, store, files, state=False)
    response = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"epochs": 4})
    assert response.status_code == 409 and "stored state" in response.json()["detail"]
    first, second = sweep["run_ids"]
    store.models.drop(owner="local", run_id=second)  # deleted by its owner
    store.client.hset(f"{TEST_PREFIX}:run:{first}", "model", json.dumps(
        {**store.get_run(first)["model"], "resume_epoch": 2}))  # fmt: skip
    response = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"epochs": 4})
    assert response.status_code == 202, response.text
    assert response.json()["run_ids"] == [first]
    (skipped,) = response.json()["skipped"]
    assert skipped["run_id"] == second and "deleted by its owner" in skipped["reason"]


@pytest.mark.parametrize(
    ("update", "epochs", "status", "words"),
    [
        ({"scheduler": "cosine"}, 4, 422, "anneals the lr"),
        ({}, 2, 422, "2 epochs already"),
        ({}, 60, 422, "max_epochs"),
        ({}, 0, 422, "epochs"),
    ],
)
def test_what_cannot_continue_is_refused_and_changes_nothing(
    client, store, files, update, epochs, status, words
):
    sweep = ended_sweep(client, store, files, {**GRID, "base": {**BASE, **update}})
    before = [store.get_run(r) for r in sweep["run_ids"]]
    response = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"epochs": epochs})
    assert response.status_code == status and words in response.json()["detail"], response.text
    assert [store.get_run(r) for r in sweep["run_ids"]] == before


def test_a_staged_sweep_is_refused(client):
    stages = [{"activation": ["relu", "tanh"]}, {"lr": [0.1, 0.01]}]
    staged = {"strategy": "staged", "base": BASE, "keep_top": 1, "stages": stages}
    response = client.post("/v1/sweeps", json=staged)
    assert response.status_code == 202, response.text
    extended = client.post(f"/v1/sweeps/{response.json()['id']}/extend", json={"epochs": 4})
    assert extended.status_code == 422 and "staged" in extended.json()["detail"]


def test_a_continuation_is_requeued_once_however_many_race(client, store, files):
    sweep = ended_sweep(client, store, files)
    run = store.get_run(sweep["run_ids"][0])
    spec = {**run["spec"], "epochs": 4}
    args = {"run_id": run["id"], "spec": spec, "model": run["model"], "fused_group": None}
    assert curation.requeue_continuation(store, **args)
    assert not curation.requeue_continuation(store, **args)  # no longer succeeded
    assert len(store.get_run(run["id"])["extensions"]) == 1
