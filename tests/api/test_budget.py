"""The compute budget over HTTP: max_param_epochs (parameters x epochs of a user's queued and
running runs), a server setting with per-user overrides, shown in /v1/limits, 429 when over
(in-process app with auth on, real Redis, no worker)."""

import threading

import pytest

from mlpcore.catalog import param_epochs, parameter_count
from tests.support.http import bearer, queued_task_messages
from tests.support.redis_db import TEST_PREFIX, prefix_keys

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
COST = param_epochs(dataset="synthetic", hidden=[8], epochs=2)  # 600


@pytest.fixture
def ann(users):
    return bearer(users.add(name="ann")[1])


def test_a_run_over_the_budget_alone_is_a_429_that_writes_nothing(
    auth_client, users, ann, redis_client
):
    users.update("ann", limits={"max_param_epochs": COST - 1})
    before = (prefix_keys(redis_client, TEST_PREFIX), queued_task_messages(redis_client))
    response = auth_client.post("/v1/runs", json=SPEC, headers=ann)
    assert response.status_code == 429 and response.json()["code"] == "quota_exceeded"
    detail = response.json()["detail"]
    assert f"max_param_epochs={COST - 1}" in detail and f"adds {COST}" in detail
    assert (prefix_keys(redis_client, TEST_PREFIX), queued_task_messages(redis_client)) == before


def test_the_default_budget_refuses_a_sweep_of_runs_at_every_limit(auth_client, users, ann):
    """The issue's case, with the server's default spec limits and budget: a run of 120.7 M
    parameters for 200 epochs is admitted, a 256-run sweep of them is not."""
    defaults = {"max_hidden_width": 4096, "max_epochs": 200, "max_runs_per_sweep": 256}
    users.update("ann", limits=defaults)  # the test app's own limits are lower
    widest = {"dataset": "fashion-mnist", "hidden": [4096] * 8, "epochs": 200}
    assert parameter_count(dataset="fashion-mnist", hidden=[4096] * 8) == 120_725_514
    sweep = {"base": widest, "grid": {"seed": list(range(256))}}
    response = auth_client.post("/v1/sweeps", json=sweep, headers=ann)
    assert response.status_code == 429
    assert f"max_param_epochs={10**11}" in response.json()["detail"]
    assert auth_client.post("/v1/runs", json=widest, headers=ann).status_code == 202


def test_a_sweep_is_charged_whole_and_runs_that_end_give_their_share_back(
    auth_client, users, ann, store
):
    users.update("ann", limits={"max_param_epochs": 3 * COST})
    sweep = {"base": SPEC, "grid": {"lr": [0.1, 0.01]}}
    first = auth_client.post("/v1/sweeps", json=sweep, headers=ann).json()
    refused = auth_client.post("/v1/sweeps", json=sweep, headers=ann)
    assert refused.status_code == 429 and f"hold {2 * COST}" in refused.json()["detail"]
    usage = auth_client.get("/v1/limits", headers=ann).json()["usage"]
    assert usage["param_epochs"] == 2 * COST
    for run_id in first["run_ids"]:
        store.mark_running(run_id=run_id, worker="w", device="cpu")
        store.finish_run(run_id=run_id, status="succeeded")
    assert auth_client.get("/v1/limits", headers=ann).json()["usage"]["param_epochs"] == 0
    assert auth_client.post("/v1/sweeps", json=sweep, headers=ann).status_code == 202


def test_limits_show_the_budget_its_override_and_its_usage(auth_client, users, ann):
    body = auth_client.get("/v1/limits", headers=ann).json()
    assert body["limits"]["max_param_epochs"] == 10**11 and body["usage"]["param_epochs"] == 0
    users.update("ann", limits={"max_param_epochs": 5000})
    auth_client.post("/v1/runs", json=SPEC, headers=ann)
    body = auth_client.get("/v1/limits", headers=ann).json()
    assert body["limits"]["max_param_epochs"] == 5000
    assert body["overrides"] == {"max_param_epochs": 5000}
    assert body["usage"]["param_epochs"] == COST


def test_a_staged_sweep_is_admitted_for_its_costliest_runs_over_all_stages(auth_client, users, ann):
    staged = {
        "strategy": "staged",
        "base": SPEC,
        "keep_top": 1,
        "stages": [{"activation": ["relu", "tanh"]}, {"epochs": [2, 4]}],
    }
    # 2 runs of 2 epochs now, then at most 2 more of up to 4 epochs (each twice the cost)
    users.update("ann", limits={"max_param_epochs": 6 * COST - 1})
    response = auth_client.post("/v1/sweeps", json=staged, headers=ann)
    assert response.status_code == 429 and f"adds {6 * COST}" in response.json()["detail"]
    users.update("ann", limits={"max_param_epochs": 6 * COST})
    assert auth_client.post("/v1/sweeps", json=staged, headers=ann).status_code == 202


def test_concurrent_posts_cannot_exceed_the_budget(auth_client, users, ann, store):
    """8 POSTs released together by a barrier, a budget for one run: one 202, seven 429s."""
    users.update("ann", limits={"max_param_epochs": COST})
    barrier, codes = threading.Barrier(8), []

    def post() -> None:
        barrier.wait()
        codes.append(auth_client.post("/v1/runs", json=SPEC, headers=ann).status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(codes) == [202] + [429] * 7
    assert len(store.owner_run_ids(owner="ann")) == 1
