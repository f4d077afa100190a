"""POST /v1/sweeps?dry_run=true: the sweep checked as a submission is, nothing written, its
fused groups, cost and a time estimate from the speed live workers advertise."""

from lab.dryrun import seconds
from mlpcore.catalog import parameter_count
from tests.support.redis_db import TEST_PREFIX, prefix_keys

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 4, "train_subset": 1000}
SWEEP = {"base": BASE, "grid": {"activation": ["relu", "tanh"], "lr": [0.1, 0.01, 0.001]}}


def plan(client, body=SWEEP):
    return client.post("/v1/sweeps", params={"dry_run": "true"}, json=body)


def test_a_dry_run_plans_groups_and_cost_and_writes_nothing(client, redis_client):
    before = sorted(prefix_keys(redis_client, TEST_PREFIX))
    response = plan(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True and body["runs"] == body["runs_at_most"] == 6
    (group,) = body["groups"]
    assert group["runs"] == 6 and group["fused"] and group["shape"]["hidden"] == [16]
    assert group["configurations"][0] == {"activation": "relu", "lr": 0.1}
    assert body["model_epochs"] == body["trained_model_epochs"] == 6 * 4
    assert body["param_samples"] == 6 * 4 * 1000 * parameter_count(dataset="synthetic", hidden=[16])
    assert body["estimate_s"] is None and "measured" in body["estimate_reason"]
    assert sorted(prefix_keys(redis_client, TEST_PREFIX)) == before


def test_runs_that_differ_in_their_schedule_cost_their_shared_epochs_once(client):
    # StepLR at 2, 3 and 4 of 4 epochs: one trajectory for 2 epochs, then 2 branches for 1,
    # and step 4 never drops its lr (it trains as step 5 would: the same 4 epochs)
    grid = {"step_size": [2, 3, 4, 5], "lr": [0.1, 0.01]}
    body = plan(client, {**SWEEP, "grid": grid}).json()
    assert body["model_epochs"] == 8 * 4
    assert body["trained_model_epochs"] == 2 * (4 + 2 + 1 + 0)
    per_run = body["param_samples"] / body["trained_model_epochs"]
    assert per_run == 1000 * parameter_count(dataset="synthetic", hidden=[16])


def test_runs_of_other_epochs_fuse_and_train_their_common_epochs_once(client):
    body = plan(client, {**SWEEP, "grid": {"epochs": [2, 4, 8]}}).json()
    (group,) = body["groups"]
    assert group["runs"] == 3 and "epochs" not in group["shape"]
    assert (body["model_epochs"], body["trained_model_epochs"]) == (14, 8)


def test_other_shapes_split_the_groups_and_repeats_count(client):
    body = {**SWEEP, "grid": {"hidden": [[16], [32]], "lr": [0.1, 0.01]}, "repeats": 2}
    groups = plan(client, body).json()["groups"]
    assert sorted((g["shape"]["hidden"], g["runs"]) for g in groups) == [([16], 4), ([32], 4)]


def test_the_estimate_divides_the_cost_by_the_measured_speeds(client, store):
    info = {"device": "cpu", "devices": ["cpu"], "datasets": ["synthetic"]}
    store.heartbeat(hostname="fast@a", info={**info, "speed": {"cpu": 2e8}}, ttl_s=60)
    store.heartbeat(hostname="slow@b", info={**info, "speed": {"cpu": 5e7}}, ttl_s=60)
    store.heartbeat(hostname="new@c", info={**info, "speed": {}}, ttl_s=60)
    body = plan(client).json()
    assert body["workers_measured"] == 2 and body["speed"] == 2e8
    assert body["estimate_s"] == seconds(body["param_samples"] / 2e8)
    assert body["estimate_parallel_s"] == seconds(body["param_samples"] / 2e8)  # one group
    split = plan(client, {**SWEEP, "fuse": False}).json()  # six groups over both workers
    assert split["estimate_parallel_s"] == seconds(split["param_samples"] / 2.5e8)


def test_a_bad_sweep_is_refused_the_same_way(client):
    bad = plan(client, {**SWEEP, "base": {**BASE, "epochs": 10_000}})
    assert bad.status_code == 422 and "max_epochs" in bad.json()["detail"]
    assert plan(client, {**SWEEP, "metric": "best_val_loss"}).status_code == 422
