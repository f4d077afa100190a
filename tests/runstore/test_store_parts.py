"""A store hands out its parts, each on its client and under its key prefix."""

from runstore.fairqueue import FairQueue
from runstore.leases import Leases
from runstore.quota import Quota
from runstore.users import UserStore


def test_the_parts_share_the_store_client_and_keys(store):
    parts = {"leases": Leases, "fair": FairQueue, "quota": Quota, "users": UserStore}
    for name, cls in parts.items():
        part = getattr(store, name)
        assert isinstance(part, cls), name
        assert part.client is store.client and part.keys == store.keys, name


def test_the_parts_work_on_the_store_records(store):
    run = store.create_run(owner="ann", spec={"epochs": 1})
    assert store.fair.enqueue_runs([run["id"]]) == "ann"
    assert store.fair.pending("ann") == [[run["id"]]]
    assert store.fair.has_pending() and store.fair.parked() == 0
    with store.quota.lease(owner="ann", runs=1, limit=2) as count:
        assert count == 1
    assert store.quota.usage(owner="ann") == {"queued": 1, "running": 0, "promised": 0}
    user, _token = store.users.add(name="ann")
    assert store.users.require("ann") == user
