"""Leases on running runs against the real Redis: holders, takeover, reaping, hand-back, stats."""

from __future__ import annotations

import json

import pytest

from runstore import LeaseLost
from runstore.fairqueue import FairQueue
from tests.support.runs import metrics

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 3}


def start(store, run_id, holder, *, lease_s=60.0, checkpoint=None, claim=None):
    return store.mark_running(
        run_id=run_id,
        worker=f"{holder}@host",
        device="cpu",
        holder=holder,
        lease_s=lease_s,
        checkpoint=checkpoint,
        fused_group=checkpoint,
        claim=claim,
    )


def expire(store, *run_ids):
    """Let the leases run out (as if their worker stopped renewing them)."""
    store.client.zadd(store.keys.leases(), dict.fromkeys(run_ids, 0))


def statuses(store, run_id):
    return [
        json.loads(e.data)["status"]
        for e in store.events(store.keys.run_events(run_id))
        if e.type == "status"
    ]


def test_a_live_lease_keeps_other_holders_out(store):
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    assert start(store, run_id, "a") == "running"
    assert start(store, run_id, "b") == "held"
    assert start(store, run_id, "a") == "running"  # its own holder may re-acquire
    first_start = store.get_run(run_id)["started_at"]
    expire(store, run_id)
    assert start(store, run_id, "b") == "running"  # a lapsed lease is taken over
    run = store.get_run(run_id)
    assert run["worker"] == "b@host" and run["started_at"] == first_start


def test_a_holder_that_lost_its_lease_writes_nothing(store):
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    start(store, run_id, "a")
    assert store.append_epoch(run_id=run_id, metrics=metrics(1), holder="a")
    expire(store, run_id)
    start(store, run_id, "b")
    with pytest.raises(LeaseLost):
        store.append_epoch(run_id=run_id, metrics=metrics(2), holder="a")
    assert not store.finish_run(run_id=run_id, status="succeeded", holder="a")
    assert store.leases.renew(holder="a", run_ids=[run_id], ttl_s=10) == [run_id]
    assert store.leases.renew(holder="b", run_ids=[run_id], ttl_s=10) == []
    run = store.get_run(run_id)
    assert run["status"] == "running" and [e["epoch"] for e in run["epochs"]] == [1]
    assert store.append_epoch(run_id=run_id, metrics=metrics(2), holder="b")
    assert store.finish_run(run_id=run_id, status="succeeded", holder="b")
    assert store.leases.expiry(run_id) is None  # an ended run holds no lease


def test_reap_requeues_runs_whose_lease_expired_as_their_groups(store):
    fair = FairQueue(store.client, prefix=store.keys.prefix)
    ids = [store.create_run(owner="ann", spec=SPEC)["id"] for _ in range(4)]
    fair.enqueue(owner="ann", groups=[ids[:2], [ids[2]], [ids[3]]])
    popped = fair.pop(claim="token-1", claim_ttl_s=600)
    assert popped.run_ids == tuple(ids[:2])
    store.leases.hold_claim(claim="token-1", ttl_s=60)
    for run_id in ids[:2]:
        start(store, run_id, "dead", checkpoint="g-1", claim="token-1")
        store.append_epoch(run_id=run_id, metrics=metrics(1), holder="dead")
    start(store, ids[2], "dead")
    start(store, ids[3], "alive")
    expire(store, *ids[:3])
    store.client.zadd(store.keys.fair("claims"), {"token-1": 0})

    reaped = store.leases.reap()

    assert reaped.groups == 2 and sorted(reaped.run_ids) == sorted(ids[:3])
    for run_id in ids[:3]:
        run = store.get_run(run_id)
        assert run["status"] == "queued" and run["requeues"] == 1
        assert statuses(store, run_id)[-2:] == ["running", "queued"]
    assert store.get_run(ids[0])["epochs"][0]["epoch"] == 1  # its epochs stay
    assert store.get_run(ids[3])["status"] == "running"
    # back at the front of the queue, the claim ended, nothing counted as running
    front = [sorted(group) for group in fair.pending("ann")[:2]]
    assert sorted(front) == sorted([sorted(ids[:2]), [ids[2]]])
    assert not store.client.exists(store.keys.fair("claim:token-1"))
    assert fair.running("ann") == set()
    assert store.leases.reap().groups == 0  # once only
    assert fair.pop(claim="token-2", claim_ttl_s=600).owner == "ann"


def test_hand_back_requeues_only_the_holders_runs(store):
    fair = FairQueue(store.client, prefix=store.keys.prefix)
    ids = [store.create_run(owner="ann", spec=SPEC)["id"] for _ in range(3)]
    for run_id in ids[:2]:
        start(store, run_id, "me", checkpoint="g-2")
    start(store, ids[2], "other")

    assert store.leases.hand_back(holder="me", run_ids=ids, reason="shutting down") == ids[:2]

    assert [store.get_run(r)["status"] for r in ids] == ["queued", "queued", "running"]
    assert fair.pending("ann") == [ids[:2]]
    last = store.events(store.keys.run_events(ids[0]))[-1]
    assert json.loads(last.data)["reason"] == "shutting down"


def test_a_run_cancelled_while_requeued_is_not_started_again(store):
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    start(store, run_id, "a")
    assert store.cancel_run(run_id=run_id) == "requested"
    store.leases.hand_back(holder="a", run_ids=[run_id], reason="shutting down")
    assert start(store, run_id, "b") == "cancel"


def test_stats_count_epochs_ends_and_durations(store):
    done = store.create_run(owner="ann", spec=SPEC)["id"]
    start(store, done, "a")
    for epoch in (1, 2, 2):  # a duplicate epoch is not counted
        store.append_epoch(run_id=done, metrics=metrics(epoch), holder="a")
    store.finish_run(run_id=done, status="succeeded", holder="a")
    queued = store.create_run(owner="ann", spec=SPEC)["id"]
    store.cancel_run(run_id=queued)

    stats = store.client.hgetall(f"{store.keys.prefix}:stats")

    assert stats["epochs"] == "2"
    assert stats["runs:succeeded"] == "1" and stats["runs:cancelled"] == "1"
    assert stats["duration_count"] == "1" and float(stats["duration_sum"]) >= 0
    assert stats["duration_le:1"] == "1" and stats["duration_le:86400"] == "1"


def test_reap_puts_back_the_unstarted_runs_of_a_dead_tokens_claim(store):
    fair = FairQueue(store.client, prefix=store.keys.prefix)
    ids = [store.create_run(owner="ann", spec=SPEC)["id"] for _ in range(3)]
    fair.enqueue(owner="ann", groups=[ids])
    assert fair.pop(claim="token-1", claim_ttl_s=600).run_ids == tuple(ids)
    store.leases.hold_claim(claim="token-1", ttl_s=60)
    start(store, ids[0], "dead", checkpoint=f"{ids[0]}", claim="token-1")  # the first chunk
    assert store.leases.reap().groups == 0  # its worker is alive: nothing to do

    expire(store, ids[0])
    store.client.zadd(store.keys.fair("claims"), {"token-1": 0})
    reaped = store.leases.reap()

    assert reaped.groups == 2 and reaped.run_ids == (ids[0],)
    assert sorted(fair.pending("ann")) == sorted([[ids[0]], ids[1:]])
    assert not store.client.exists(store.keys.fair("claim:token-1"))
    assert store.client.zcard(store.keys.fair("claims")) == 0
    assert fair.running("ann") == set()


def test_a_holder_whose_run_was_requeued_writes_nothing(store):
    """Its lease lapsed (say, Redis was away) and the reaper requeued the run: the old holder's
    next epoch and its end are refused, so the run cannot end `succeeded` with epochs missing."""
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    start(store, run_id, "a")
    store.append_epoch(run_id=run_id, metrics=metrics(1), holder="a")
    expire(store, run_id)
    assert store.leases.reap().run_ids == (run_id,)

    with pytest.raises(LeaseLost):
        store.append_epoch(run_id=run_id, metrics=metrics(2), holder="a")
    assert not store.finish_run(run_id=run_id, status="succeeded", holder="a")
    assert store.leases.renew(holder="a", run_ids=[run_id], ttl_s=10) == [run_id]
    run = store.get_run(run_id)
    assert run["status"] == "queued" and [e["epoch"] for e in run["epochs"]] == [1]


def taken_over(store, *, sweep: bool = False):
    """A run that holder a started (epoch 1) and, once its lease lapsed, holder b took over
    (epoch 2): a is the stale holder now. Its id."""
    if sweep:
        _, [run] = store.create_sweep(
            owner="ann", spec={"name": "s"}, metric="final_train_loss", mode="min",
            configs=[({}, SPEC)],
        )  # fmt: skip
        run_id = run["id"]
    else:
        run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    start(store, run_id, "a")
    assert store.append_epoch(run_id=run_id, metrics=metrics(1), holder="a")
    expire(store, run_id)
    assert start(store, run_id, "b", lease_s=600) == "running"
    assert store.append_epoch(run_id=run_id, metrics=metrics(2), holder="b")
    return run_id


def snapshot(store, run_id):
    """Everything a stale holder's write could change: the run hash, its stream, its lease,
    the stats and the sweep's terminal count."""
    client, keys = store.client, store.keys
    sweep_id = client.hget(keys.run(run_id), "sweep_id")
    return {
        "run": client.hgetall(keys.run(run_id)),
        "stream": [(e.id, e.type, e.data) for e in store.events(keys.run_events(run_id))],
        "lease": store.leases.expiry(run_id),
        "stats": client.hgetall(keys.stats()),
        "sweep": client.hget(keys.sweep(sweep_id), "n_terminal") if sweep_id else None,
    }


@pytest.mark.parametrize("sweep", [False, True])
@pytest.mark.parametrize(
    "status", ["succeeded", "failed", "cancelled", "diverged", "stopped_early"]
)
def test_a_stale_holders_end_is_refused_while_another_holds_the_run(store, status, sweep):
    run_id = taken_over(store, sweep=sweep)
    before = snapshot(store, run_id)

    ended = store.finish_run(
        run_id=run_id, status=status, result={"final_train_loss": 9.0}, error="x", holder="a"
    )

    assert ended is False
    assert snapshot(store, run_id) == before  # nothing written, b's lease untouched
    assert store.finish_run(run_id=run_id, status="succeeded", holder="b")
    run = store.get_run(run_id)
    assert run["status"] == "succeeded" and [e["epoch"] for e in run["epochs"]] == [1, 2]


def test_a_stale_holders_renewal_leaves_the_new_holders_lease_alone(store):
    run_id = taken_over(store)
    before = snapshot(store, run_id)

    assert store.leases.renew(holder="a", run_ids=[run_id], ttl_s=3600) == [run_id]

    assert snapshot(store, run_id) == before  # b's expiry neither extended nor shortened
    assert store.leases.renew(holder="b", run_ids=[run_id], ttl_s=3600) == []
    assert store.leases.expiry(run_id) > before["lease"]


def test_a_stale_holder_can_neither_hand_back_nor_retake_a_run_another_holds(store):
    run_id = taken_over(store)
    before = snapshot(store, run_id)

    assert store.leases.hand_back(holder="a", run_ids=[run_id], reason="shutting down") == []
    assert start(store, run_id, "a") == "held"

    assert snapshot(store, run_id) == before
    assert FairQueue(store.client, prefix=store.keys.prefix).pending("ann") == []
