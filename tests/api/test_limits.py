"""Limits, quotas, per-user overrides, admin settings and queue positions over HTTP
(in-process app with auth on, real Redis, no worker)."""

import pytest

from tests.support.http import bearer, queued_task_messages
from tests.support.redis_db import TEST_PREFIX, prefix_keys

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}


@pytest.fixture
def ann(users):
    return bearer(users.add(name="ann")[1])


@pytest.mark.parametrize(
    ("body", "path", "limit"),
    [
        ({**SPEC, "epochs": 51}, "/v1/runs", "max_epochs=50"),
        ({**SPEC, "hidden": [2048]}, "/v1/runs", "max_hidden_width=1024"),
        ({**SPEC, "hidden": [8] * 9}, "/v1/runs", "max_hidden_layers=8"),
        ({**SPEC, "batch_size": 10_000}, "/v1/runs", "max_batch_size=8192"),
        ({"base": SPEC, "grid": {"seed": list(range(17))}}, "/v1/sweeps", "max_runs_per_sweep=16"),
    ],
)
def test_each_spec_limit_is_a_422_naming_it_and_writes_nothing(
    auth_client, ann, redis_client, body, path, limit
):
    before = prefix_keys(redis_client, TEST_PREFIX)
    response = auth_client.post(path, json=body, headers=ann)
    assert response.status_code == 422 and limit in response.json()["detail"]
    assert prefix_keys(redis_client, TEST_PREFIX) == before


def test_an_override_lifts_a_limit_for_that_user_only(auth_client, users, ann):
    users.update("ann", limits={"max_epochs": 80})
    assert auth_client.post("/v1/runs", json={**SPEC, "epochs": 80}, headers=ann).status_code == 202
    bob = bearer(users.add(name="bob")[1])
    response = auth_client.post("/v1/runs", json={**SPEC, "epochs": 80}, headers=bob)
    assert response.status_code == 422 and "max_epochs=50" in response.json()["detail"]


def test_max_queued_is_a_429_naming_quota_and_count_and_a_sweep_is_refused_whole(
    auth_client, users, ann, redis_client, store
):
    users.update("ann", limits={"max_queued": 3})
    first = [auth_client.post("/v1/runs", json=SPEC, headers=ann).json() for _ in range(2)]
    before = (prefix_keys(redis_client, TEST_PREFIX), queued_task_messages(redis_client))
    sweep = {"base": SPEC, "grid": {"lr": [0.1, 0.01]}}
    response = auth_client.post("/v1/sweeps", json=sweep, headers=ann)
    assert response.status_code == 429 and response.json()["code"] == "quota_exceeded"
    assert "max_queued=3" in response.json()["detail"]
    assert "ann has 2 queued or running runs" in response.json()["detail"]
    assert (prefix_keys(redis_client, TEST_PREFIX), queued_task_messages(redis_client)) == before
    store.mark_running(run_id=first[0]["id"], worker="w", device="cpu")
    store.finish_run(run_id=first[0]["id"], status="succeeded")  # a finished run frees room
    assert auth_client.post("/v1/sweeps", json=sweep, headers=ann).status_code == 202


def counts(usage: dict) -> dict:
    """The run counts of /v1/limits' usage (it shows the budget's and the streams' too)."""
    return {key: usage[key] for key in ("queued", "running", "promised")}


def test_a_staged_sweep_holds_room_for_its_later_stages_until_it_ends(
    auth_client, users, ann, store
):
    staged = {
        "strategy": "staged",
        "base": SPEC,
        "keep_top": 2,
        "stages": [{"activation": ["relu", "tanh", "sigmoid"]}, {"lr": [0.1, 0.01]}],
    }
    users.update("ann", limits={"max_queued": 6})  # 3 now + at most 2 x 2 later = 7
    response = auth_client.post("/v1/sweeps", json=staged, headers=ann)
    assert response.status_code == 429 and "adds 7" in response.json()["detail"]
    users.update("ann", limits={"max_queued": 7})
    sweep = auth_client.post("/v1/sweeps", json=staged, headers=ann).json()
    usage = counts(auth_client.get("/v1/limits", headers=ann).json()["usage"])
    assert usage == {"queued": 3, "running": 0, "promised": 4}
    refused = auth_client.post("/v1/runs", json=SPEC, headers=ann)
    assert refused.status_code == 429 and "ann has 7 queued or running" in refused.text
    assert auth_client.delete(f"/v1/sweeps/{sweep['id']}", headers=ann).status_code == 202
    usage = counts(auth_client.get("/v1/limits", headers=ann).json()["usage"])
    assert usage == {"queued": 0, "running": 0, "promised": 0}
    assert auth_client.post("/v1/runs", json=SPEC, headers=ann).status_code == 202


def test_limits_show_effective_values_overrides_and_usage(auth_client, users, ann, store):
    users.update("ann", priority=2, limits={"max_queued": 7, "max_running": 2})
    run_ids = [auth_client.post("/v1/runs", json=SPEC, headers=ann).json()["id"] for _ in range(3)]
    store.mark_running(run_id=run_ids[0], worker="w", device="cpu")
    body = auth_client.get("/v1/limits", headers=ann).json()
    assert body["user"] == "ann" and not body["admin"] and body["priority"] == 2
    assert body["limits"] == {
        "max_epochs": 50,
        "max_hidden_width": 1024,
        "max_hidden_layers": 8,
        "max_batch_size": 8192,
        "max_runs_per_sweep": 16,
        "max_queued": 7,
        "max_running": 2,
        "max_param_epochs": auth_client.app.state.settings.max_param_epochs,
        "max_streams": 50,
        "max_artifact_bytes": 2**30,
    }
    assert body["overrides"] == {"max_queued": 7, "max_running": 2}
    assert counts(body["usage"]) == {"queued": 2, "running": 1, "promised": 0}
    assert body["usage"]["streams"] == 0


def test_admins_set_priority_and_overrides_others_may_not(auth_client, users, ann, redis_client):
    root = bearer(users.add(name="root", admin=True)[1])
    assert auth_client.get("/v1/users", headers=ann).status_code == 403
    assert auth_client.patch("/v1/users/ann", json={"priority": 3}, headers=ann).status_code == 403
    listed = auth_client.get("/v1/users", headers=root).json()
    assert [u["name"] for u in listed["data"]] == ["ann", "root"]
    assert "token_hash" not in listed["data"][0]
    change = {"priority": 3, "limits": {"max_running": 2, "max_queued": 50}}
    user = auth_client.patch("/v1/users/ann", json=change, headers=root).json()
    assert user["priority"] == 3 and user["overrides"] == {"max_running": 2, "max_queued": 50}
    assert redis_client.hget(f"{TEST_PREFIX}:fair:caps", "ann") == "2"  # the scheduler's cap
    dropped = auth_client.patch(
        "/v1/users/ann", json={"limits": {"max_running": None}}, headers=root
    ).json()
    assert dropped["overrides"] == {"max_queued": 50}
    assert redis_client.hget(f"{TEST_PREFIX}:fair:caps", "ann") == "none"  # server default
    for bad in (
        {"priority": 0},
        {"priority": True},
        {"limits": {"max_gpus": 1}},
        {"limits": {"max_queued": 0}},
        {"limits": {"max_queued": True}},
    ):
        assert auth_client.patch("/v1/users/ann", json=bad, headers=root).status_code == 422
    assert auth_client.patch("/v1/users/nobody", json={}, headers=root).status_code == 404


def test_queue_position_while_queued(auth_client, users, ann, store):
    bob = bearer(users.add(name="bob")[1])
    mine = [auth_client.post("/v1/runs", json=SPEC, headers=ann).json() for _ in range(3)]
    theirs = auth_client.post("/v1/runs", json=SPEC, headers=bob).json()
    assert [r["queue_position"] for r in mine] == [0, 1, 2] and theirs["queue_position"] == 1
    # fair share: bob's run goes second, ahead of ann's later two
    assert auth_client.get(f"/v1/runs/{theirs['id']}", headers=bob).json()["queue_position"] == 1
    listed = auth_client.get("/v1/runs", headers=ann).json()["data"]  # newest first
    assert [r["queue_position"] for r in listed] == [3, 2, 0]
    store.mark_running(run_id=mine[0]["id"], worker="w", device="cpu")
    got = auth_client.get(f"/v1/runs/{mine[0]['id']}", headers=ann).json()
    assert got["status"] == "running" and got["queue_position"] is None
