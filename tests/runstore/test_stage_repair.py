"""A stage change cut off by a vanished process, finished by the repair pass exactly once, on
the real Redis and the real broker (the tokens are Celery messages in the unit-test DB).

The two windows: the last run of a stage ended, but nobody advanced the sweep (the worker
was killed between recording that status and advance_sweeps); the next stage was recorded,
but its runs were never queued (killed between the stage transaction and queuing).
"""

import functools
import threading

import pytest

from lab import repair
from lab import stages as lab_stages
from lab.queue import TaskQueue, create_celery
from runstore import stages, strays
from tests.support.http import queued_task_messages
from tests.support.redis_db import UNIT_REDIS_URL
from tests.support.staged import SPEC, finish, new_staged_sweep, promised

TOKEN = ("mlplab.train_next", [])


@pytest.fixture
def queue(redis_client):
    """The task queue on the unit-test DB (its messages are flushed with it)."""
    task_queue = TaskQueue(create_celery(UNIT_REDIS_URL, visibility_timeout_s=3600))
    yield task_queue
    task_queue.close()


def race(racers, target):
    """Run target() in `racers` threads released together by a barrier; their results."""
    start = threading.Barrier(racers, timeout=60)
    results = []

    def run():
        start.wait()
        results.append(target())

    threads = [threading.Thread(target=run) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == racers, "a racer raised"
    return results


def pending(store, owner="u"):
    """The owner's fair-share queue: the groups waiting, oldest first."""
    return store.fair.pending(owner)


def stage_change_cut_off(store):
    """A staged sweep whose first stage ended while nobody advanced it."""
    record, ids = new_staged_sweep(store)
    finish(store, ids, [0.3, 0.1, 0.2])
    return record["id"], ids


def repair_stages(store, queue):
    return repair.repair_stages(store, queue, max_models=64)


def test_running_staged_sweeps_are_indexed_until_they_leave_running(store):
    first, ids = new_staged_sweep(store)
    second, _ = new_staged_sweep(store)
    assert sorted(stages.running(store)) == sorted([first["id"], second["id"]])
    stages.stop(store, second["id"], status="cancelled", reason="cancelled")
    assert stages.running(store) == [first["id"]]
    finish(store, ids, [0.3, 0.1, 0.2])
    planner = functools.partial(lab_stages.plan_stage, max_models=64)
    stage_two = stages.advance(store, first["id"], planner)
    assert stages.running(store) == [first["id"]]  # stage 2 runs
    finish(store, [r["id"] for r in stage_two.runs], [0.5, 0.4, 0.3, 0.2])
    stages.advance(store, first["id"], planner)
    assert stages.running(store) == []  # finished
    ended, ended_ids = new_staged_sweep(store)
    finish(store, ended_ids, [None, None, None])
    stages.advance(store, ended["id"], planner)
    assert stages.get(store, ended["id"])["status"] == "ended" and stages.running(store) == []


def test_an_ended_stage_nobody_advanced_is_advanced_once_by_racing_repairs(
    store, queue, redis_client, monkeypatch
):
    sweep_id, ids = stage_change_cut_off(store)
    racers = 3
    planned = threading.Barrier(racers, timeout=60)
    plan_stage = lab_stages.plan_stage

    def together(*args, **kwargs):
        planned.wait()  # every repair has read the record before any of them writes
        return plan_stage(*args, **kwargs)

    monkeypatch.setattr(lab_stages, "plan_stage", together)
    repaired = race(racers, lambda: repair_stages(store, queue))
    assert sum(len(r) for r in repaired) == 1  # one pass moved it, the others found it moved
    state = stages.get(store, sweep_id)
    new_ids = state["stages"][1]["run_ids"]
    assert state["current"] == 1 and len(new_ids) == 4
    assert store.get_sweep(sweep_id)["run_ids"] == ids + new_ids
    assert pending(store) == [new_ids]  # one fused group, queued once
    assert queued_task_messages(redis_client) == [TOKEN]  # one token for it
    assert promised(store) == 0
    assert repair_stages(store, queue) == []  # nothing left to do


def test_a_stage_recorded_but_never_queued_is_queued_once_by_racing_repairs(
    store, queue, redis_client
):
    sweep_id, _ = stage_change_cut_off(store)
    planner = functools.partial(lab_stages.plan_stage, max_models=64)
    new_ids = [r["id"] for r in stages.advance(store, sweep_id, planner).runs]  # then killed
    assert pending(store) == [] and queued_task_messages(redis_client) == []
    repaired = race(4, lambda: repair_stages(store, queue))
    assert sum(len(r) for r in repaired) == 1
    assert pending(store) == [new_ids]
    assert queued_task_messages(redis_client) == [TOKEN]
    assert [r["status"] for r in store.get_runs(new_ids, epochs=False)] == ["queued"] * 4
    assert repair_stages(store, queue) == []


def test_a_stage_queued_by_its_worker_is_not_queued_again(store, queue, redis_client):
    sweep_id, _ = stage_change_cut_off(store)
    lab_stages.advance_sweep(sweep_id, store=store, queue=queue, max_models=64)  # no crash
    [group] = pending(store)
    assert repair_stages(store, queue) == []
    assert pending(store) == [group] and queued_task_messages(redis_client) == [TOKEN]


def test_a_dispatched_or_finished_stage_run_is_not_queued_again(store, queue, redis_client):
    spec = {**SPEC, "fuse": False}  # one group per run
    record, ids = new_staged_sweep(store, spec)
    finish(store, ids, [0.3, 0.1, 0.2])
    planner = functools.partial(lab_stages.plan_stage, max_models=64)
    new_ids = [r["id"] for r in stages.advance(store, record["id"], planner).runs]
    assert len(new_ids) == 4
    store.fair.enqueue_runs(new_ids[:1])
    assert store.fair.pop(claim="t1", claim_ttl_s=60).run_ids == (new_ids[0],)  # dispatched
    store.fair.enqueue_runs(new_ids[1:2])  # waiting in the queue
    finish(store, new_ids[2:3], [0.5])  # ended
    assert repair_stages(store, queue) == [record["id"]]
    assert pending(store) == [[new_ids[1]], [new_ids[3]]]  # only the one left behind
    assert queued_task_messages(redis_client) == [TOKEN]


def test_a_stage_waiting_for_its_queue_is_no_stray_while_its_sweep_runs(store):
    sweep_id, _ = stage_change_cut_off(store)
    planner = functools.partial(lab_stages.plan_stage, max_models=64)
    new_ids = [r["id"] for r in stages.advance(store, sweep_id, planner).runs]
    assert strays.find_strays(store, older_than_s=0) == []  # the stage repair's to queue
    stages.stop(store, sweep_id, status="cancelled", reason="cancelled")
    assert sorted(strays.find_strays(store, older_than_s=0)) == sorted(new_ids)


def test_a_first_stage_cut_off_at_submission_is_left_to_the_strays(store, queue, redis_client):
    record, ids = new_staged_sweep(store)  # its submitter was answered with an error
    assert repair_stages(store, queue) == []
    assert pending(store) == [] and queued_task_messages(redis_client) == []
    failed = repair.repair_once(store, queue, stray_after_s=0, max_models=64)
    assert sorted(failed) == sorted(ids)
    state = stages.get(store, record["id"])  # the failed stage ended the sweep
    assert state["status"] == "ended" and promised(store) == 0


def test_a_stage_whose_token_could_not_be_sent_keeps_its_runs(store, redis_client):
    sweep_id, _ = stage_change_cut_off(store)
    dead = TaskQueue(
        create_celery("redis://127.0.0.1:1/0", visibility_timeout_s=60, redis_timeout_s=2)
    )
    try:
        lab_stages.advance_sweep(sweep_id, store=store, queue=dead, max_models=64)
    finally:
        dead.close()
    new_ids = stages.get(store, sweep_id)["stages"][1]["run_ids"]
    assert [r["status"] for r in store.get_runs(new_ids, epochs=False)] == ["queued"] * 4
    assert pending(store) == [new_ids]  # queued; the repair pass sends a spare token
    assert strays.needs_token(store, tokens_waiting=0)
