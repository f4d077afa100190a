"""Repeats and the val metrics at the sweep level: expansion, counts, seeds, and the refusals."""

import pytest
from pydantic import ValidationError

from mlpcore.errors import SpecError
from mlpcore.stopping import EPOCH_METRIC, MedianRule, median_reason
from mlpcore.sweep import (
    SweepSpec,
    config_count,
    expand_sweep,
    metric_warnings,
    stage_bounds,
    sweep_size,
)

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
GRID = {"activation": ["relu", "tanh"], "lr": [0.1, 0.01, 0.001]}


def test_each_configuration_runs_with_seeds_seed_to_seed_plus_k_minus_one():
    sweep = SweepSpec(base={**BASE, "seed": 7}, grid=GRID, repeats=3)
    runs = expand_sweep(sweep, max_runs=100)
    assert len(runs) == sweep_size(sweep) == 18 and config_count(sweep) == 6
    assert [(r.spec.seed, r.repeat) for r in runs[:3]] == [(7, 0), (8, 1), (9, 2)]
    assert runs[0].varied == runs[1].varied == runs[2].varied == {"activation": "relu", "lr": 0.1}
    assert runs[3].varied == {"activation": "relu", "lr": 0.01} and runs[3].spec.seed == 7
    # the seed is no part of the fusion key: all 18 runs can train as one fused model
    assert len({r.spec.fusion_key() for r in runs}) == 1


def test_a_varied_seed_is_the_configurations_own_and_stays_unshifted_in_varied():
    sweep = SweepSpec(base=BASE, grid={"seed": [0, 10]}, repeats=2)
    runs = expand_sweep(sweep, max_runs=10)
    assert [(r.varied, r.spec.seed, r.repeat) for r in runs] == [
        ({"seed": 0}, 0, 0),
        ({"seed": 0}, 1, 1),
        ({"seed": 10}, 10, 0),
        ({"seed": 10}, 11, 1),
    ]


def test_repeats_1_changes_nothing():
    plain = expand_sweep(SweepSpec(base=BASE, grid=GRID), max_runs=100)
    assert [(c.spec.seed, c.repeat) for c in plain] == [(0, 0)] * 6


@pytest.mark.parametrize("repeats", [0, 11, -1, True, 2.5])
def test_repeats_outside_1_to_10_is_refused_naming_the_field(repeats):
    with pytest.raises(ValidationError) as err:
        SweepSpec(base=BASE, grid=GRID, repeats=repeats)
    assert err.value.errors()[0]["loc"] == ("repeats",)


def test_max_runs_counts_runs_not_configurations():
    sweep = SweepSpec(base=BASE, grid=GRID, repeats=3)
    with pytest.raises(SpecError, match=r"18 runs \(6 configurations x 3 repeats\).*=16"):
        expand_sweep(sweep, max_runs=16)
    assert len(expand_sweep(sweep, max_runs=18)) == 18


def test_a_staged_sweep_bounds_each_stage_by_configurations_times_repeats():
    sweep = SweepSpec(
        strategy="staged",
        base=BASE,
        keep_top=2,
        repeats=3,
        stages=[{"activation": ["relu", "tanh", "sigmoid"]}, {"lr": [0.1, 0.01]}],
    )
    assert stage_bounds(sweep) == [9, 12] and sweep_size(sweep) == 21
    first = expand_sweep(sweep, max_runs=21)
    assert [(r.varied["activation"], r.spec.seed) for r in first[:4]] == [
        ("relu", 0),
        ("relu", 1),
        ("relu", 2),
        ("tanh", 0),
    ]
    with pytest.raises(SpecError, match=r"up to 21 runs \(7 configurations x 3 repeats\)"):
        expand_sweep(sweep, max_runs=20)


def test_seeds_that_would_pass_the_largest_seed_are_refused():
    near = 2**63 - 2
    with pytest.raises(SpecError, match="seed .* \\+ repeats 3 goes past"):
        expand_sweep(SweepSpec(base={**BASE, "seed": near}, grid=GRID, repeats=3), max_runs=99)
    staged = SweepSpec(strategy="staged", base=BASE, repeats=3, stages=[{"seed": [1, near]}])
    with pytest.raises(SpecError, match=r"^stage 1 \(seed\) value"):
        expand_sweep(staged, max_runs=99)


@pytest.mark.parametrize(
    "metric", ["final_val_loss", "final_val_accuracy", "best_val_loss", "best_val_accuracy"]
)
def test_a_val_metric_without_a_val_split_is_refused_naming_metric_and_val_fraction(metric):
    with pytest.raises(ValidationError) as err:
        SweepSpec(base=BASE, grid=GRID, metric=metric)
    message = str(err.value)
    assert f"metric {metric}" in message and "val_fraction is 0" in message
    assert SweepSpec(base={**BASE, "val_fraction": 0.1}, grid=GRID, metric=metric)


@pytest.mark.parametrize(
    ("search", "ok"),
    [
        ({"grid": {"val_fraction": [0.1, 0.2]}}, True),
        ({"grid": {"val_fraction": [0.0, 0.2]}}, False),
        ({"strategy": "random", "n": 3, "grid": {"val_fraction": {"uniform": [0.1, 0.3]}}}, True),
        ({"strategy": "random", "n": 3, "grid": {"val_fraction": {"choice": [0, 0.3]}}}, False),
        ({"strategy": "staged", "stages": [{"val_fraction": [0.1, 0.2]}]}, True),
        (
            {
                "strategy": "staged",
                "keep_top": 1,
                "stages": [{"lr": [0.1]}, {"val_fraction": [0.1]}],
            },
            False,  # the first stage's runs use the base's 0
        ),
    ],
)
def test_a_grid_or_stage_may_vary_the_val_split(search, ok):
    spec = {"base": BASE, "metric": "best_val_loss", **search}
    if ok:
        assert SweepSpec(**spec)
    else:
        with pytest.raises(ValidationError, match="val_fraction is 0"):
            SweepSpec(**spec)


def test_ranking_on_the_test_set_is_allowed_with_a_plain_warning():
    for metric in ("final_test_loss", "final_test_accuracy"):
        assert SweepSpec(base=BASE, grid=GRID, metric=metric)
        (warning,) = metric_warnings(metric)
        assert warning.startswith(f"the winner is chosen on the test set ({metric})")
        assert "val_fraction" in warning
    assert metric_warnings("final_train_loss") == metric_warnings("best_val_loss") == []


def test_val_metrics_rank_by_mode_and_stop_early_on_the_val_fields():
    val = {**BASE, "val_fraction": 0.2}
    assert SweepSpec(base=val, grid=GRID, metric="best_val_accuracy").resolved_mode() == "max"
    assert SweepSpec(base=val, grid=GRID, metric="best_val_loss").resolved_mode() == "min"
    assert EPOCH_METRIC["best_val_loss"] == EPOCH_METRIC["final_val_loss"] == "val_loss"
    rule = MedianRule(rule="median", grace_epochs=1)
    reason = median_reason(0.9, [0.2, 0.3], rule=rule, epoch=2, mode="min", name="val_loss")
    assert reason is not None and reason.startswith("median rule: val_loss 0.9 at epoch 2")
    assert median_reason(0.1, [0.2, 0.3], rule=rule, epoch=2, mode="min", name="val_loss") is None
