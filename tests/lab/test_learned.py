"""Learned search, pure (lab.learned, lab.studies): trials rebuilt from run records, the same
suggestions from the same results, and where each sampler may ask without torch."""

import json
import subprocess
import sys

import pytest

from lab import learned, studies
from mlpcore.sweep import SweepSpec

SPACE = {
    "activation": ["relu", "tanh"],
    "lr": {"loguniform": [1e-4, 1e-1]},
    "step_size": {"int": [2, 40]},
    "hidden": [[16], [32, 16]],
}


def sweep(strategy="tpe", **extra):
    base = {"dataset": "synthetic", "epochs": 2}
    return SweepSpec(strategy=strategy, base=base, space=SPACE, n=12, batch=4, **extra)


def records(points, *, status="succeeded", repeat=0):
    """Run records for the points, each succeeded with a loss that wants lr near 0.01."""
    return [
        {
            "id": f"r{i}",
            "status": status,
            "varied": p,
            "repeat": repeat,
            "last_epoch": 2,
            "result": {"final_train_loss": abs(p["lr"] - 0.01) + i * 1e-6},
        }
        for i, p in enumerate(points)
    ]


@pytest.mark.parametrize("strategy", ["tpe", "gp", "cmaes", "qmc"])
def test_the_same_finished_runs_ask_the_same_batch(strategy):
    spec = sweep(strategy)
    first = learned.first_points(spec, batch=4)
    assert first == learned.first_points(spec, batch=4)
    runs = records(first)
    ask = {"count": 4, "number": 2, "mode": "min", "torch_ok": True}
    second = learned.suggest(spec, runs, **ask)
    assert second == learned.suggest(spec, runs, **ask)
    assert len(second) == 4 and all(set(p) == set(SPACE) for p in second)
    if strategy != "qmc":  # QMC's points follow the trial count alone: its sequence
        assert second != learned.suggest(spec, runs, **{**ask, "number": 3})  # batches differ


def test_runs_are_told_by_state_and_a_repeat_joins_its_configuration():
    spec = sweep()
    points = learned.first_points(spec, batch=4)
    runs = records(points)
    runs[1]["status"] = "stopped_early"
    runs[2]["status"] = "failed"
    runs[3]["status"] = "running"
    runs.insert(1, {**runs[0], "id": "r0b", "repeat": 1, "result": {"final_train_loss": 9.0}})
    dists = {f: studies.distribution(a) for f, a in spec.space.items()}
    trials = studies.to_trials(runs, spec.space, dists, metric="final_train_loss", mode="min")
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "FAIL", "RUNNING"]
    assert trials[0].value == pytest.approx((runs[0]["result"]["final_train_loss"] + 9.0) / 2)
    assert trials[1].intermediate_values == {2: runs[2]["result"]["final_train_loss"]}
    assert trials[0].params["hidden"] == json.dumps(points[0]["hidden"])


def test_a_suggestion_holds_the_spaces_own_values():
    for point in learned.first_points(sweep(), batch=4):
        assert point["hidden"] in ([16], [32, 16]) and isinstance(point["step_size"], int)


def test_tpe_asks_near_the_best_after_its_startup():
    spec = sweep()
    runs = []
    for number in range(1, 4):  # 12 told trials: past TPE's 10 random ones
        runs += records(learned.suggest(spec, runs, count=4, number=number, mode="min",
                                        torch_ok=True))  # fmt: skip
        runs = [{**r, "id": f"r{i}"} for i, r in enumerate(runs)]
    asked = learned.suggest(spec, runs, count=4, number=4, mode="min", torch_ok=True)
    best = sorted(abs(r["varied"]["lr"] - 0.01) for r in runs)
    assert min(abs(p["lr"] - 0.01) for p in asked) <= best[len(best) // 2]


def test_a_gp_past_its_startup_needs_a_worker():
    spec = sweep("gp")
    runs = records(learned.first_points(spec, batch=4) * 3)
    runs = [{**r, "id": f"r{i}"} for i, r in enumerate(runs)]
    with pytest.raises(learned.NeedsWorker):
        learned.suggest(spec, runs, count=2, number=4, mode="min", torch_ok=False)
    assert len(learned.suggest(spec, runs, count=2, number=4, mode="min", torch_ok=True)) == 2


CHECK = """
import sys
from lab import learned
from mlpcore.sweep import SweepSpec
space = {"activation": ["relu", "tanh"], "lr": {"loguniform": [1e-4, 1e-1]}}
spec = SweepSpec(strategy="gp", base={"dataset": "synthetic"}, space=space, n=30, batch=%d)
points = learned.first_points(spec, batch=%d)
runs = [{"id": str(i), "status": "succeeded", "varied": p, "repeat": 0,
         "result": {"final_train_loss": p["lr"]}} for i, p in enumerate(points)]
learned.suggest(spec, runs, count=2, number=2, mode="min", torch_ok=True)
print("torch" in sys.modules)
"""


@pytest.mark.parametrize(("told", "torch"), [(9, "False"), (10, "True")])
def test_a_gp_imports_torch_only_past_its_random_startup(told, torch):
    """Why the API may ask a GP's startup batches itself: a fresh interpreter shows it."""
    code = CHECK % (told, told)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == torch
