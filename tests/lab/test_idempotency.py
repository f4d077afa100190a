"""Idempotency-Key on POST /v1/runs and /v1/sweeps: the same key from the same user answers
the first submission, never a second one (in-process app, real Redis, no worker)."""

import threading

import pytest

from tests.support.http import bearer, starlette_test_client
from tests.support.redis_db import TEST_PREFIX

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
SWEEP = {"base": SPEC, "grid": {"lr": [0.1, 0.01, 0.001]}}


def key(name):
    return {"Idempotency-Key": name}


def test_the_same_key_twice_is_one_run_with_the_same_answer(client, store):
    first = client.post("/v1/runs", json=SPEC, headers=key("k-1"))
    again = client.post("/v1/runs", json=SPEC, headers=key("k-1"))
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json().keys() == first.json().keys()  # the record as it is now
    assert store.owner_run_ids(owner="local") == [first.json()["id"]]
    other = client.post("/v1/runs", json=SPEC, headers=key("k-2"))  # a new key: a new run
    assert other.json()["id"] != first.json()["id"]
    plain = [client.post("/v1/runs", json=SPEC).json()["id"] for _ in range(2)]  # no key
    assert len(set(plain)) == 2 and len(store.owner_run_ids(owner="local")) == 4


def test_a_replay_shows_the_record_as_it_is_now(client, store):
    run = client.post("/v1/runs", json=SPEC, headers=key("k")).json()
    store.mark_running(run_id=run["id"], worker="w", device="cpu")
    again = client.post("/v1/runs", json=SPEC, headers=key("k")).json()
    assert again["id"] == run["id"] and again["status"] == "running"


def test_the_same_key_twice_is_one_sweep(client, store):
    first = client.post("/v1/sweeps", json=SWEEP, headers=key("s-1"))
    again = client.post("/v1/sweeps", json=SWEEP, headers=key("s-1"))
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["run_ids"] == first.json()["run_ids"]
    assert again.json().keys() == first.json().keys()
    assert len(store.client.zrange(f"{TEST_PREFIX}:owner:local:sweeps", 0, -1)) == 1
    assert len(store.owner_run_ids(owner="local")) == 3


def test_a_key_reused_for_another_body_or_kind_is_refused(client, store):
    run = client.post("/v1/runs", json=SPEC, headers=key("k")).json()
    changed = client.post("/v1/runs", json={**SPEC, "lr": 0.5}, headers=key("k"))
    assert changed.status_code == 409
    assert "Idempotency-Key" in changed.json()["detail"]
    assert "different" in changed.json()["detail"]
    as_sweep = client.post("/v1/sweeps", json=SWEEP, headers=key("k"))
    assert as_sweep.status_code == 409
    assert store.owner_run_ids(owner="local") == [run["id"]]


def test_different_users_with_the_same_key_are_independent(auth_client, users, store):
    ann, bob = (bearer(users.add(name=n)[1]) for n in ("ann", "bob"))
    mine = auth_client.post("/v1/runs", json=SPEC, headers={**ann, **key("same")})
    theirs = auth_client.post("/v1/runs", json={**SPEC, "lr": 0.5}, headers={**bob, **key("same")})
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"] and theirs.json()["owner"] == "bob"
    assert store.owner_run_ids(owner="ann") == [mine.json()["id"]]
    assert store.owner_run_ids(owner="bob") == [theirs.json()["id"]]


def test_a_refused_submission_leaves_the_key_free(auth_client, users, store):
    ann = bearer(users.add(name="ann")[1])
    users.update("ann", limits={"max_queued": 1})
    auth_client.post("/v1/runs", json=SPEC, headers=ann)
    refused = auth_client.post("/v1/runs", json=SPEC, headers={**ann, **key("later")})
    assert refused.status_code == 429
    users.update("ann", limits={"max_queued": 2})
    retried = auth_client.post("/v1/runs", json=SPEC, headers={**ann, **key("later")})
    assert retried.status_code == 202 and len(store.owner_run_ids(owner="ann")) == 2


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there"])
def test_a_malformed_key_is_a_422(client, bad, store):
    response = client.post("/v1/runs", json=SPEC, headers=key(bad))
    assert response.status_code == 422 and "idempotency-key" in response.json()["detail"]
    assert store.owner_run_ids(owner="local") == []


def test_a_key_whose_first_submission_is_still_being_written_is_a_409(
    api_settings, redis_client, store
):
    """A claim that stays pending (another request holds it, writing): the duplicate waits
    idempotency_wait_s for its id, then is told so, and creates nothing."""
    from api.main import create_app
    from lab import idempotency
    from mlpcore.spec import RunSpec

    body = RunSpec(**SPEC).model_dump(mode="json")
    held = idempotency.claim(store=store, owner="local", key="busy", kind="run", body=body)
    assert held.first_id is None  # this one is ours, and never completes
    settings = api_settings.model_copy(update={"idempotency_wait_s": 0.2})
    with starlette_test_client()(create_app(settings)) as client:
        response = client.post("/v1/runs", json=SPEC, headers=key("busy"))
    assert response.status_code == 409 and "in progress" in response.json()["detail"]
    assert store.owner_run_ids(owner="local") == []


def test_concurrent_duplicates_make_one_submission(client, store):
    """8 POSTs with one key, released together by a barrier: one run; every 202 is it."""
    barrier, answers = threading.Barrier(8), []

    def post() -> None:
        barrier.wait()
        answers.append(client.post("/v1/sweeps", json=SWEEP, headers=key("race")))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(store.client.zrange(f"{TEST_PREFIX}:owner:local:sweeps", 0, -1)) == 1
    accepted = [a.json()["id"] for a in answers if a.status_code == 202]
    assert accepted and len(set(accepted)) == 1
    assert all(a.status_code in (202, 409) for a in answers)
    assert len(store.owner_run_ids(owner="local")) == 3
