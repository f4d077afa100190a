"""A run continued from its final state to more epochs trains exactly as a run trained that
long from the start (CPU, bit for bit), alone or fused with runs of other groups; a cosine
schedule, another spec or mixed start epochs are refused before any training."""

from __future__ import annotations

import pytest
import torch

from mlpcore import checkpoint
from mlpcore.continuable import continuable
from mlpcore.errors import CheckpointError, SpecError
from mlpcore.fused import RunResult, train_group
from mlpcore.spec import RunSpec
from tests.support.training import StopAfter

BASE = RunSpec(dataset="synthetic", hidden=[16, 8], epochs=5, lr=0.02, device="cpu", seed=1)


def same(a: RunResult, b: RunResult) -> None:
    """Equal epochs (all but the wall-clock seconds), result numbers and weights."""
    strip = [{k: v for k, v in m.to_dict().items() if k != "seconds"} for m in a.epochs]
    assert strip == [{k: v for k, v in m.to_dict().items() if k != "seconds"} for m in b.epochs]
    assert a.weights is not None and b.weights is not None
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert a.result is not None and b.result is not None
    for key in ("final_train_loss", "final_test_accuracy", "best_epoch"):
        assert a.result[key] == b.result[key]


def ended(spec: RunSpec, epochs: int) -> dict:
    """The final state of `spec` trained for `epochs`, through its stored bytes."""
    (short,) = train_group([spec.model_copy(update={"epochs": epochs})])
    assert short.status == "succeeded" and short.resume_state is not None
    return checkpoint.from_bytes(checkpoint.to_bytes(short.resume_state()))


@pytest.mark.parametrize(
    "update",
    [
        {"scheduler": "step", "step_size": 2, "gamma": 0.5},
        {"scheduler": "none"},
        {"scheduler": "step", "step_size": 3, "optimizer": "sgd", "momentum": 0.9},
        {"scheduler": "step", "optimizer": "adamw", "weight_decay": 0.01, "val_fraction": 0.2},
    ],
)
def test_a_continued_run_equals_one_trained_that_long(update):
    spec = BASE.model_copy(update=update)
    (whole,) = train_group([spec])
    (continued,) = train_group([spec], continue_from=[ended(spec, 2)])
    assert [m.epoch for m in continued.epochs] == [1, 2, 3, 4, 5]
    same(continued, whole)
    if spec.val_fraction:
        best, expected = continued.best_weights, whole.best_weights
        assert best is not None and expected is not None
        assert all(torch.equal(best[k], expected[k]) for k in expected)


def test_runs_of_other_groups_continue_fused_as_their_solo_runs():
    specs = [
        BASE.model_copy(update={"lr": 0.01, "activation": "tanh", "step_size": 2}),
        BASE.model_copy(update={"lr": 0.03, "seed": 4, "scheduler": "none"}),
        BASE.model_copy(update={"lr": 0.02, "seed": 2, "activation": "gelu"}),
    ]
    short = [s.model_copy(update={"epochs": 3}) for s in specs]
    first = train_group(short[:2])  # one group of two, and one run alone
    second = train_group(short[2:])
    states = [r.resume_state() for r in first + second if r.resume_state is not None]
    continued = train_group(specs, continue_from=states, models_per_pass=2)
    for spec, result in zip(specs, continued, strict=True):
        same(result, train_group([spec])[0])
    assert continued[0].result["runtime_s"] > first[0].result["runtime_s"]


def test_what_cannot_continue_is_refused_before_training():
    cosine = BASE.model_copy(update={"scheduler": "cosine"})
    assert "anneals the lr over the run's total epochs" in (continuable(cosine, 8) or "")
    assert continuable(BASE, 5) is not None and continuable(BASE, 6) is None
    (short,) = train_group([cosine.model_copy(update={"epochs": 2})])
    with pytest.raises(SpecError, match="anneals"):
        train_group([cosine], continue_from=[short.resume_state()])
    with pytest.raises(CheckpointError, match="another spec"):
        train_group([BASE.model_copy(update={"lr": 0.5})], continue_from=[ended(BASE, 2)])
    mixed = [ended(BASE, 2), ended(BASE.model_copy(update={"seed": 3}), 3)]
    two = [BASE, BASE.model_copy(update={"seed": 3})]
    with pytest.raises(CheckpointError, match="share their epoch"):
        train_group(two, continue_from=mixed)


def test_only_a_succeeded_run_offers_its_state():
    (cancelled,) = train_group([BASE], callbacks=[StopAfter(0)])
    assert cancelled.status == "cancelled" and cancelled.resume_state is None
