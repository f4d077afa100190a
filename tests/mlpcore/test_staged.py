"""Staged sweeps: validation, the first stage's expansion, the run bound, winners, next stages."""

import pytest
from pydantic import ValidationError

from mlpcore.errors import SpecError
from mlpcore.staged import Candidate, next_configs, select_winners, stage_sizes
from mlpcore.sweep import SweepSpec, expand_sweep, sweep_size, varied_fields

STUDY = [
    {"activation": ["sigmoid", "relu", "tanh", "leaky_relu"]},
    {"lr": [1e-4, 1e-3, 1e-2]},
    {"step_size": [20, 30, 40]},
]


def staged(**fields):
    return SweepSpec(strategy="staged", base={"dataset": "synthetic"}, **fields)


def test_the_study_expands_to_its_first_stage_and_bounds_every_run():
    sweep = staged(stages=STUDY, keep_top=2)
    configs = expand_sweep(sweep, max_runs=16)
    assert [c.varied for c in configs] == [{"activation": a} for a in STUDY[0]["activation"]]
    assert all(c.spec.dataset == "synthetic" and c.spec.lr == 1e-3 for c in configs)
    assert sweep_size(sweep) == 4 + 2 * 3 + 2 * 3
    assert varied_fields(sweep) == ["activation", "lr", "step_size"]


def test_the_bound_never_carries_more_winners_than_a_stage_has():
    assert stage_sizes([1, 3, 2], keep_top=2) == [1, 3, 4]
    assert stage_sizes([4, 3], keep_top=5) == [4, 12]


def test_the_bound_is_checked_against_max_runs():
    with pytest.raises(SpecError, match="up to 16 configurations.*max_runs_per_sweep=15"):
        expand_sweep(staged(stages=STUDY, keep_top=2), max_runs=15)


def test_a_bad_value_of_a_later_stage_rejects_the_sweep_naming_it():
    stages = [{"activation": ["relu"]}, {"lr": [1e-3, -1.0]}]
    with pytest.raises(SpecError, match=r"stage 2 \(lr\) value -1.0: lr"):
        expand_sweep(staged(stages=stages, keep_top=1), max_runs=10)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stages": []}, "needs stages"),
        ({"stages": [{"lr": [0.1], "epochs": [1]}], "keep_top": 1}, "exactly one field"),
        ({"stages": [{"lr": []}]}, "stage 1: the list of values is empty"),
        ({"stages": [{"learning_rate": [0.1]}]}, "unknown spec field"),
        ({"stages": [{"lr": [0.1]}, {"seed": [1]}]}, "needs keep_top"),
        ({"stages": [{"lr": [0.1]}], "grid": {"seed": [1]}}, "not a grid"),
        ({"stages": [{"lr": [0.1]}], "keep_top": 0}, "greater than or equal to 1"),
        ({"stages": [{"lr": [0.1]}], "carry": "all"}, "'top' or 'per_parent'"),
    ],
)
def test_malformed_staged_sweeps(fields, message):
    with pytest.raises(ValidationError, match=message):
        staged(**fields)


def test_stages_belong_to_strategy_staged():
    with pytest.raises(ValidationError, match="belong to strategy staged"):
        SweepSpec(grid={"lr": [0.1]}, stages=[{"seed": [1]}])


def cands(*triples):
    return [Candidate(run_id, value, parent) for run_id, value, parent in triples]


def test_top_keeps_the_best_finished_runs_whatever_their_parent():
    runs = cands(("a", 0.5, "p"), ("b", None, "p"), ("c", 0.2, "p"), ("d", 0.3, "q"))
    assert select_winners(runs, keep_top=2, carry="top", mode="min") == ["c", "d"]
    assert select_winners(runs, keep_top=2, carry="top", mode="max") == ["a", "d"]


def test_per_parent_keeps_each_lineage_at_its_best_value():
    # stage 2 of the study: sigmoid's best lr is 1e-3 (c), relu's 1e-2 (e); with carry top,
    # both of sigmoid's would go on and relu would be dropped
    runs = cands(
        ("a", 0.9, "sig"),
        ("b", 0.3, "sig"),
        ("c", 0.1, "sig"),
        ("d", 0.8, "relu"),
        ("e", 0.4, "relu"),
        ("f", 0.5, "relu"),
    )
    assert select_winners(runs, keep_top=2, carry="top", mode="min") == ["c", "b"]
    assert select_winners(runs, keep_top=2, carry="per_parent", mode="min") == ["c", "e"]


def test_stage_one_runs_have_no_parent_and_all_count():
    runs = cands(("a", 0.4, None), ("b", 0.1, None), ("c", 0.2, None))
    assert select_winners(runs, keep_top=2, carry="per_parent", mode="min") == ["b", "c"]


def test_ties_go_to_the_earlier_run_and_no_finished_run_means_no_winner():
    assert select_winners(
        cands(("a", 0.1, None), ("b", 0.1, None)), keep_top=1, carry="top", mode="min"
    ) == ["a"]
    assert select_winners(cands(("a", None, None)), keep_top=2, carry="top", mode="min") == []


def test_each_winner_meets_every_value_of_the_next_stage():
    winners = [
        ({"activation": "relu"}, {"activation": "relu", "lr": 1e-3, "epochs": 2}),
        ({"activation": "tanh"}, {"activation": "tanh", "lr": 1e-3, "epochs": 2}),
    ]
    got = next_configs(winners, field="lr", values=[1e-2, 1e-4])
    assert [(v, s.lr, s.epochs, p) for v, s, p in got] == [
        ({"activation": "relu", "lr": 1e-2}, 1e-2, 2, 0),
        ({"activation": "relu", "lr": 1e-4}, 1e-4, 2, 0),
        ({"activation": "tanh", "lr": 1e-2}, 1e-2, 2, 1),
        ({"activation": "tanh", "lr": 1e-4}, 1e-4, 2, 1),
    ]


def test_the_seed_study_example_is_the_studys_search():
    from mlpcore.spec import load_spec_file
    from tests.support.paths import ROOT

    sweep = SweepSpec(**load_spec_file(ROOT / "examples" / "seed_study.yaml"))
    assert sweep.stages == STUDY and sweep.keep_top == 2 and sweep.carry == "per_parent"
    assert sweep_size(sweep) == 16 and sweep.metric == "final_train_loss"
    first = expand_sweep(sweep, max_runs=16)
    spec = first[0].spec
    assert (spec.dataset, spec.hidden, spec.init, spec.optimizer) == (
        "fashion-mnist",
        [512, 256, 128],
        "he",
        "adam",
    )
    assert spec.epochs > 40 and spec.batch_size == 64 and spec.scheduler == "step"
    assert sweep.early_stopping is None
