"""The train_next token task's body against the real Redis (training stubbed by a callable)."""

from contextlib import nullcontext

import pytest

from lab.fairshare import train_next
from runstore.fairqueue import FairQueue
from tests.support.redis_db import TEST_PREFIX

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 1}


def take(store, claim, trained, tokens):
    return train_next(
        claim=claim,
        store=store,
        train=lambda ids: trained.append(ids) or {},
        send_token=lambda: tokens.append(1),
        visibility_timeout_s=60,
        hold_claim=lambda claim: nullcontext(),
    )


def test_a_token_trains_the_picked_group_then_hands_back_parked_tokens(store, users):
    fair = FairQueue(store.client, prefix=TEST_PREFIX)
    users.add(name="ann")
    users.update("ann", limits={"max_running": 1})
    ids = [store.create_run(owner="ann", spec=SPEC)["id"] for _ in range(2)]
    fair.enqueue(owner="ann", groups=[[ids[0]], [ids[1]]])
    fair.pop(claim="first", claim_ttl_s=60)  # ann's first run is out: the next token parks
    trained, tokens = [], []
    assert take(store, "second", trained, tokens) == {"dispatched": False, "state": "parked"}
    assert take(store, "first", trained, tokens)["owner"] == "ann"  # redelivered: resumes
    assert trained == [[ids[0]]] and tokens == [1]  # its end re-sent the parked token
    assert store.client.get(f"{TEST_PREFIX}:fair:parked") is None
    assert take(store, "third", trained, tokens)["dispatched"] and trained[-1] == [ids[1]]
    assert take(store, "fourth", trained, tokens) == {"dispatched": False, "state": "empty"}


def test_a_failing_group_still_releases_its_claim(store):
    fair = FairQueue(store.client, prefix=TEST_PREFIX)
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    fair.enqueue(owner="ann", groups=[[run_id]])

    def boom(ids):
        raise RuntimeError("no GPU")

    with pytest.raises(RuntimeError):
        train_next(
            claim="c",
            store=store,
            train=boom,
            send_token=lambda: None,
            visibility_timeout_s=60,
            hold_claim=lambda claim: nullcontext(),
        )
    assert fair.running("ann") == set()
    assert store.client.get(f"{TEST_PREFIX}:fair:claim:c") is None


def test_both_task_names_are_registered_with_late_acks():
    import worker.tasks  # noqa: F401 - registers the tasks
    from lab.queue import TRAIN_GROUP, TRAIN_NEXT
    from worker.celery_app import app

    assert app.tasks[TRAIN_NEXT].acks_late and app.tasks[TRAIN_GROUP].acks_late
