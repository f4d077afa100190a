"""Sweeps as objects over HTTP (in-process app, real Redis): list, label, retry, extend,
compare, and the warnings on varied fields that cannot matter."""

from mlpcore.sweep import SweepSpec, expand_sweep
from tests.support.http import queued_groups
from tests.support.redis_db import TEST_PREFIX

BASE = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
GRID = {"name": "lr grid", "base": BASE, "grid": {"lr": [0.1, 0.01]}}
RANDOM = {
    "name": "random lr",
    "base": BASE,
    "strategy": "random",
    "n": 2,
    "seed": 7,
    "grid": {"lr": {"loguniform": [1e-4, 1e-1]}},
}
EPOCH = {"train_loss": 0.5, "test_loss": 0.6, "test_accuracy": 0.5, "lr": 0.1, "seconds": 0.1}


def finish(store, run_id, status="succeeded", loss=0.5, epochs=1):
    """End a run as a worker records it."""
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    for epoch in range(1, epochs + 1):
        store.append_epoch(run_id=run_id, metrics={"epoch": epoch, **EPOCH, "train_loss": loss})
    result = {"final_train_loss": loss, "runtime_s": 1.0} if status == "succeeded" else None
    error = None if status == "succeeded" else f"it {status}"
    store.finish_run(run_id=run_id, status=status, result=result, error=error)


def submit(client, body):
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    return response.json()


# -- GET /v1/sweeps ---------------------------------------------------------------------------


def test_the_list_is_newest_first_with_counts_best_and_labels(client, store):
    first = submit(client, GRID)
    second = submit(client, {**RANDOM, "name": "second"})
    finish(store, first["run_ids"][0], loss=0.3)
    finish(store, first["run_ids"][1], loss=0.2)
    body = client.get("/v1/sweeps").json()
    assert body["count"] == 2 and [s["id"] for s in body["data"]] == [second["id"], first["id"]]
    done = body["data"][1]
    assert done["counts"] == {"succeeded": 2} and done["done"] and done["strategy"] == "grid"
    assert done["best"]["run_id"] == first["run_ids"][1] and done["best"]["value"] == 0.2
    assert body["data"][0]["strategy"] == "random" and not body["data"][0]["done"]
    assert body["data"][0]["best"] is None and body["data"][0]["tags"] == []


def test_the_list_filters_by_state_name_and_tag_and_pages(client, store):
    ids = [submit(client, {**GRID, "name": f"study {k}"})["id"] for k in range(3)]
    for run_id in client.get(f"/v1/sweeps/{ids[0]}").json()["run_ids"]:
        finish(store, run_id)
    client.patch(f"/v1/sweeps/{ids[1]}", json={"tags": ["keep"]})
    listed = lambda **p: [s["id"] for s in client.get("/v1/sweeps", params=p).json()["data"]]  # noqa: E731
    assert listed(status="done") == [ids[0]]
    assert listed(status="active") == [ids[2], ids[1]]
    assert listed(name="STUDY 2") == [ids[2]] and listed(name="nope") == []
    assert listed(tag="keep") == [ids[1]] and listed(tag="kee") == []
    page = client.get("/v1/sweeps", params={"limit": 2, "offset": 2}).json()
    assert page["count"] == 3 and [s["id"] for s in page["data"]] == [ids[0]]
    bad = client.get("/v1/sweeps", params={"status": "finished"})
    assert bad.status_code == 422 and "status" in bad.json()["detail"]


# -- PATCH ------------------------------------------------------------------------------------


def test_patch_sets_and_clears_labels_on_sweeps_and_runs(client):
    sweep = submit(client, GRID)
    response = client.patch(
        f"/v1/sweeps/{sweep['id']}",
        json={"name": "renamed", "tags": ["lr", "v2", "lr"], "notes": "first try\n\tok"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "renamed" and response.json()["tags"] == ["lr", "v2"]
    again = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert again["notes"] == "first try\n\tok" and again["tags"] == ["lr", "v2"]
    client.patch(f"/v1/sweeps/{sweep['id']}", json={"tags": None, "notes": None})
    again = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert again["tags"] == [] and again["notes"] is None and again["name"] == "renamed"
    run_id = sweep["run_ids"][0]
    patched = client.patch(f"/v1/runs/{run_id}", json={"name": "baseline", "tags": ["best"]})
    assert patched.status_code == 200 and patched.json()["tags"] == ["best"]
    run = client.get(f"/v1/runs/{run_id}").json()
    assert run["name"] == "baseline" and run["tags"] == ["best"] and run["notes"] is None


def test_bad_labels_are_422_naming_the_field_and_change_nothing(client):
    sweep = submit(client, GRID)
    path = f"/v1/sweeps/{sweep['id']}"
    bad = [
        ({"tags": ["a b"]}, "tags"),
        ({"tags": ["x" * 33]}, "tags"),
        ({"tags": [f"t{k}" for k in range(11)]}, "tags"),
        ({"name": "bell\x07"}, "name"),
        ({"notes": "esc\x1b[31m"}, "notes"),
        ({"notes": "x" * 4001}, "notes"),
        ({"colour": "red"}, "colour"),
        ({}, "body"),
    ]
    for body, field in bad:
        response = client.patch(path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["detail"], (body, response.json())
    record = client.get(path).json()
    assert record["name"] == "lr grid" and record["tags"] == [] and record["notes"] is None


# -- retry ------------------------------------------------------------------------------------


def test_retry_requeues_failed_runs_as_new_attempts(client, store, redis_client):
    sweep = submit(client, {**GRID, "grid": {"lr": [0.1, 0.01, 0.001]}})
    ids = sweep["run_ids"]
    redis_client.delete(f"{TEST_PREFIX}:fair:q:local", "celery")
    finish(store, ids[0], loss=0.3)
    finish(store, ids[1], status="failed", epochs=2)
    finish(store, ids[2], status="diverged")
    response = client.post(f"/v1/sweeps/{sweep['id']}/retry")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["run_ids"] == ids[1:] and body["count"] == 2
    assert body["sweep"]["counts"] == {"succeeded": 1, "queued": 2} and not body["sweep"]["done"]
    assert queued_groups(redis_client) == [ids[1:]]  # fused like a submission
    run = client.get(f"/v1/runs/{ids[1]}").json()
    assert run["status"] == "queued" and run["epochs"] == [] and run["error"] is None
    assert [(a["attempt"], a["status"], a["epochs"]) for a in run["attempts"]] == [(1, "failed", 2)]
    assert run["attempts"][0]["error"] == "it failed"
    finish(store, ids[1], loss=0.1)  # the new attempt trains from epoch 1 again
    assert client.get(f"/v1/sweeps/{sweep['id']}/best").json()["run_id"] == ids[1]
    assert client.get(f"/v1/runs/{ids[1]}").json()["attempts"][0]["status"] == "failed"


def test_retry_with_nothing_to_retry_is_409(client, store):
    sweep = submit(client, GRID)
    for run_id in sweep["run_ids"]:
        finish(store, run_id)
    response = client.post(f"/v1/sweeps/{sweep['id']}/retry")
    assert response.status_code == 409 and "no failed" in response.json()["detail"]


def test_retry_counts_against_the_quota(client, store, api_settings):
    sweep = submit(client, GRID)
    for run_id in sweep["run_ids"]:
        finish(store, run_id, status="cancelled")
    client.app.state.settings = api_settings.model_copy(update={"max_queued": 1})
    response = client.post(f"/v1/sweeps/{sweep['id']}/retry")
    assert response.status_code == 429, response.text
    counts = client.get(f"/v1/sweeps/{sweep['id']}").json()["counts"]
    assert counts == {"cancelled": 2}  # refused: nothing requeued


# -- extend -----------------------------------------------------------------------------------


def test_extend_adds_the_next_draws_of_the_random_stream(client, store):
    sweep = submit(client, RANDOM)
    response = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"n": 3})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["count"] == 3 and body["sweep"]["run_ids"] == sweep["run_ids"] + body["run_ids"]
    assert body["sweep"]["spec"]["n"] == 5
    whole = expand_sweep(SweepSpec(**{**RANDOM, "n": 5}), max_runs=16)
    runs = client.get("/v1/runs", params={"sweep_id": sweep["id"], "limit": 10}).json()["data"]
    assert [r["varied"] for r in runs] == [c.varied for c in whole]  # a continuation, no reseed
    assert len({r["varied"]["lr"] for r in runs}) == 5


def test_extend_refuses_what_it_cannot_do(client):
    grid = submit(client, GRID)
    random = submit(client, RANDOM)
    cases = [
        (grid["id"], {"n": 2}, 422, "random"),
        (random["id"], {"epochs": 20}, 409, "still has runs"),
        (random["id"], {}, 422, "n"),
        (random["id"], {"n": 0}, 422, "n"),
        (random["id"], {"n": 20}, 422, "max_runs_per_sweep"),
    ]
    for sweep_id, body, status, word in cases:
        response = client.post(f"/v1/sweeps/{sweep_id}/extend", json=body)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["detail"], (body, response.json())
    assert len(client.get(f"/v1/sweeps/{random['id']}").json()["run_ids"]) == 2


# -- compare ----------------------------------------------------------------------------------


def test_compare_ranks_runs_of_several_sweeps_together(client, store):
    a, b = submit(client, GRID), submit(client, {**GRID, "name": "other"})
    for run_id, loss in zip(a["run_ids"] + b["run_ids"], (0.4, 0.3, 0.1, 0.5), strict=True):
        finish(store, run_id, loss=loss, epochs=2)
    response = client.get("/v1/compare", params={"sweeps": f"{a['id']},{b['id']}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["run_id"], r["sweep_id"]) for r in body["data"]][:2] == [
        (b["run_ids"][0], b["id"]),
        (a["run_ids"][1], a["id"]),
    ]
    assert [s["best_run_id"] for s in body["sweeps"]] == [a["run_ids"][1], b["run_ids"][0]]
    assert body["data"][0]["sweep_name"] == "other" and body["count"] == 4
    png = client.get("/v1/compare.png", params={"sweeps": f"{a['id']},{b['id']}"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    runs = client.get("/v1/compare", params={"runs": ",".join(a["run_ids"])}).json()
    assert [r["run_id"] for r in runs["data"]] == [a["run_ids"][1], a["run_ids"][0]]


def test_compare_refuses_sweeps_on_different_metrics(client):
    a = submit(client, GRID)
    b = submit(client, {**GRID, "metric": "final_test_accuracy"})
    response = client.get("/v1/compare", params={"sweeps": f"{a['id']},{b['id']}"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "final_train_loss" in detail and "final_test_accuracy" in detail and b["id"] in detail
    for params in ({}, {"sweeps": a["id"]}, {"sweeps": a["id"], "runs": a["run_ids"][0]}):
        assert client.get("/v1/compare", params=params).status_code == 422, params
    missing = client.get("/v1/compare", params={"sweeps": f"{a['id']},ffffffffffffffff"})
    assert missing.status_code == 404
    assert (
        client.get("/v1/compare.png", params={"sweeps": f"{a['id']},{a['id']}x"}).status_code == 404
    )


# -- warnings ---------------------------------------------------------------------------------


def test_varied_fields_that_cannot_matter_are_warned_about(client):
    grid = {"lr": [0.1, 0.01], "step_size": [20, 30, 40]}
    sweep = submit(client, {"base": {**BASE, "epochs": 10}, "grid": grid})
    (warning,) = sweep["warnings"]
    assert warning.startswith("step_size varies") and "4 of the sweep's 6 runs" in warning
    fine = submit(client, {"base": {**BASE, "epochs": 10}, "grid": {"step_size": [3, 5]}})
    assert fine["warnings"] == []
    cases = [
        ({"scheduler": "none"}, {"gamma": [0.1, 0.5]}, "gamma"),
        ({"optimizer": "adam"}, {"momentum": [0.5, 0.9]}, "momentum"),
    ]
    for base, axis, field in cases:
        warned = submit(client, {"base": {**BASE, **base}, "grid": axis})["warnings"]
        assert len(warned) == 1 and warned[0].startswith(field), warned
    sgd = submit(client, {"base": {**BASE, "optimizer": "sgd"}, "grid": {"momentum": [0.5, 0.9]}})
    assert sgd["warnings"] == []


def test_a_retried_run_of_a_finished_stage_does_not_move_the_sweep_twice(client, store):
    from lab.stages import advance_sweep
    from tests.support.staged import SPEC as STAGED

    sweep = submit(client, {**STAGED, "base": BASE})
    first = sweep["run_ids"]
    for run_id, status in zip(first, ("succeeded", "succeeded", "failed"), strict=True):
        finish(store, run_id, status=status)
    queue = client.app.state.queue
    assert advance_sweep(sweep["id"], store=store, queue=queue, max_models=8) == 1
    stages = client.get(f"/v1/sweeps/{sweep['id']}").json()["stages"]
    assert stages[1]["status"] == "running"
    n_runs = len(client.get(f"/v1/sweeps/{sweep['id']}").json()["run_ids"])
    retried = client.post(f"/v1/sweeps/{sweep['id']}/retry").json()
    assert retried["run_ids"] == [first[2]]
    finish(store, first[2], loss=0.01)  # the retried stage-1 run ends (now the best of it)
    assert advance_sweep(sweep["id"], store=store, queue=queue, max_models=8) == 0
    after = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert len(after["run_ids"]) == n_runs and after["stages"][1]["status"] == "running"
    assert after["stages"][0]["winners"] == stages[0]["winners"]  # its winners stand
