"""Runs over HTTP (in-process app, real Redis): submit, read, list, cancel, the task message."""

import pytest

from tests.support.http import queued_groups, starlette_test_client
from tests.support.redis_db import TEST_PREFIX, prefix_keys

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "device": "cpu"}


def test_submit_returns_the_resolved_record_and_queues_a_task_by_name(client, redis_client):
    response = client.post("/v1/runs", json=SPEC)
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "queued" and run["owner"] == "local" and run["sweep_id"] is None
    assert run["spec"]["lr"] == 0.001 and run["spec"]["activation"] == "relu"  # defaults filled
    assert run["epochs"] == [] and run["result"] is None and run["started_at"] is None
    assert queued_groups(redis_client) == [[run["id"]]]
    assert client.get(f"/v1/runs/{run['id']}").json() == run


def test_list_filters_and_paginates(client, store):
    ids = [client.post("/v1/runs", json={**SPEC, "seed": i}).json()["id"] for i in range(4)]
    client.delete(f"/v1/runs/{ids[0]}")
    page = client.get("/v1/runs", params={"limit": 2, "offset": 1}).json()
    assert page["count"] == 4 and [r["id"] for r in page["data"]] == [ids[2], ids[1]]
    cancelled = client.get("/v1/runs", params={"status": "cancelled"}).json()
    assert [r["id"] for r in cancelled["data"]] == [ids[0]]
    bad = client.get("/v1/runs", params={"status": "done", "limit": 0})
    assert bad.status_code == 422
    assert "query parameter status" in bad.json()["detail"]
    assert "query parameter limit" in bad.json()["detail"]


def test_with_auth_off_the_local_user_is_the_admin(client, store):
    other = store.create_run(owner="bob", spec={**SPEC})  # e.g. from before auth was turned off
    assert client.get(f"/v1/runs/{other['id']}").json()["owner"] == "bob"
    assert client.get("/v1/runs").json()["count"] == 1
    assert client.get("/v1/runs", params={"owner": "local"}).json()["count"] == 0
    assert client.get("/v1/limits").json()["user"] == "local"


def test_cancel_queued_then_409(client):
    run_id = client.post("/v1/runs", json=SPEC).json()["id"]
    response = client.delete(f"/v1/runs/{run_id}")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    again = client.delete(f"/v1/runs/{run_id}")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert "cancelled" in again.json()["detail"]


def test_cancel_running_sets_the_flag(client, store):
    run_id = client.post("/v1/runs", json=SPEC).json()["id"]
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    response = client.delete(f"/v1/runs/{run_id}")
    assert response.status_code == 202
    assert response.json()["status"] == "running" and response.json()["cancel_requested"]


@pytest.mark.parametrize("auth", [True])
def test_auth_on_without_a_token_is_401_and_writes_nothing(api_settings, redis_client, auth):
    from api.main import create_app

    settings = api_settings.model_copy(update={"auth": auth})
    with starlette_test_client()(create_app(settings)) as client:
        response = client.post("/v1/runs", json=SPEC)
    assert response.status_code == 401 and response.json()["code"] == "auth_required"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert prefix_keys(redis_client, TEST_PREFIX) == []
