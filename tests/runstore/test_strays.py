"""Leftovers of a half-done submission, against the real Redis: stray queued runs are found
and failed with the reason, nothing else is touched; a queue with no token asks for one."""

import json

import pytest

from runstore import strays
from tests.support.redis_db import TEST_PREFIX

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 1}


@pytest.fixture
def fair(redis_client):
    from runstore.fairqueue import FairQueue

    return FairQueue(redis_client, prefix=TEST_PREFIX)


def test_only_queued_runs_in_no_queue_and_never_dispatched_are_strays(store, fair):
    stray = store.create_run(owner="ann", spec=SPEC)["id"]  # recorded, then cut off
    waiting = store.create_run(owner="ann", spec=SPEC)["id"]
    fused = [store.create_run(owner="bob", spec=SPEC)["id"] for _ in range(2)]
    fair.enqueue_runs([waiting])
    fair.enqueue_runs(fused)
    dispatched = store.create_run(owner="cat", spec=SPEC)["id"]
    fair.enqueue_runs([dispatched])
    assert fair.pop(claim="t1", claim_ttl_s=60).state == "group"  # ann's or bob's or cat's
    started = store.create_run(owner="cat", spec=SPEC)["id"]
    store.finish_run(run_id=started, status="cancelled", error="by hand")
    assert strays.find_strays(store, older_than_s=0) == [stray]


def test_a_young_run_is_left_alone(store):
    store.create_run(owner="ann", spec=SPEC)
    assert strays.find_strays(store, older_than_s=60) == []


def test_strays_fail_once_with_the_reason_and_an_event(store):
    stray = store.create_run(owner="ann", spec=SPEC)["id"]
    assert strays.fail_strays(store, older_than_s=0) == [stray]
    run = store.get_run(stray)
    assert run["status"] == "failed" and run["error"] == strays.STRAY_REASON
    events = store.events(store.keys.run_events(stray))
    assert [json.loads(e.data)["status"] for e in events] == ["queued", "failed"]
    assert strays.fail_strays(store, older_than_s=0) == []


def test_fail_queued_never_touches_a_run_that_started(store):
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    store.finish_run(run_id=run_id, status="succeeded", result={"final_train_loss": 0.1})
    assert not store.fail_queued(run_id=run_id, error="no")
    assert store.get_run(run_id)["status"] == "succeeded"


def test_queued_groups_need_a_token_only_when_none_waits_or_is_parked(store, fair):
    assert not strays.needs_token(store, tokens_waiting=0)  # nothing queued
    fair.enqueue_runs([store.create_run(owner="ann", spec=SPEC)["id"]])
    assert strays.needs_token(store, tokens_waiting=0)
    assert not strays.needs_token(store, tokens_waiting=1)
    store.client.set(store.keys.fair("parked"), 1)
    assert not strays.needs_token(store, tokens_waiting=0)
