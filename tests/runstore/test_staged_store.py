"""The stage record on the real Redis: start, advance exactly once (even when raced), stop."""

import functools
import threading

from lab.stages import advance_sweep, plan_stage
from runstore import stages
from tests.support.staged import SPEC, finish, promised
from tests.support.staged import new_staged_sweep as new_sweep


def planner(max_models=64):
    return functools.partial(plan_stage, max_models=max_models)


def test_start_records_the_plan_and_holds_the_sweep_open(store):
    record, ids = new_sweep(store)
    state = stages.get(store, record["id"])
    assert state["status"] == "running" and state["current"] == 0
    assert [(s["field"], s["status"], s["run_ids"]) for s in state["stages"]] == [
        ("activation", "running", ids),
        ("lr", "pending", []),
    ]
    sweep = store.get_sweep(record["id"])
    assert sweep["varied"] == ["activation", "lr"] and sweep["n_runs"] == 4  # 3 + 1 to come
    assert state["bounds"] == [3, 4] and promised(store) == 4  # stage 2: 2 winners x 2 lrs


def test_nothing_moves_until_every_run_of_the_stage_has_ended(store):
    record, ids = new_sweep(store)
    finish(store, ids[:2], [0.3, 0.2])
    assert stages.advance(store, record["id"], planner()) is None
    assert stages.get(store, record["id"])["current"] == 0


def test_an_ended_stage_queues_the_winners_times_the_next_values_once(store):
    record, ids = new_sweep(store)
    finish(store, ids, [0.3, None, 0.2])
    moved = stages.advance(store, record["id"], planner())
    assert moved.plan.winners == [ids[2], ids[0]]  # sigmoid, relu: the failed tanh is out
    assert [r["varied"] for r in moved.runs] == [
        {"activation": "sigmoid", "lr": 0.1},
        {"activation": "sigmoid", "lr": 0.01},
        {"activation": "relu", "lr": 0.1},
        {"activation": "relu", "lr": 0.01},
    ]
    assert moved.plan.chunks == [[0, 1, 2, 3]] and len(set(moved.plan.groups)) == 1
    new_ids = [r["id"] for r in moved.runs]
    state = stages.get(store, record["id"])
    assert state["current"] == 1 and state["stages"][0]["winners"] == [ids[2], ids[0]]
    assert state["stages"][1]["run_ids"] == new_ids
    assert state["stages"][1]["parents"] == [ids[2], ids[2], ids[0], ids[0]]
    sweep = store.get_sweep(record["id"])
    assert sweep["run_ids"] == ids + new_ids and sweep["n_runs"] == 3 + 4 + 1
    assert [r["status"] for r in store.get_runs(new_ids)] == ["queued"] * 4
    assert promised(store) == 0  # the stage's runs count now, as queued ones
    assert stages.advance(store, record["id"], planner()) is None  # not again


def test_racing_processes_create_the_next_stage_exactly_once(store):
    record, ids = new_sweep(store)
    finish(store, ids, [0.3, 0.1, 0.2])
    racers = 4
    planned = threading.Barrier(racers, timeout=60)

    def together(*args, **kwargs):
        planned.wait()  # every racer has read the record before any of them writes
        return plan_stage(*args, max_models=64, **kwargs)

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(stages.advance(store, record["id"], together))
        )
        for _ in range(racers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == racers and not planned.broken
    assert sum(r is not None for r in results) == 1
    assert len(store.get_sweep(record["id"])["run_ids"]) == 3 + 4


def test_the_last_stage_finishes_the_sweep_and_releases_the_extra_run(store):
    record, ids = new_sweep(store)
    finish(store, ids, [0.3, 0.1, 0.2])
    new_ids = [r["id"] for r in stages.advance(store, record["id"], planner()).runs]
    finish(store, new_ids, [0.5, 0.05, 0.4, 0.6])
    moved = stages.advance(store, record["id"], planner())
    assert moved.runs == [] and moved.plan.winners == [new_ids[1], new_ids[2]]
    state = stages.get(store, record["id"])
    assert state["status"] == "finished" and state["stages"][1]["status"] == "finished"
    assert store.get_sweep(record["id"])["n_runs"] == 7
    kinds = [e.type for e in store.events(store.keys.sweep_events(record["id"]))]
    assert kinds.count("stage") == 2


def test_a_stage_without_a_finished_run_ends_the_sweep_with_a_reason(store):
    record, ids = new_sweep(store)
    finish(store, ids, [None, None, None])
    moved = stages.advance(store, record["id"], planner())
    assert moved.runs == [] and moved.plan.winners == []
    state = stages.get(store, record["id"])
    assert state["status"] == "ended"
    assert state["reason"].startswith("stage 1 (activation) ended with no finished run")
    assert store.get_sweep(record["id"])["n_runs"] == 3 and promised(store) == 0


def test_stop_prevents_every_later_stage(store):
    record, ids = new_sweep(store)
    assert stages.stop(store, record["id"], status="cancelled", reason="cancelled")
    assert not stages.stop(store, record["id"], status="cancelled", reason="again")
    assert promised(store) == 0  # released once
    finish(store, ids, [0.3, 0.1, 0.2])
    assert stages.advance(store, record["id"], planner()) is None
    assert store.get_sweep(record["id"])["n_runs"] == 3


def test_a_plain_sweep_has_no_stage_record(store):
    record, _ = store.create_sweep(
        owner="u",
        spec={"grid": {"lr": [0.1]}},
        metric="m",
        mode="min",
        configs=[({"lr": 0.1}, {"lr": 0.1})],
    )
    assert stages.get(store, record["id"]) is None
    assert stages.advance(store, record["id"], planner()) is None


REPEATS = {
    **SPEC,
    "stages": [
        {"activation": ["relu", "tanh", "sigmoid"]},
        {"lr": [0.1, 0.001]},
        {"step_size": [20]},
    ],
}


def test_a_winner_the_next_stage_repeats_is_kept_not_trained_again(store):
    record, ids = new_sweep(store, REPEATS)  # the base lr is 0.001, its step_size 20
    assert promised(store) == 4 + 2
    finish(store, ids, [0.3, 0.1, 0.2])
    moved = stages.advance(store, record["id"], planner())
    assert promised(store) == 2  # stage 2's bound released, though it trains only 2
    assert moved.plan.kept == [ids[1], ids[2]]
    assert [r["varied"] for r in moved.runs] == [
        {"activation": "tanh", "lr": 0.1},
        {"activation": "sigmoid", "lr": 0.1},
    ]
    new_ids = [r["id"] for r in moved.runs]
    second = stages.get(store, record["id"])["stages"][1]
    assert second["run_ids"] == [ids[1], ids[2], *new_ids] and second["kept"] == ids[1:]
    assert second["parents"] == [ids[1], ids[2], ids[1], ids[2]]
    sweep = store.get_sweep(record["id"])
    assert sweep["run_ids"] == ids + new_ids and sweep["n_runs"] == 3 + 2 + 1
    finish(store, new_ids, [0.05, 0.5])
    # stage 3 only repeats its winners: it holds them, trains nothing, and has ended at once
    moved = stages.advance(store, record["id"], planner())
    assert moved.runs == [] and moved.plan.winners == [new_ids[0], ids[1]]  # 0.05, 0.1
    assert moved.plan.kept == [new_ids[0], ids[1]]
    state = stages.get(store, record["id"])
    assert state["status"] == "running" and state["current"] == 2
    assert stages.public_stages(state)[2]["kept"] == [new_ids[0], ids[1]]
    last = stages.advance(store, record["id"], planner())
    assert last.runs == [] and last.plan.winners == [new_ids[0], ids[1]]
    assert stages.get(store, record["id"])["status"] == "finished"
    assert store.get_sweep(record["id"])["n_runs"] == 5 and promised(store) == 0


def test_advancing_passes_through_a_stage_of_kept_runs_only(store):
    spec = {**SPEC, "stages": [{"activation": ["relu", "tanh"]}, {"lr": [0.001]}]}
    record, ids = new_sweep(store, spec)
    finish(store, ids, [0.3, 0.1])
    advance_sweep(record["id"], store=store, queue=None, max_models=64)  # nothing to send
    state = stages.get(store, record["id"])
    assert state["status"] == "finished" and state["stages"][1]["winners"] == [ids[1], ids[0]]
    sweep = store.get_sweep(record["id"])
    assert sweep["run_ids"] == ids and sweep["n_runs"] == 2


def test_runs_built_from_a_kept_winner_name_every_stage_field(store):
    spec = {
        **SPEC,
        "keep_top": 1,
        "stages": [{"activation": ["relu", "tanh"]}, {"lr": [0.1, 0.001]}, {"step_size": [20, 5]}],
    }
    record, ids = new_sweep(store, spec)
    finish(store, ids, [0.3, 0.1])
    moved = stages.advance(store, record["id"], planner())  # tanh at lr 0.1; tanh itself kept
    finish(store, [r["id"] for r in moved.runs], [0.5])
    third = stages.advance(store, record["id"], planner())  # the kept tanh won stage 2
    assert third.plan.winners == [ids[1]] and third.plan.kept == [ids[1]]
    assert [r["varied"] for r in third.runs] == [
        {"activation": "tanh", "lr": 0.001, "step_size": 5}
    ]
