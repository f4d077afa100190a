"""Submissions no live worker can serve are refused with a 422 naming what is missing; with no
worker up, or one that does not say what it serves, they are queued as before (in-process
app, real Redis; the workers are heartbeats written as a worker writes them)."""

import pytest

from tests.support.redis_db import TEST_PREFIX, prefix_keys
from tests.support.waiting import wait_for

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
CPU_BOX = {"datasets": ["mnist-5k", "digits", "synthetic"], "devices": ["cpu"]}
GPU_BOX = {"datasets": ["fashion-mnist", "synthetic"], "devices": ["cpu", "cuda:0"]}


@pytest.fixture
def workers(store):
    """Write live heartbeats: workers(name=info, ...)."""

    def beat(**infos):
        for name, info in infos.items():
            store.heartbeat(hostname=f"{name}@box", info=info, ttl_s=600)

    return beat


def test_a_dataset_no_live_worker_has_is_a_422_naming_it(client, workers, redis_client):
    workers(w1=CPU_BOX)
    before = prefix_keys(redis_client, TEST_PREFIX)
    response = client.post("/v1/runs", json={"hidden": [8], "epochs": 2})  # fashion-mnist
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "no live worker has dataset fashion-mnist; workers have: mnist-5k, digits, synthetic"
    )
    assert prefix_keys(redis_client, TEST_PREFIX) == before
    assert client.post("/v1/runs", json={**SPEC, "dataset": "digits"}).status_code == 202


def test_a_device_no_live_worker_has_is_a_422_naming_it(client, workers):
    workers(w1=CPU_BOX)
    response = client.post("/v1/runs", json={**SPEC, "device": "cuda:1"})
    assert response.status_code == 422
    assert response.json()["detail"] == "no live worker has device cuda:1; workers have: cpu"
    for device in ("auto", "cpu"):
        assert client.post("/v1/runs", json={**SPEC, "device": device}).status_code == 202


def test_any_live_worker_may_serve_it_but_one_must_have_both(client, workers):
    workers(w1=CPU_BOX, w2=GPU_BOX)
    assert client.post("/v1/runs", json={**SPEC, "dataset": "fashion-mnist"}).status_code == 202
    assert client.post("/v1/runs", json={**SPEC, "device": "cuda"}).status_code == 202
    response = client.post("/v1/runs", json={**SPEC, "dataset": "digits", "device": "cuda:0"})
    assert response.status_code == 422
    assert "no live worker has both dataset digits and device cuda:0" in response.json()["detail"]


def test_every_configuration_of_a_sweep_and_stage_is_checked(client, workers, redis_client):
    workers(w1=CPU_BOX)
    before = prefix_keys(redis_client, TEST_PREFIX)
    grid = {"base": SPEC, "grid": {"dataset": ["synthetic", "kmnist"]}}
    response = client.post("/v1/sweeps", json=grid)
    assert response.status_code == 422 and "no live worker has dataset kmnist" in response.text
    staged = {
        "strategy": "staged",
        "base": SPEC,
        "keep_top": 1,
        "stages": [{"lr": [0.1, 0.01]}, {"dataset": ["synthetic", "mnist"]}],
    }
    response = client.post("/v1/sweeps", json=staged)
    assert response.status_code == 422 and "no live worker has dataset mnist" in response.text
    assert prefix_keys(redis_client, TEST_PREFIX) == before


def test_with_no_live_worker_or_one_that_does_not_say_it_is_queued_as_before(
    client, workers, store
):
    assert client.post("/v1/runs", json={"hidden": [8]}).status_code == 202  # no worker up
    store.heartbeat(hostname="gone@box", info=CPU_BOX, ttl_s=0.05)
    wait_for(lambda: not store.live_workers(), what="the heartbeat to expire", every=0.01)
    assert client.post("/v1/runs", json={"hidden": [8]}).status_code == 202
    workers(w1=CPU_BOX, old={"device": "cpu"})  # a worker of an older version says nothing
    assert client.post("/v1/runs", json={"hidden": [8]}).status_code == 202
