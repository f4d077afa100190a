"""Early-stopping rules as pure decisions: median and ASHA, in both modes."""

import math

import pytest
from pydantic import TypeAdapter, ValidationError

from mlpcore.stopping import (
    AshaRule,
    EarlyStopping,
    MedianRule,
    asha_rungs,
    needs_peers,
    stop_reason,
)
from mlpcore.sweep import SweepSpec

MEDIAN = MedianRule(rule="median", grace_epochs=2, min_peers=2)
ASHA = AshaRule(rule="asha", grace_epochs=1, reduction_factor=3)


def decide(rule, value, peers, *, epoch, epochs=30, mode="min"):
    return stop_reason(rule, value, peers, epoch=epoch, epochs=epochs, mode=mode, name="train_loss")


def test_median_stops_a_run_worse_than_the_median_of_the_others():
    reason = decide(MEDIAN, 0.9, [0.2, 0.5, 0.4], epoch=3)
    assert reason is not None
    assert "median rule: train_loss 0.9 at epoch 3" in reason and "median 0.4" in reason
    assert decide(MEDIAN, 0.4, [0.2, 0.5, 0.4], epoch=3) is None  # equal: not worse
    assert decide(MEDIAN, 0.3, [0.2, 0.5, 0.4], epoch=3) is None


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert decide(MEDIAN, 0.34, [0.2, 0.5], epoch=3) is None  # median 0.35
    assert decide(MEDIAN, 0.36, [0.2, 0.5], epoch=3) is not None
    assert decide(MEDIAN, 0.36, [0.2, 0.5, 0.3, 0.4], epoch=3) is not None  # median 0.35


def test_median_waits_for_the_grace_epochs_and_enough_peers():
    assert decide(MEDIAN, 9.0, [0.1, 0.2], epoch=2) is None  # e <= grace
    assert decide(MEDIAN, 9.0, [0.1], epoch=3) is None  # one peer < min_peers


def test_median_in_max_mode_stops_the_lower_accuracy():
    assert decide(MEDIAN, 0.5, [0.8, 0.9], epoch=3, mode="max") is not None
    assert decide(MEDIAN, 0.95, [0.8, 0.9], epoch=3, mode="max") is None


def test_missing_or_nan_values_count_as_the_worst():
    assert decide(MEDIAN, None, [0.2, 0.3], epoch=3) is not None
    assert decide(MEDIAN, 0.5, [None, math.nan, 0.9], epoch=3) is None


def test_asha_rungs_grow_by_the_reduction_factor_before_the_last_epoch():
    assert asha_rungs(ASHA, 30) == [1, 3, 9, 27]
    assert asha_rungs(AshaRule(rule="asha", grace_epochs=2, reduction_factor=2), 16) == [2, 4, 8]
    assert asha_rungs(ASHA, 1) == []


def test_asha_keeps_the_best_third_of_the_runs_at_a_rung():
    peers = [0.1, 0.2, 0.3, 0.4, 0.5]  # with this run, 6 reached the rung: 2 go on
    assert decide(ASHA, 0.15, peers, epoch=3) is None  # rank 2
    reason = decide(ASHA, 0.25, peers, epoch=3)
    assert reason is not None and "ranks 3 of the 6 runs" in reason and "best 2" in reason


def test_asha_lets_the_first_runs_at_a_rung_go_on_and_rounds_up():
    assert decide(ASHA, 5.0, [], epoch=3) is None  # alone at the rung
    assert decide(ASHA, 5.0, [0.1], epoch=3) is not None  # 2 reached: ceil(2/3) = 1 goes on
    assert decide(ASHA, 0.2, [0.1, 0.3, 0.4], epoch=3) is None  # 4 reached: 2 go on


def test_asha_decides_only_at_rungs_and_ties_go_on():
    assert decide(ASHA, 9.0, [0.1, 0.2, 0.3], epoch=2) is None  # 2 is no rung
    assert decide(ASHA, 0.1, [0.1, 0.1, 0.1, 0.1], epoch=9) is None


def test_asha_in_max_mode():
    assert decide(ASHA, 0.95, [0.5, 0.6], epoch=1, mode="max") is None
    assert decide(ASHA, 0.55, [0.5, 0.6], epoch=1, mode="max") is not None


def test_no_decision_needs_the_peers_after_the_last_epoch_or_inside_the_grace():
    assert not needs_peers(MEDIAN, epoch=2, epochs=10)
    assert needs_peers(MEDIAN, epoch=3, epochs=10)
    assert not needs_peers(MEDIAN, epoch=10, epochs=10)
    assert [e for e in range(1, 31) if needs_peers(ASHA, epoch=e, epochs=30)] == [1, 3, 9, 27]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rule": "hyperband"}, "does not match any of the expected tags"),
        ({"rule": "asha", "reduction_factor": 1}, "greater than or equal to 2"),
        ({"rule": "asha", "grace_epochs": 0}, "greater than or equal to 1"),
        ({"rule": "median", "grace_epochs": -1}, "greater than or equal to 0"),
        ({"rule": "median", "patience": 3}, "Extra inputs"),
    ],
)
def test_a_sweep_validates_its_early_stopping(body, message):
    with pytest.raises(ValidationError, match=message):
        SweepSpec(grid={"lr": [0.1]}, early_stopping=body)


def test_a_sweep_takes_either_rule():
    sweep = SweepSpec(grid={"lr": [0.1]}, early_stopping={"rule": "median"})
    assert sweep.early_stopping == MedianRule(rule="median", grace_epochs=1, min_peers=2)
    asha = SweepSpec(grid={"lr": [0.1]}, early_stopping={"rule": "asha", "grace_epochs": 2})
    assert asha.early_stopping == AshaRule(rule="asha", grace_epochs=2, reduction_factor=3)


@pytest.mark.parametrize(
    "rule",
    [
        {"rule": "median", "grace_epochs": True},
        {"rule": "asha", "reduction_factor": True},
        {"rule": "median", "grace_epochs": 2**63},
    ],
)
def test_rules_refuse_booleans_and_counts_past_int64(rule):
    with pytest.raises(ValidationError):
        TypeAdapter(EarlyStopping).validate_python(rule)
