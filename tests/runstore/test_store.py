"""runstore against the real Redis: records, transitions, epoch dedupe, streams, indexes."""

import asyncio
import math

import pytest

from runstore import AsyncStore, InvalidEventId, after_position
from tests.support.redis_db import TEST_PREFIX, UNIT_REDIS_URL
from tests.support.runs import metrics
from tests.support.waiting import wait_for

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 3}


def started_run(store, **kwargs):
    run = store.create_run(owner="ann", spec=SPEC, **kwargs)
    assert store.mark_running(run_id=run["id"], worker="w1@host", device="cpu") == "running"
    return run["id"]


def test_create_and_read_run(store):
    run = store.create_run(owner="ann", spec=SPEC)
    got = store.get_run(run["id"])
    assert got["status"] == "queued" and got["spec"] == SPEC and got["owner"] == "ann"
    assert got["epochs"] == [] and got["result"] is None and got["cancel_requested"] is False
    assert got["created_at"] == pytest.approx(run["created_at"])
    [event] = store.events(store.keys.run_events(run["id"]))
    assert (event.id, event.type) == ("0-1", "status")
    assert store.owner_run_ids(owner="ann") == [run["id"]]
    assert store.get_run("nope") is None


def test_lifecycle_epoch_ids_and_dedupe(store):
    run_id = started_run(store)
    assert store.append_epoch(run_id=run_id, metrics=metrics(1))
    assert store.append_epoch(run_id=run_id, metrics=metrics(2))
    assert not store.append_epoch(run_id=run_id, metrics=metrics(2, loss=9.0))  # a retry
    assert not store.append_epoch(run_id=run_id, metrics=metrics(1))
    assert store.finish_run(run_id=run_id, status="succeeded", result={"final_train_loss": 1.0})
    assert not store.finish_run(run_id=run_id, status="failed", error="late")
    assert not store.append_epoch(run_id=run_id, metrics=metrics(3))  # finished: no more
    ids = [(e.id, e.type) for e in store.events(store.keys.run_events(run_id))]
    assert ids == [
        ("0-1", "status"),
        ("0-2", "status"),
        ("1-0", "epoch"),
        ("2-0", "epoch"),
        ("2-1", "status"),
    ]
    run = store.get_run(run_id)
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    assert run["epochs"][1]["train_loss"] == 1.0
    assert run["status"] == "succeeded" and run["result"] == {"final_train_loss": 1.0}
    assert run["worker"] == "w1@host" and run["started_at"] <= run["finished_at"]


def test_redelivered_run_keeps_counting_from_its_last_epoch(store):
    run_id = started_run(store)
    store.append_epoch(run_id=run_id, metrics=metrics(1))
    store.client.zadd(store.keys.leases(), {run_id: 0})  # its worker's lease ran out
    assert store.mark_running(run_id=run_id, worker="w2@host", device="cpu") == "running"
    assert not store.append_epoch(run_id=run_id, metrics=metrics(1))
    assert store.append_epoch(run_id=run_id, metrics=metrics(2))
    ids = [e.id for e in store.events(store.keys.run_events(run_id))]
    assert ids == ["0-1", "0-2", "1-0", "1-1", "2-0"]


def test_last_event_id_maps_to_after_the_epoch(store):
    run_id = started_run(store)
    for k in (1, 2, 3):
        store.append_epoch(run_id=run_id, metrics=metrics(k))
    store.finish_run(run_id=run_id, status="succeeded", result={})
    key = store.keys.run_events(run_id)
    assert [e.epoch_id() for e in store.events(key, after=after_position("2"))] == ["3", "3-1"]
    assert [e.id for e in store.events(key, after=after_position("3-1"))] == []
    assert after_position(None) == "0-0" and after_position("  ") == "0-0"
    assert after_position("1700000000000-3") == "1700000000000-3"
    for bad in ("abc", "1-", "-1", "2.5"):
        with pytest.raises(InvalidEventId):
            after_position(bad)


def test_non_finite_numbers_are_stored_as_null(store):
    run_id = started_run(store)
    store.append_epoch(run_id=run_id, metrics=metrics(1, loss=math.nan))
    store.finish_run(run_id=run_id, status="diverged", result=None, error="loss became nan")
    run = store.get_run(run_id)
    assert run["epochs"][0]["train_loss"] is None and run["error"] == "loss became nan"


def test_cancel_queued_running_and_finished(store):
    queued = store.create_run(owner="ann", spec=SPEC)["id"]
    assert store.cancel_run(run_id=queued) == "cancelled"
    assert store.mark_running(run_id=queued, worker="w", device="cpu") == "cancelled"
    assert store.get_run(queued)["finished_at"] is not None

    running = started_run(store)
    assert store.cancel_run(run_id=running) == "requested"
    assert store.cancel_requested(run_id=running)
    assert store.get_run(running)["status"] == "running"
    # a redelivery of a run someone cancelled must not start it again
    store.client.zadd(store.keys.leases(), {running: 0})  # its worker's lease ran out
    assert store.mark_running(run_id=running, worker="w", device="cpu") == "cancel"
    assert store.finish_run(run_id=running, status="cancelled")
    assert store.cancel_run(run_id=running) == "finished"
    assert store.get_run(running)["status"] == "cancelled"
    assert store.cancel_run(run_id="nope") == "missing"


def test_cancel_of_a_finished_run_reports_its_status(store):
    run_id = started_run(store)
    store.finish_run(run_id=run_id, status="succeeded", result={})
    assert store.cancel_run(run_id=run_id) == "finished"
    assert not store.cancel_requested(run_id=run_id)


def test_list_runs_newest_first_with_status_filter_and_pages(store):
    ids = [store.create_run(owner="ann", spec=SPEC)["id"] for _ in range(5)]
    store.create_run(owner="bob", spec=SPEC)
    store.cancel_run(run_id=ids[1])
    store.cancel_run(run_id=ids[3])
    newest_first = store.owner_run_ids(owner="ann")
    assert newest_first == ids[::-1]
    page, count = store.list_runs(run_ids=newest_first, status=None, limit=2, offset=1)
    assert [r["id"] for r in page] == [ids[3], ids[2]] and count == 5
    page, count = store.list_runs(run_ids=newest_first, status="cancelled", limit=10, offset=0)
    assert [r["id"] for r in page] == [ids[3], ids[1]] and count == 2
    page, count = store.list_runs(run_ids=newest_first, status="queued", limit=10, offset=5)
    assert page == [] and count == 3


def test_runs_created_in_the_same_millisecond_list_in_creation_order(store):
    # a sweep's runs are recorded in one step, well inside one millisecond: their order must
    # come from the order they were created in, not from their random ids
    configs = [({"seed": k}, {**SPEC, "seed": k}) for k in range(24)]
    _, runs = store.create_sweep(
        owner="ann", spec={"grid": {}}, metric="final_train_loss", mode="min", configs=configs
    )
    created = [r["id"] for r in runs]
    same_ms = {int(r["created_at"] * 1000) for r in runs}
    later = [store.create_run(owner="ann", spec=SPEC)["id"] for _ in range(24)]
    theirs = store.create_run(owner="bob", spec=SPEC)["id"]
    assert store.owner_run_ids(owner="ann") == (created + later)[::-1], same_ms
    assert store.all_run_ids() == [theirs, *(created + later)[::-1]]


def test_the_run_order_outlasts_a_clock_that_goes_back(store):
    first = store.create_run(owner="ann", spec=SPEC)
    store.client.set(store.keys.creation_order(), int((first["created_at"] + 3600) * 1e6))
    second = store.create_run(owner="ann", spec=SPEC)  # its clock an hour behind the last
    assert store.owner_run_ids(owner="ann") == [second["id"], first["id"]]


def test_sweep_records_streams_and_completion(store):
    configs = [({"lr": lr}, {**SPEC, "lr": lr}) for lr in (0.1, 0.01)]
    sweep, runs = store.create_sweep(
        owner="ann",
        spec={"grid": {"lr": [0.1, 0.01]}},
        metric="final_train_loss",
        mode="min",
        configs=configs,
    )
    got = store.get_sweep(sweep["id"])
    assert got["run_ids"] == [r["id"] for r in runs] and got["varied"] == ["lr"]
    assert (got["n_runs"], got["n_terminal"], got["mode"]) == (2, 0, "min")
    assert store.get_run(runs[0]["id"])["varied"] == {"lr": 0.1}
    first, second = (r["id"] for r in runs)
    store.mark_running(run_id=first, worker="w", device="cpu")
    store.append_epoch(run_id=first, metrics=metrics(1))
    store.finish_run(run_id=first, status="succeeded", result={})
    store.cancel_run(run_id=second)
    assert store.get_sweep(sweep["id"])["n_terminal"] == 2
    events = store.events(store.keys.sweep_events(sweep["id"]))
    assert [(e.run_id, e.type) for e in events] == [
        (first, "status"),
        (second, "status"),
        (first, "status"),
        (first, "epoch"),
        (first, "status"),
        (second, "status"),
    ]


def test_async_reader_blocks_until_an_event_and_knows_when_done(store):
    run_id = started_run(store)

    async def scenario():
        events = AsyncStore.from_url(UNIT_REDIS_URL, prefix=TEST_PREFIX)
        key = store.keys.run_events(run_id)
        try:
            assert await events.read(key, after="0-2", block_ms=50) == []
            loop = asyncio.get_running_loop()
            pending = asyncio.ensure_future(events.read(key, after="0-2", block_ms=5000))
            await loop.run_in_executor(
                None, lambda: store.append_epoch(run_id=run_id, metrics=metrics(1))
            )
            [event] = await pending
            assert (event.id, event.epoch_id()) == ("1-0", "1")
            assert not await events.run_done(run_id)
            store.finish_run(run_id=run_id, status="succeeded", result={})
            assert await events.run_done(run_id)
            assert (await events.get_run(run_id))["epochs"] == store.get_run(run_id)["epochs"]
            assert await events.get_run("nope") is None
        finally:
            await events.close()

    asyncio.run(scenario())


def test_heartbeats_expire(store):
    store.heartbeat(hostname="w1@host", info={"device": "cpu"}, ttl_s=30)
    store.heartbeat(hostname="w2@host", info={}, ttl_s=30)
    assert {w["hostname"] for w in store.live_workers()} == {"w1@host", "w2@host"}
    assert 0 < store.client.pttl(store.keys.worker("w1@host")) <= 30_000
    store.heartbeat(hostname="w1@host", info={"device": "cpu"}, ttl_s=0.05)  # its last one
    assert store.client.pttl(store.keys.worker("w1@host")) <= 50  # -2 once already gone
    wait_for(
        lambda: [w["hostname"] for w in store.live_workers()] == ["w2@host"],
        what="w1's heartbeat to expire",
        timeout=60,
    )
    store.remove_worker(hostname="w2@host")
    assert store.live_workers() == []


def test_every_key_is_under_the_prefix(store, redis_client):
    run_id = started_run(store)
    store.append_epoch(run_id=run_id, metrics=metrics(1))
    store.heartbeat(hostname="w", info={}, ttl_s=5)
    assert all(k.startswith(f"{TEST_PREFIX}:") for k in redis_client.keys("*"))
