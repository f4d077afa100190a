"""The max_queued quota's lease: atomic with submission, counts only unfinished runs."""

import pytest

from runstore.quota import Quota, QuotaFull
from tests.support.redis_db import TEST_PREFIX

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
