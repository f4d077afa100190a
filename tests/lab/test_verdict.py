"""Configurations of a sweep with repeats: the grouped leaderboard's numbers, the best
configuration and the verdict against seed noise (pure functions, hand-computed numbers)."""

import math

import pytest

from lab import ranking
from lab.configs import configurations
from lab.verdict import t_critical, verdict
from lab.views import sweep_verdict

METRIC = "final_train_loss"


def runs_of(configs, *, status="succeeded"):
    """Run records as the store gives them: {activation: [values...]} -> repeats in order; a
    value None is a failed run."""
    runs = []
    for activation, values in configs.items():
        for repeat, value in enumerate(values):
            done = value is not None
            runs.append(
                {
                    "id": f"{activation}-{repeat}",
                    "status": status if done else "failed",
                    "varied": {"activation": activation},
                    "spec": {"activation": activation, "seed": repeat},
                    "repeat": repeat,
                    "result": {METRIC: value} if done else None,
                }
            )
    return runs


def ranked(configs, mode="min"):
    return configurations(runs_of(configs), metric=METRIC, mode=mode)


def test_the_grouped_leaderboard_has_mean_sample_std_and_n_best_first():
    runs = runs_of({"tanh": [0.20, 0.22, 0.24], "relu": [0.10, 0.12, 0.14]})
    runs += runs_of({"gelu": [None, None]})  # two failed runs: unranked, last
    runs.append({**runs_of({"elu": [0.5]})[0], "status": "queued", "result": None})
    rows = ranking.config_leaderboard(runs, metric=METRIC, mode="min")
    assert [(r["rank"], r["varied"]["activation"], r["n"]) for r in rows] == [
        (1, "relu", 3),
        (2, "tanh", 3),
        (None, "gelu", 0),
        (None, "elu", 0),
    ]
    relu = rows[0]
    assert relu["mean"] == relu["value"] == pytest.approx(0.12)
    assert relu["std"] == pytest.approx(0.02)  # sqrt((0.02^2 + 0 + 0.02^2) / (3 - 1))
    assert relu["run_id"] == "relu-0" and relu["run_ids"] == ["relu-0", "relu-1", "relu-2"]
    assert rows[2]["mean"] is None and rows[2]["std"] is None


def test_failed_repeats_do_not_count_in_n_and_one_value_has_no_std():
    rows = ranking.config_leaderboard(
        runs_of({"tanh": [0.25], "relu": [0.3, None, 0.1]}), metric=METRIC, mode="min"
    )
    assert [(r["varied"]["activation"], r["mean"], r["n"]) for r in rows] == [
        ("relu", pytest.approx(0.2), 2),
        ("tanh", 0.25, 1),
    ]
    assert rows[0]["std"] == pytest.approx(math.sqrt(0.02)) and rows[1]["std"] is None
    assert rows[0]["run_id"] == "relu-2" and len(rows[0]["run_ids"]) == 3  # its best, all runs


def test_an_early_stopped_configuration_ranks_after_every_finished_one_and_is_never_best():
    runs = runs_of({"relu": [0.01, 0.02]}, status="stopped_early") + runs_of({"tanh": [0.5]})
    rows = ranking.config_leaderboard(runs, metric=METRIC, mode="min")
    assert [r["varied"]["activation"] for r in rows] == ["tanh", "relu"]
    assert ranking.config_best(runs, metric=METRIC, mode="min")["run_id"] == "tanh-0"
    alone = runs_of({"relu": [0.01]}, status="stopped_early")
    assert ranking.config_best(alone, metric=METRIC, mode="min") is None


def test_best_is_the_best_configuration_with_its_runs_in_the_old_shape():
    runs = runs_of({"tanh": [0.2, 0.3], "relu": [0.12, 0.1]})
    best = ranking.config_best(runs, metric=METRIC, mode="min")
    assert best == {
        "run_id": "relu-1",
        "metric": METRIC,
        "mode": "min",
        "value": pytest.approx(0.11),
        "config": {"varied": {"activation": "relu"}, "spec": {"activation": "relu", "seed": 1}},
        "runs": ["relu-0", "relu-1"],
        "mean": pytest.approx(0.11),
        "std": pytest.approx(math.sqrt(0.0002)),
        "n": 2,
    }


def test_the_sweep_ranks_configurations_only_with_repeats():
    runs = runs_of({"tanh": [0.2, 0.3], "relu": [0.12, 0.1]})
    sweep = {"metric": METRIC, "mode": "min", "spec": {"repeats": 2}}
    assert len(ranking.sweep_leaderboard(sweep, runs)) == 2
    assert len(ranking.sweep_leaderboard(sweep, runs, by="run")) == 4
    single = {**sweep, "spec": {}}
    assert [r["run_id"] for r in ranking.sweep_leaderboard(single, runs)][:2] == [
        "relu-1",
        "relu-0",
    ]
    assert "runs" not in ranking.sweep_best(single, runs)
    assert ranking.sweep_best(sweep, runs)["runs"] == ["relu-0", "relu-1"]


def test_a_clear_winner_beats_the_runner_up_by_more_than_seed_noise():
    result = verdict(
        ranked({"tanh": [0.20, 0.22, 0.24], "relu": [0.10, 0.12, 0.14]}), metric=METRIC
    )
    # Welch: se = sqrt(0.02^2/3 + 0.02^2/3); df = 4 -> t = 2.776
    se = math.sqrt(2 * 0.02**2 / 3)
    assert result["status"] == "clear" and result["diff"] == pytest.approx(0.1)
    assert result["se"] == pytest.approx(se) and result["ratio"] == pytest.approx(0.1 / se)
    assert result["df"] == pytest.approx(4) and result["threshold"] == 2.776
    assert result["best"]["varied"] == {"activation": "relu"} and result["best"]["n"] == 3
    assert result["runner_up"]["varied"] == {"activation": "tanh"}
    assert result["summary"].startswith("activation=relu vs activation=tanh")
    assert "a real winner" in result["summary"]


def test_a_gap_inside_seed_noise_is_no_winner():
    result = verdict(
        ranked({"relu": [0.10, 0.20, 0.30], "tanh": [0.15, 0.25, 0.35]}), metric=METRIC
    )
    assert result["status"] == "noise" and result["ratio"] == pytest.approx(0.05 / 0.08165, 1e-3)
    assert "within seed noise" in result["summary"]


def test_with_three_repeats_two_and_a_half_standard_errors_are_not_enough():
    # |diff| > 2 SE would call this a winner; Student's t at df = 4 (2.776) does not
    se = math.sqrt(2 * 0.1**2 / 3)
    gap = 2.5 * se
    configs = {"relu": [-0.1, 0.0, 0.1], "tanh": [gap - 0.1, gap, gap + 0.1]}
    result = verdict(ranked(configs), metric=METRIC)
    assert result["ratio"] == pytest.approx(2.5) and result["status"] == "noise"


def test_one_run_per_configuration_is_not_enough_repeats():
    result = verdict(ranked({"relu": [0.1], "tanh": [0.3]}), metric=METRIC)
    assert result["status"] == "not_enough_repeats" and result["diff"] == pytest.approx(0.2)
    assert result["se"] is None and result["ratio"] is None
    assert "not enough repeats" in result["summary"] and "1 vs 1" in result["summary"]
    mixed = verdict(ranked({"relu": [0.1, 0.11], "tanh": [0.3, None]}), metric=METRIC)
    assert mixed["status"] == "not_enough_repeats"  # tanh's second run failed


def test_no_runner_up_and_no_finished_run():
    assert verdict(ranked({"relu": [0.1, 0.2]}), metric=METRIC)["status"] == "no_runner_up"
    assert verdict(ranked({"relu": [None, None]}), metric=METRIC) is None


def test_no_seed_noise_at_all_is_a_difference_or_a_tie():
    exact = verdict(ranked({"relu": [0.1, 0.1], "tanh": [0.2, 0.2]}), metric=METRIC)
    assert exact["status"] == "clear" and exact["se"] == 0 and exact["ratio"] is None
    assert exact["df"] is None  # infinite: JSON has no infinity
    tie = verdict(ranked({"relu": [0.1, 0.1], "tanh": [0.1, 0.1]}), metric=METRIC)
    assert tie["status"] == "noise" and tie["summary"].endswith("a tie")


def test_accuracy_ranks_the_highest_mean_first():
    result = verdict(ranked({"relu": [0.80, 0.82], "tanh": [0.90, 0.91]}, mode="max"), metric="m")
    assert result["best"]["varied"] == {"activation": "tanh"}


def test_the_sweep_verdict_uses_the_sweeps_metric_and_mode():
    runs = runs_of({"relu": [0.1, 0.12], "tanh": [0.3, 0.31]})
    assert sweep_verdict({"metric": METRIC, "mode": "max"}, runs)["best"]["varied"] == {
        "activation": "tanh"
    }


@pytest.mark.parametrize(
    ("df", "t"), [(1, 12.706), (2.9, 4.303), (4, 2.776), (30, 2.042), (31, 2.0), (math.inf, 2.0)]
)
def test_critical_values_round_the_degrees_of_freedom_down(df, t):
    assert t_critical(df) == t
