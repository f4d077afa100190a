"""The max_param_epochs budget in the quota's lease: parameters x epochs of a user's queued and
running runs, checked in the same Lua step as max_queued, against the real Redis."""

import threading

import pytest

from mlpcore.catalog import param_epochs
from mlpcore.spec import RunSpec
from runstore.quota import BudgetFull, Quota, QuotaFull
from tests.support.redis_db import TEST_PREFIX

SPEC = RunSpec(dataset="synthetic", hidden=[8], epochs=2).model_dump(mode="json")
COST = param_epochs(dataset="synthetic", hidden=[8], epochs=2)  # (32*8+8 + 8*4+4) * 2 = 600


@pytest.fixture
def quota(redis_client):
    return Quota(redis_client, prefix=TEST_PREFIX)


def spec(**fields):
    return RunSpec(**{**SPEC, **fields}).model_dump(mode="json")


def test_the_budget_counts_parameters_times_epochs_of_unfinished_runs(store, quota):
    specs = [
        spec(),
        spec(dataset="digits", hidden=[16, 8], epochs=3),
        spec(dataset="mnist", hidden=[], epochs=1),
        spec(dataset="fashion-mnist", hidden=[512, 256, 128], epochs=10),
    ]
    runs = [store.create_run(owner="ann", spec=s) for s in specs]
    costs = [
        param_epochs(dataset=s["dataset"], hidden=s["hidden"], epochs=s["epochs"]) for s in specs
    ]
    assert costs[0] == COST == 600 and costs[3] == 567_434 * 10  # the study's MLP, 10 epochs
    assert quota.param_epochs(owner="ann") == sum(costs)  # Redis's sum is Python's
    store.mark_running(run_id=runs[0]["id"], worker="w", device="cpu")
    assert quota.param_epochs(owner="ann") == sum(costs)  # running still counts
    store.finish_run(run_id=runs[0]["id"], status="succeeded")
    store.cancel_run(run_id=runs[3]["id"])
    assert quota.param_epochs(owner="ann") == costs[1] + costs[2]  # ended runs give it back
    assert quota.param_epochs(owner="bob") == 0


def test_a_submission_over_the_budget_is_refused_naming_it(store, quota):
    store.create_run(owner="ann", spec=SPEC)
    with pytest.raises(BudgetFull) as refused:
        with quota.lease(owner="ann", runs=1, limit=100, cost=COST + 1, budget=2 * COST):
            pytest.fail("admitted")
    assert isinstance(refused.value, QuotaFull)  # a quota like max_queued: the API's 429
    message = str(refused.value)
    assert "max_param_epochs=1200" in message and "600" in message and "adds 601" in message
    with quota.lease(owner="ann", runs=1, limit=100, cost=COST, budget=2 * COST):
        pass  # exactly at the budget fits
    with pytest.raises(BudgetFull):  # alone over it, whatever else is queued
        with quota.lease(owner="bob", runs=1, limit=100, cost=2 * COST + 1, budget=2 * COST):
            pass


def test_max_queued_is_still_checked_with_a_budget(store, quota):
    store.create_run(owner="ann", spec=SPEC)
    with pytest.raises(QuotaFull) as refused:
        with quota.lease(owner="ann", runs=1, limit=1, cost=1, budget=10**9):
            pass
    assert not isinstance(refused.value, BudgetFull) and "max_queued=1" in str(refused.value)


def test_submissions_in_flight_hold_their_cost(store, quota, redis_client):
    with quota.lease(owner="ann", runs=1, limit=100, cost=COST, budget=COST):
        with pytest.raises(BudgetFull):
            with quota.lease(owner="ann", runs=1, limit=100, cost=1, budget=COST):
                pass
    assert redis_client.get(f"{TEST_PREFIX}:owner:ann:reserved_cost") is None  # released
    with quota.lease(owner="ann", runs=1, limit=100, cost=COST, budget=COST):
        pass


def test_concurrent_submissions_cannot_exceed_the_budget(store, quota):
    """8 threads released together by a barrier, a budget that fits one run: one admitted."""
    threads, barrier = 8, threading.Barrier(8)
    admitted, refused = [], []

    def submit() -> None:
        barrier.wait()
        try:
            with quota.lease(owner="ann", runs=1, limit=100, cost=COST, budget=COST):
                admitted.append(store.create_run(owner="ann", spec=SPEC)["id"])
        except BudgetFull:
            refused.append(True)

    workers = [threading.Thread(target=submit) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert len(admitted) == 1 and len(refused) == threads - 1
    assert quota.param_epochs(owner="ann") == COST
