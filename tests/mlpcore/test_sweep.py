"""Sweep expansion: grids, random search, limits and errors that name the bad configuration."""

import math

import pytest
from pydantic import ValidationError

from mlpcore.errors import SpecError
from mlpcore.sweep import SweepSpec, expand_sweep, sweep_size, varied_fields

STUDY_GRID = {
    "activation": ["sigmoid", "relu", "tanh", "leaky_relu"],
    "lr": [1e-4, 1e-3, 1e-2],
    "step_size": [20, 30, 40],
}


def test_grid_is_the_cartesian_product_over_the_base():
    sweep = SweepSpec(base={"dataset": "synthetic", "epochs": 3}, grid=STUDY_GRID)
    configs = expand_sweep(sweep, max_runs=100)
    assert len(configs) == sweep_size(sweep) == 36
    assert varied_fields(sweep) == ["activation", "lr", "step_size"]
    assert {(c.spec.activation, c.spec.lr, c.spec.step_size) for c in configs} == {
        (a, lr, s)
        for a in STUDY_GRID["activation"]
        for lr in STUDY_GRID["lr"]
        for s in STUDY_GRID["step_size"]
    }
    assert all(c.spec.epochs == 3 and c.spec.dataset == "synthetic" for c in configs)
    assert configs[0].varied == {"activation": "sigmoid", "lr": 1e-4, "step_size": 20}


def test_random_search_is_seeded_and_in_range():
    grid = {
        "lr": {"loguniform": [1e-4, 1e-1]},
        "activation": {"choice": ["relu", "gelu"]},
        "gamma": {"uniform": [0.2, 0.5]},
    }
    first = expand_sweep(SweepSpec(strategy="random", n=20, seed=3, grid=grid), max_runs=50)
    again = expand_sweep(SweepSpec(strategy="random", n=20, seed=3, grid=grid), max_runs=50)
    assert [c.varied for c in first] == [c.varied for c in again]
    assert all(1e-4 <= c.spec.lr <= 1e-1 and 0.2 <= c.spec.gamma <= 0.5 for c in first)
    assert {c.spec.activation for c in first} == {"relu", "gelu"}
    assert len({round(math.log10(c.spec.lr)) for c in first}) > 1


def test_one_bad_value_rejects_the_sweep_naming_the_config():
    sweep = SweepSpec(grid={"lr": [1e-3, -1.0], "epochs": [1, 2]})
    with pytest.raises(SpecError, match=r"configuration 2 \{'lr': -1.0, 'epochs': 1\}: lr"):
        expand_sweep(sweep, max_runs=100)


def test_bad_base_is_named_as_base():
    with pytest.raises(SpecError, match="^base: epochs"):
        expand_sweep(SweepSpec(base={"epochs": 0}, grid={"lr": [0.1]}), max_runs=10)


def test_huge_grid_is_refused_before_expanding():
    sweep = SweepSpec(grid={"seed": list(range(1000)), "epochs": list(range(1, 1001))})
    with pytest.raises(SpecError, match="1000000 configurations.*max_runs_per_sweep=500"):
        expand_sweep(sweep, max_runs=500)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"grid": {"learning_rate": [0.1]}}, "unknown spec field"),
        ({"base": {"foo": 1}, "grid": {"lr": [0.1]}}, "unknown spec field"),
        ({"grid": {}}, "at least one field"),
        ({"grid": {"lr": []}}, "empty"),
        ({"grid": {"lr": {"choice": [0.1]}}}, "takes a list"),
        ({"strategy": "random", "grid": {"lr": [0.1]}}, "needs n"),
        ({"grid": {"lr": [0.1]}, "colour": "red"}, "Extra inputs"),
        ({"strategy": "random", "n": 2, "grid": {"lr": {"loguniform": [0, 1]}}}, "greater than 0"),
    ],
)
def test_malformed_sweeps(body, message):
    with pytest.raises(ValidationError, match=message):
        SweepSpec(**body)


def test_mode_defaults_follow_the_metric():
    assert SweepSpec(grid={"lr": [0.1]}).resolved_mode() == "min"
    assert SweepSpec(grid={"lr": [0.1]}, metric="final_test_accuracy").resolved_mode() == "max"
    assert SweepSpec(grid={"lr": [0.1]}, mode="max").resolved_mode() == "max"
