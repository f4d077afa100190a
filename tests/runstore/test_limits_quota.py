"""The max_queued quota's lease: atomic with submission, counts only unfinished runs."""

import threading

import pytest

from runstore import Store
from runstore.quota import Quota, QuotaFull
from tests.support.redis_db import TEST_PREFIX, UNIT_REDIS_URL, connect

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 1}


@pytest.fixture
def quota(redis_client):
    return Quota(redis_client, prefix=TEST_PREFIX)


def test_a_lease_refuses_what_does_not_fit_and_names_the_count(store, quota):
    ids = [store.create_run(owner="ann", spec=SPEC)["id"] for _ in range(3)]
    with pytest.raises(QuotaFull) as refused:
        with quota.lease(owner="ann", runs=2, limit=4):
            pytest.fail("admitted")
    assert refused.value.count == 3 and "max_queued=4" in str(refused.value)
    assert "3 queued or running" in str(refused.value)
    store.cancel_run(run_id=ids[0])  # finished runs stop counting
    with quota.lease(owner="ann", runs=2, limit=4) as before:
        assert before == 2
    assert quota.usage(owner="ann") == {"queued": 2, "running": 0, "promised": 0}
    assert quota.usage(owner="bob") == {"queued": 0, "running": 0, "promised": 0}


def test_two_submissions_in_flight_cannot_both_pass(store, quota, redis_client):
    with quota.lease(owner="ann", runs=3, limit=4):
        with pytest.raises(QuotaFull):
            with quota.lease(owner="ann", runs=2, limit=4):
                pass
        with quota.lease(owner="bob", runs=4, limit=4):  # another user's quota is apart
            pass
    assert redis_client.get(f"{TEST_PREFIX}:owner:ann:reserved") is None  # lease released


def released_together(attempts):
    """Each attempt(client, tried) in a thread of its own on its own connection, all released
    by one barrier; each holds what it got until every racer has tried. Their results."""
    racers = len(attempts)
    start, tried = threading.Barrier(racers, timeout=60), threading.Barrier(racers, timeout=60)
    results: list[object] = []

    def run(attempt):
        client = connect(UNIT_REDIS_URL)
        try:
            start.wait()
            results.append(attempt(client, tried))
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == racers, "a racer raised"
    return results


def lease_and_hold(*, owner, runs, limit, write=False):
    """A racer: take a lease and hold it until every racer has tried (then, with write, record
    its runs in it, as a submission does); True when admitted.

    The runs are written only once every racer has tried: while a submission writes, its
    runs count twice (written, and still leased), which would refuse a racer with room left.
    """

    def attempt(client, tried):
        store = Store(client, prefix=TEST_PREFIX)
        try:
            with store.quota.lease(owner=owner, runs=runs, limit=limit):
                tried.wait()
                for _ in range(runs if write else 0):
                    store.create_run(owner=owner, spec=SPEC)
                return True
        except QuotaFull:
            tried.wait()
            return False

    return attempt


@pytest.mark.parametrize(("racers", "limit"), [(8, 1), (8, 3), (16, 5)])
def test_racing_leases_admit_exactly_the_limit(redis_client, racers, limit):
    for _ in range(3):  # a few rounds, each a fresh race
        attempt = lease_and_hold(owner="ann", runs=1, limit=limit)
        admitted = released_together([attempt] * racers)
        assert admitted.count(True) == limit
        assert redis_client.get(f"{TEST_PREFIX}:owner:ann:reserved") is None  # all released


def test_racing_submissions_that_write_their_runs_never_pass_the_quota(store, quota):
    attempt = lease_and_hold(owner="ann", runs=2, limit=5, write=True)
    assert released_together([attempt] * 8).count(True) == 2  # 2 + 2 fit under 5, 3 x 2 not
    assert quota.usage(owner="ann")["queued"] == 4
    attempt = lease_and_hold(owner="ann", runs=1, limit=5, write=True)
    assert released_together([attempt] * 8).count(True) == 1
    assert quota.usage(owner="ann")["queued"] == 5


def test_racing_users_each_get_their_own_quota(quota):
    bob = lease_and_hold(owner="bob", runs=1, limit=1)
    cat = lease_and_hold(owner="cat", runs=1, limit=2)
    admitted = released_together([bob, cat] * 4)
    assert admitted.count(True) == 1 + 2
