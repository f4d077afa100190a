"""Fusion across sweeps and users in the scheduler's Lua, against the real Redis: a popped
group takes on the same-shaped groups fair share would serve next, never one out of turn,
never past a running cap or the size bound; reaped and released per owner."""

import pytest

from runstore.fairqueue import fusion_key_text
from tests.support.redis_db import TEST_PREFIX

SMALL = {"dataset": "synthetic", "hidden": [8], "epochs": 1}
WIDE = {"dataset": "synthetic", "hidden": [16], "epochs": 1}


@pytest.fixture
def fair(redis_client):
    from runstore.fairqueue import FairQueue

    return FairQueue(redis_client, prefix=TEST_PREFIX)


def submit(store, fair, owner, spec=SMALL):
    """One single run of `owner`, queued as its own group the way the API queues it."""
    run_id = store.create_run(owner=owner, spec=spec)["id"]
    fair.enqueue_runs([run_id])
    return run_id


def test_single_runs_of_two_users_train_as_one_group_in_fair_order(store, fair):
    a1, a2 = submit(store, fair, "ann"), submit(store, fair, "ann")
    b1 = submit(store, fair, "bob")
    popped = fair.pop(claim="c", claim_ttl_s=60, max_models=8)
    assert list(popped.run_ids) == [a1, b1, a2]  # ann, then bob (behind now), then ann
    assert popped.owner == "ann"
    assert fair.running("ann") == {a1, a2} and fair.running("bob") == {b1}
    assert fair.pop(claim="d", claim_ttl_s=60, max_models=8).state == "empty"


def test_a_group_of_another_shape_next_in_turn_stops_the_growth(store, fair):
    a1 = submit(store, fair, "ann")
    b1 = submit(store, fair, "bob", WIDE)  # bob is next in fair order: nobody jumps him
    a2 = submit(store, fair, "ann")
    pops = [fair.pop(claim=f"c{i}", claim_ttl_s=60, max_models=8).run_ids for i in range(3)]
    assert pops == [(a1,), (b1,), (a2,)]


def test_growth_stops_at_the_size_bound_and_at_one(store, fair):
    ids = [submit(store, fair, "ann") for _ in range(5)]
    assert fair.pop(claim="c", claim_ttl_s=60, max_models=3).run_ids == tuple(ids[:3])
    assert fair.pop(claim="d", claim_ttl_s=60).run_ids == (ids[3],)  # default 1: no growth


def test_a_running_cap_is_never_exceeded_by_growth(store, fair, users):
    users.add(name="ann")
    users.update("ann", limits={"max_running": 1})
    a1, a2 = submit(store, fair, "ann"), submit(store, fair, "ann")
    b1 = submit(store, fair, "bob")
    popped = fair.pop(claim="c", claim_ttl_s=60, max_models=8)
    assert list(popped.run_ids) == [a1, b1]  # a2 would be ann's second running run
    fair.release(claim="c")
    assert fair.pop(claim="d", claim_ttl_s=60, max_models=8).run_ids == (a2,)


def test_a_sweep_that_asks_not_to_fuse_never_fuses_across(store, fair):
    _, runs = store.create_sweep(
        owner="ann",
        spec={"fuse": False, "base": SMALL},
        metric="final_train_loss",
        mode="min",
        configs=[({}, SMALL)],
    )
    alone = runs[0]["id"]
    fair.enqueue_runs([alone])
    b1 = submit(store, fair, "bob")
    assert fair.pop(claim="c", claim_ttl_s=60, max_models=8).run_ids == (alone,)
    assert fair.pop(claim="d", claim_ttl_s=60, max_models=8).run_ids == (b1,)


def test_release_and_reap_treat_each_owner_part_alone(store, fair, redis_client):
    a1, b1 = submit(store, fair, "ann"), submit(store, fair, "bob")
    popped = fair.pop(claim="c", claim_ttl_s=60, max_models=8)
    assert set(popped.run_ids) == {a1, b1}
    store.leases.hold_claim(claim="c", ttl_s=-1)  # its worker vanished before starting them
    store.leases.reap()
    assert fair.pending("ann") == [[a1]] and fair.pending("bob") == [[b1]]
    assert fair.running("ann") == set() and fair.running("bob") == set()


def test_the_key_is_the_spec_fusion_key():
    assert fusion_key_text(SMALL) == fusion_key_text({**SMALL, "lr": 0.5, "seed": 3})
    assert fusion_key_text(SMALL) != fusion_key_text(WIDE)
    assert fusion_key_text(SMALL) != fusion_key_text({**SMALL, "val_fraction": 0.1})
