"""How the API cuts a sweep into fused tasks (in-process app, real Redis, no worker)."""

import pytest

from tests.support.http import queued_groups, starlette_test_client

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
SWEEP = {"base": BASE, "grid": {"lr": [0.1, 0.01], "activation": ["relu", "tanh"]}}


def tasks(redis_client):
    """The run id lists queued for fair dispatch (one token each), in the order sent."""
    return queued_groups(redis_client)


def groups(client, sweep):
    """Each run's fused_group as GET /v1/runs/{id} shows it, in sweep order."""
    return [client.get(f"/v1/runs/{r}").json()["fused_group"] for r in sweep["run_ids"]]


def test_a_compatible_sweep_is_one_task_sharing_a_group_while_queued(client, redis_client):
    sweep = client.post("/v1/sweeps", json=SWEEP).json()
    assert tasks(redis_client) == [sweep["run_ids"]]
    shared = groups(client, sweep)
    assert shared[0].startswith("g-") and shared == [shared[0]] * 4
    listed = client.get("/v1/runs", params={"sweep_id": sweep["id"]}).json()["data"]
    assert {r["fused_group"] for r in listed} == {shared[0]}
    assert {r["status"] for r in listed} == {"queued"}


def test_fuse_false_sends_one_task_per_run_without_a_group(client, redis_client):
    sweep = client.post("/v1/sweeps", json={**SWEEP, "fuse": False}).json()
    assert tasks(redis_client) == [[run_id] for run_id in sweep["run_ids"]]
    assert groups(client, sweep) == [None] * 4


def test_a_single_run_has_no_group(client, redis_client):
    run = client.post("/v1/runs", json=BASE).json()
    assert run["fused_group"] is None and tasks(redis_client) == [[run["id"]]]


def test_two_hidden_sizes_make_two_groups_in_sweep_order(client, redis_client):
    grid = {"lr": [0.1, 0.01], "hidden": [[16], [32]]}  # runs: 16, 32, 16, 32
    sweep = client.post("/v1/sweeps", json={"base": BASE, "grid": grid}).json()
    ids = sweep["run_ids"]
    assert tasks(redis_client) == [[ids[0], ids[2]], [ids[1], ids[3]]]
    got = groups(client, sweep)
    assert got[0] == got[2] and got[1] == got[3] and got[0] != got[1]
    assert None not in got


def test_a_group_over_max_fused_models_is_cut_into_chunks(api_settings, redis_client):
    from api.main import create_app

    settings = api_settings.model_copy(update={"max_fused_models": 3})
    with starlette_test_client()(create_app(settings)) as client:
        sweep = client.post("/v1/sweeps", json={"base": BASE, "grid": {"seed": [0, 1, 2, 3]}})
        sweep = sweep.json()
        got = groups(client, sweep)
    ids = sweep["run_ids"]
    assert tasks(redis_client) == [ids[:3], ids[3:]]
    assert got[0] == got[1] == got[2] is not None and got[3] is None  # a chunk of one: alone


@pytest.mark.parametrize("value", ["0", "x"])
def test_max_fused_models_must_be_a_positive_int(monkeypatch, value):
    from pydantic import ValidationError

    from api.settings import ApiSettings

    monkeypatch.setenv("MLPLAB_MAX_FUSED_MODELS", value)
    with pytest.raises(ValidationError):
        ApiSettings()
