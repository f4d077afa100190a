"""Learned sweeps (tpe, gp, cmaes, qmc) through the API in-process (real Redis and broker, no
worker): the first batch at submission, each next batch asked once the batch before ended,
the same suggestions from the same finished results, pruned runs told as pruned, 422s."""

import json

import pytest

from lab import stages as lab_stages
from lab import studies
from lab.queue import TaskQueue, create_celery
from tests.support.redis_db import UNIT_REDIS_URL

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
SPACE = {
    "activation": {"choice": ["relu", "tanh", "sigmoid"]},
    "lr": {"loguniform": [1e-4, 1e-1]},
    "step_size": {"int": [2, 40]},
    "hidden": [[16], [32, 16]],
}


def learned(strategy="tpe", **extra):
    return {"strategy": strategy, "base": BASE, "space": SPACE, "n": 6, "batch": 3, **extra}


@pytest.fixture
def queue(redis_client):
    task_queue = TaskQueue(create_celery(UNIT_REDIS_URL, visibility_timeout_s=3600))
    yield task_queue
    task_queue.close()


def finish_batch(client, store, run_ids, *, early=()):
    """End the runs as a worker records them: the loss from lr, early-stopped where asked."""
    for run_id in run_ids:
        run = client.get(f"/v1/runs/{run_id}").json()
        loss = abs(run["varied"]["lr"] - 0.01) + run["varied"]["step_size"] / 1000
        status = "stopped_early" if run_id in early else "succeeded"
        store.finish_run(run_id=run_id, status=status, result={"final_train_loss": loss})


def advance(store, queue, sweep_id, *, torch_ok=True):
    return lab_stages.advance_sweep(
        sweep_id, store=store, queue=queue, max_models=64, torch_ok=torch_ok
    )


def batch_varied(client, sweep, number):
    """The varied values of batch `number` (1-based) of the sweep."""
    body = client.get(f"/v1/sweeps/{sweep}").json()
    per = body["spec"]["batch"]
    ids = body["run_ids"][(number - 1) * per : number * per]
    return [client.get(f"/v1/runs/{r}").json()["varied"] for r in ids]


@pytest.mark.parametrize("strategy", ["tpe", "gp", "cmaes", "qmc"])
def test_a_learned_sweep_asks_its_first_batch_at_submission(client, strategy):
    response = client.post("/v1/sweeps", json=learned(strategy))
    assert response.status_code == 202, response.text
    body = response.json()
    assert len(body["run_ids"]) == 3 and body["varied"] == list(SPACE)
    assert body["stages"] is None and not body["done"]
    assert body["search"]["batches"] == 2 and body["search"]["batches_done"] == 0
    assert body["search"]["sampler"] == strategy
    assert "then " + strategy + " suggests batch 2" in body["search"]["next"]
    for run_id in body["run_ids"]:
        varied = client.get(f"/v1/runs/{run_id}").json()["varied"]
        assert varied["activation"] in ("relu", "tanh", "sigmoid")
        assert 1e-4 <= varied["lr"] <= 1e-1 and 2 <= varied["step_size"] <= 40
        assert isinstance(varied["step_size"], int) and varied["hidden"] in ([16], [32, 16])


def test_the_next_batch_comes_once_the_batch_ends_and_the_search_finishes(client, store, queue):
    sweep = client.post("/v1/sweeps", json=learned()).json()
    finish_batch(client, store, sweep["run_ids"][:2])
    assert advance(store, queue, sweep["id"]) == 0  # one run still going
    finish_batch(client, store, sweep["run_ids"][2:])
    assert advance(store, queue, sweep["id"]) == 1
    assert advance(store, queue, sweep["id"]) == 0  # exactly once
    body = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert len(body["run_ids"]) == 6 and body["search"]["batches_done"] == 1
    assert "batch 2 of 2 (the last)" in body["search"]["next"]
    finish_batch(client, store, body["run_ids"][3:])
    assert advance(store, queue, sweep["id"]) == 1
    body = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert body["done"] and body["search"]["next"] is None and len(body["run_ids"]) == 6
    assert body["search"]["trials"] == {"complete": 6, "pruned": 0, "failed": 0, "running": 0}
    assert body["best"] is not None


def test_the_same_finished_results_ask_the_same_suggestions(client, store, queue):
    one = client.post("/v1/sweeps", json=learned(seed=7)).json()
    two = client.post("/v1/sweeps", json=learned(seed=7)).json()
    assert batch_varied(client, one["id"], 1) == batch_varied(client, two["id"], 1)
    for sweep in (one, two):
        finish_batch(client, store, sweep["run_ids"])
        assert advance(store, queue, sweep["id"]) == 1
    assert batch_varied(client, one["id"], 2) == batch_varied(client, two["id"], 2)
    other = client.post("/v1/sweeps", json=learned(seed=8)).json()
    assert batch_varied(client, other["id"], 1) != batch_varied(client, one["id"], 1)


def test_early_stopped_runs_are_told_as_pruned(client, store):
    sweep = client.post("/v1/sweeps", json=learned()).json()
    finish_batch(client, store, sweep["run_ids"], early=sweep["run_ids"][:1])
    runs = store.get_runs(sweep["run_ids"], epochs=False)
    dists = {f: studies.distribution(a) for f, a in _axes().items()}
    trials = studies.to_trials(runs, _axes(), dists, metric="final_train_loss", mode="min")
    assert [t.state.name for t in trials] == ["PRUNED", "COMPLETE", "COMPLETE"]
    body = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert body["search"]["trials"]["pruned"] == 1


def _axes():
    from mlpcore.sweep import SweepSpec

    return SweepSpec(**learned()).space


def test_a_gp_batch_past_its_startup_is_sent_to_a_worker_from_the_api(client, store, queue):
    from tests.support.http import queued_task_messages

    sweep = client.post("/v1/sweeps", json=learned("gp", n=13, batch=10)).json()
    finish_batch(client, store, sweep["run_ids"])
    assert advance(store, queue, sweep["id"], torch_ok=False) == 0  # the API may not fit a GP
    assert ("mlplab.advance_sweep", [sweep["id"]]) in queued_task_messages(store.client)
    assert advance(store, queue, sweep["id"], torch_ok=True) == 1  # what the worker's task does
    assert len(client.get(f"/v1/sweeps/{sweep['id']}").json()["run_ids"]) == 13


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"strategy": "bayes"}, "strategy"),
        ({"space": {}}, "space"),
        ({"n": 17}, "n"),
        ({"batch": 7}, "batch"),
        ({"space": {"lr": {"uniform": [0.1, 0.01]}}}, "space.lr"),
        ({"space": {"lr": {"int": [1, 2, 3]}}}, "space.lr"),
    ],
)
def test_bad_learned_sweeps_are_422_naming_the_field(client, redis_client, change, field):
    before = redis_client.dbsize()
    response = client.post("/v1/sweeps", json={**learned(), **change})
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert redis_client.dbsize() == before


def test_the_repair_pass_asks_a_batch_that_ended_unnoticed_once(client, store, queue):
    """The worker died between recording the batch's last run and asking the next batch:
    the repair pass (racing itself, as several API processes would) asks it exactly once."""
    import threading

    from lab import repair

    sweep = client.post("/v1/sweeps", json=learned()).json()
    finish_batch(client, store, sweep["run_ids"])  # nobody advanced it
    barrier, done = threading.Barrier(4, timeout=60), []

    def racer():
        barrier.wait()
        done.append(repair.repair_stages(store, queue, max_models=64))

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(d) for d in done) == [0, 0, 0, 1]
    body = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert len(body["run_ids"]) == 6 and body["search"]["batches_done"] == 1
    assert [r["status"] for r in store.get_runs(body["run_ids"][3:], epochs=False)] == [
        "queued"
    ] * 3


def test_cancelling_a_learned_sweep_asks_no_further_batch(client, store, queue):
    sweep = client.post("/v1/sweeps", json=learned()).json()
    assert client.delete(f"/v1/sweeps/{sweep['id']}").status_code == 202
    assert advance(store, queue, sweep["id"]) == 0
    body = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert body["done"] and len(body["run_ids"]) == 3 and body["search"]["next"] is None


def test_a_dry_run_of_a_learned_sweep_shows_its_first_batch_and_writes_nothing(
    client, redis_client
):
    before = redis_client.dbsize()
    response = client.post("/v1/sweeps", params={"dry_run": "true"}, json=learned())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["runs"] == 3 and body["runs_at_most"] == 6
    assert redis_client.dbsize() == before


def test_extend_asks_more_of_a_finished_search_in_batches_of_its_size(client, store, queue):
    sweep = client.post("/v1/sweeps", json=learned()).json()
    finish_batch(client, store, sweep["run_ids"])
    advance(store, queue, sweep["id"])
    first = client.get(f"/v1/sweeps/{sweep['id']}").json()
    finish_batch(client, store, first["run_ids"][3:])
    advance(store, queue, sweep["id"])
    assert client.get(f"/v1/sweeps/{sweep['id']}").json()["done"]
    response = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"n": 4})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["count"] == 3 and not body["sweep"]["done"]  # batch 3 asked at once
    assert body["sweep"]["spec"]["n"] == 10
    assert "batch 3 of 4 is training" in body["sweep"]["search"]["next"]
    assert advance(store, queue, sweep["id"]) == 0  # batch 3 still to end
    finish_batch(client, store, body["run_ids"])
    assert advance(store, queue, sweep["id"]) == 1
    view = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert len(view["run_ids"]) == 10 and not view["done"]
    finish_batch(client, store, view["run_ids"][9:])
    advance(store, queue, sweep["id"])
    view = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert view["done"] and view["search"]["trials"]["complete"] == 10
    assert len({json.dumps(r["varied"], sort_keys=True) for r in view_runs(client, view)}) == 10


def test_extend_adds_batches_to_a_running_search_and_refuses_past_the_limits(client, store):
    sweep = client.post("/v1/sweeps", json=learned()).json()
    response = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"n": 3})
    assert response.status_code == 202 and response.json()["count"] == 0  # asked as batches end
    assert response.json()["sweep"]["search"]["batches_done"] == 0
    too_many = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"n": 8})
    assert too_many.status_code == 422 and "max_runs_per_sweep" in too_many.json()["detail"]
    assert client.delete(f"/v1/sweeps/{sweep['id']}").status_code == 202
    cancelled = client.post(f"/v1/sweeps/{sweep['id']}/extend", json={"n": 1})
    assert cancelled.status_code == 409 and "cancelled" in cancelled.json()["detail"]
    assert client.get(f"/v1/sweeps/{sweep['id']}").json()["spec"]["n"] == 9


def view_runs(client, view):
    return [client.get(f"/v1/runs/{r}").json() for r in view["run_ids"]]
