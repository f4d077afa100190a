"""Planning a staged sweep with repeats (lab.stages.plan_stage, pure): winners by the
configuration's mean, each next configuration k times, a kept winner keeps all its runs."""

from lab.stages import plan_stage

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}


def spec(**extra):
    return {
        "strategy": "staged",
        "base": BASE,
        "keep_top": 1,
        "repeats": 2,
        "stages": [{"activation": ["relu", "tanh"]}, {"lr": [0.1, 0.001]}],  # base lr 0.001
        **extra,
    }


def run(run_id, activation, repeat, loss, **varied):
    return {
        "id": run_id,
        "status": "succeeded",
        "varied": {"activation": activation, **varied},
        "spec": {**BASE, "activation": activation, "seed": repeat, **varied},
        "repeat": repeat,
        "result": {"final_train_loss": loss},
    }


# relu has the single best run (0.1) but the worse mean (0.2 against tanh's 0.175)
FIRST = [run("r0", "relu", 0, 0.3), run("r1", "relu", 1, 0.1)]
FIRST += [run("t0", "tanh", 0, 0.15), run("t1", "tanh", 1, 0.2)]


def record(current, stages):
    """A stage record at stage `current`: (run_ids, parents, winners) per stage."""
    return {
        "current": current,
        "stages": [
            {"field": f, "run_ids": ids, "parents": parents, "winners": winners}
            for f, (ids, parents, winners) in zip(("activation", "lr"), stages, strict=False)
        ],
    }


def sweep(**extra):
    return {
        "id": "s",
        "owner": "u",
        "metric": "final_train_loss",
        "mode": "min",
        "spec": spec(**extra),
    }


def test_the_winner_is_the_best_mean_and_the_next_stage_repeats_each_new_configuration():
    ids = [r["id"] for r in FIRST]
    plan = plan_stage(sweep(), record(0, [(ids, [None] * 4, [])]), FIRST, max_models=64)
    assert plan.winners == ["t0"]  # tanh's best run stands for tanh
    assert plan.kept == ["t0", "t1"]  # lr 0.001 is tanh as it is: both its runs are kept
    assert plan.configs == [
        ({"activation": "tanh", "lr": 0.1}, {**plan.configs[0][1], "seed": 0}),
        ({"activation": "tanh", "lr": 0.1}, {**plan.configs[0][1], "seed": 1}),
    ]
    assert plan.configs[0][1]["lr"] == 0.1 and plan.repeats == [0, 1]
    assert plan.parents == ["t0", "t0"] and plan.chunks == [[0, 1]]
    assert plan.groups[0] is not None and plan.groups[0] == plan.groups[1]


def test_a_winner_of_a_varied_seed_repeats_from_its_own_seed():
    runs = [run("a0", "relu", 0, 0.2), run("a1", "relu", 1, 0.2)]
    runs = [{**r, "spec": {**r["spec"], "seed": 40 + r["repeat"]}} for r in runs]
    plan = plan_stage(sweep(), record(0, [(["a0", "a1"], [None, None], [])]), runs, max_models=64)
    assert [s["seed"] for _, s in plan.configs] == [40, 41]


def test_per_parent_counts_a_kept_configuration_under_the_winner_it_stands_for():
    # tanh's best run is its second (t1): the winner the kept runs t0, t1 stand for
    kept = [run("t0", "tanh", 0, 0.2), run("t1", "tanh", 1, 0.15)]
    new = [run("n0", "tanh", 0, 0.05, lr=0.1), run("n1", "tanh", 1, 0.06, lr=0.1)]
    first = (["r0", "r1", "t0", "t1"], [None] * 4, ["t1"])
    second = (["t0", "t1", "n0", "n1"], ["t0", "t1", "t1", "t1"], [])
    per_parent = sweep(keep_top=2, carry="per_parent")
    plan = plan_stage(per_parent, record(1, [first, second]), kept + new, max_models=64)
    assert plan.winners == ["n0"]  # one per parent: the kept tanh shares t1 with lr 0.1
    top = sweep(keep_top=2)
    winners = plan_stage(top, record(1, [first, second]), kept + new, max_models=64).winners
    assert winners == ["n0", "t1"]
