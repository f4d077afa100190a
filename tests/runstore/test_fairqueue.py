"""The fair-share scheduler's Lua, against the real Redis: order, priority, caps, claims."""

import pytest

from tests.support.redis_db import TEST_PREFIX

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 1}


@pytest.fixture
def fair(redis_client):
    from runstore.fairqueue import FairQueue

    return FairQueue(redis_client, prefix=TEST_PREFIX)


def queue(store, fair, owner, sizes):
    """Create runs for `owner` and queue them as groups of the given sizes; their id lists."""
    groups = [[store.create_run(owner=owner, spec=SPEC)["id"] for _ in range(n)] for n in sizes]
    fair.enqueue(owner=owner, groups=groups)
    return groups


def owners(fair, pops, prefix="c"):
    """Who got each of `pops` pops (None once nothing is dispatchable)."""
    return [fair.pop(claim=f"{prefix}{i}", claim_ttl_s=60).owner for i in range(pops)]


def test_two_users_alternate_ties_by_name(store, fair):
    queue(store, fair, "ann", [1] * 4)
    queue(store, fair, "bob", [1] * 2)
    assert owners(fair, 7) == ["ann", "bob", "ann", "bob", "ann", "ann", None]


def test_a_newcomer_goes_next_and_idle_time_banks_no_credit(store, fair):
    queue(store, fair, "bob", [1])
    assert owners(fair, 1, "early") == ["bob"]  # bob: virtual time 1, then idle
    queue(store, fair, "ann", [1] * 12)
    assert owners(fair, 9, "a") == ["ann"] * 9  # alone: ann's virtual time 9, the clock 8
    queue(store, fair, "bob", [1] * 3)  # bob starts at the clock, not at 1
    assert owners(fair, 5, "b") == ["bob", "ann", "bob", "ann", "bob"]


def test_priority_weights_the_share(store, fair, users):
    for name, priority in (("hi", 2), ("lo", 1)):
        users.add(name=name)
        users.update(name, priority=priority)
        queue(store, fair, name, [1] * 12)
    got = owners(fair, 9)
    assert got == ["hi", "lo", "hi", "hi", "lo", "hi", "hi", "lo", "hi"]
    assert (got.count("hi"), got.count("lo")) == (6, 3)


def test_a_fused_group_counts_as_its_runs(store, fair):
    group = queue(store, fair, "ann", [4, 1])[0]
    queue(store, fair, "bob", [1] * 5)
    first = fair.pop(claim="c", claim_ttl_s=60)
    assert (first.owner, list(first.run_ids)) == ("ann", group)
    assert owners(fair, 5, "n") == ["bob"] * 4 + ["ann"]  # bob first catches up 4 runs


def test_cancelled_runs_are_skipped_and_dead_groups_dropped(store, fair):
    groups = queue(store, fair, "ann", [1, 3, 1])
    store.cancel_run(run_id=groups[0][0])
    store.cancel_run(run_id=groups[1][1])
    got = fair.pop(claim="c1", claim_ttl_s=60)
    assert list(got.run_ids) == [groups[1][0], groups[1][2]]
    store.cancel_run(run_id=groups[2][0])
    assert fair.pop(claim="c2", claim_ttl_s=60).state == "empty"
    assert fair.pending("ann") == []


def test_a_redelivered_token_resumes_its_claim(store, fair):
    queue(store, fair, "ann", [1, 1])
    first = fair.pop(claim="task-1", claim_ttl_s=60)
    again = fair.pop(claim="task-1", claim_ttl_s=60)
    assert again.state == "claimed" and again.run_ids == first.run_ids
    assert len(fair.pending("ann")) == 1


def test_max_running_parks_tokens_until_a_group_ends(store, fair, users):
    users.add(name="ann")
    users.update("ann", limits={"max_running": 2})
    groups = queue(store, fair, "ann", [3, 1, 1])
    assert fair.pop(claim="c1", claim_ttl_s=60).run_ids == tuple(groups[0])  # nothing ran: fits
    assert fair.pop(claim="c2", claim_ttl_s=60).state == "parked"
    assert fair.pop(claim="c3", claim_ttl_s=60).state == "parked"
    assert fair.pop(claim="c4", claim_ttl_s=60).state == "parked"  # at most one per group
    queue(store, fair, "bob", [1])
    assert fair.pop(claim="c5", claim_ttl_s=60).owner == "bob"  # ann's cap holds only ann
    assert fair.release(claim="c1") == 2 and fair.running("ann") == set()
    fair.unparked(2)
    assert fair.pop(claim="c6", claim_ttl_s=60).run_ids == tuple(groups[1])
    assert fair.pop(claim="c7", claim_ttl_s=60).run_ids == tuple(groups[2])  # 2 running: ok
    assert fair.release(claim="c6") == 0


def test_the_cap_recorded_at_submission_applies_and_finished_runs_free_it(store, fair):
    fair.set_cap(owner="ann", cap=1)
    groups = queue(store, fair, "ann", [1, 1])
    assert fair.pop(claim="c1", claim_ttl_s=60).owner == "ann"
    assert fair.pop(claim="c2", claim_ttl_s=60).state == "parked"
    store.mark_running(run_id=groups[0][0], worker="w", device="cpu")
    store.finish_run(run_id=groups[0][0], status="succeeded")
    assert fair.pop(claim="c3", claim_ttl_s=60).run_ids == tuple(groups[1])  # pruned, no release


def test_queue_positions_follow_the_scheduler(store, fair, users):
    users.add(name="hi")
    users.update("hi", priority=2)
    queue(store, fair, "ann", [1, 2, 1])
    queue(store, fair, "hi", [1, 1, 1])
    cancelled = queue(store, fair, "bob", [1, 1])[0][0]
    store.cancel_run(run_id=cancelled)
    positions = fair.positions()
    assert cancelled not in positions and sorted(set(positions.values()))[0] == 0
    dispatched, actual = 0, {}
    while (got := fair.pop(claim=f"p{dispatched}", claim_ttl_s=60)).owner:
        actual.update(dict.fromkeys(got.run_ids, dispatched))
        dispatched += len(got.run_ids)
    assert actual == positions and dispatched == 8
