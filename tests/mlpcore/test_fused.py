"""train_group: each model of a fused group trains exactly as it would alone."""

import pytest

from mlpcore.fused import Callback, RunResult, train_group
from mlpcore.spec import RunSpec
from mlpcore.train import train
from tests.support.training import StopAfter, mixed_specs

BASE = RunSpec(dataset="synthetic", hidden=[16, 8], epochs=3, device="cpu")


def mixed_group(optimizer: str) -> list[RunSpec]:
    return mixed_specs(BASE, optimizer)


def assert_same_epochs(fused: RunResult, solo: RunResult, rel: float = 1e-4) -> None:
    assert len(fused.epochs) == len(solo.epochs)
    for a, b in zip(fused.epochs, solo.epochs, strict=True):
        assert (a.epoch, a.lr) == (b.epoch, b.lr)
        assert a.train_loss == pytest.approx(b.train_loss, rel=rel)
        assert a.test_loss == pytest.approx(b.test_loss, rel=rel)
        assert a.test_accuracy == pytest.approx(b.test_accuracy, abs=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_every_model_of_a_mixed_group_equals_its_solo_run(optimizer):
    specs = mixed_group(optimizer)
    results = train_group(specs)
    assert [r.spec for r in results] == specs  # the caller's order, not the stack's
    for spec, result in zip(specs, results, strict=True):
        assert result.status == "succeeded"
        assert_same_epochs(result, train(spec))


def test_a_shared_seed_group_equals_solo_runs():
    # one seed: every model draws the same batches, so the group indexes the input once
    specs = [
        BASE.model_copy(update={"activation": a, "lr": lr})
        for a, lr in [("relu", 0.01), ("tanh", 0.003), ("relu", 0.001)]
    ]
    for spec, result in zip(specs, train_group(specs), strict=True):
        assert_same_epochs(result, train(spec))


def test_a_diverging_model_stops_alone():
    sgd = BASE.model_copy(update={"optimizer": "sgd", "lr": 0.05})
    specs = [
        sgd.model_copy(update={"seed": 1}),
        sgd.model_copy(update={"lr": 1e6}),
        sgd.model_copy(update={"activation": "tanh", "seed": 2}),
    ]
    ends: list[RunResult] = []
    callbacks = [None, _OnEnd(ends), None]
    fast, broken, slow = train_group(specs, callbacks=callbacks, poll_every=4)
    assert broken.status == "diverged" and broken.result is None
    assert broken.reason == "loss became non-finite in epoch 1" and broken.epochs == []
    assert ends == [broken]
    for spec, result in [(specs[0], fast), (specs[2], slow)]:
        assert result.status == "succeeded"
        assert_same_epochs(result, train(spec))


class _OnEnd(Callback):
    def __init__(self, ends: list[RunResult]) -> None:
        self.ends = ends

    def on_end(self, result: RunResult) -> None:
        self.ends.append(result)


def test_a_cancelled_model_stops_alone():
    specs = [BASE.model_copy(update={"seed": s, "lr": 0.01}) for s in range(3)]
    results = train_group(specs, callbacks=[None, StopAfter(2), None])
    assert results[1].status == "cancelled" and len(results[1].epochs) == 1
    assert results[1].reason == "cancelled during epoch 2"
    for i in (0, 2):
        assert_same_epochs(results[i], train(specs[i]))


def test_the_group_ends_early_when_every_model_stopped():
    specs = [BASE.model_copy(update={"seed": s, "epochs": 50}) for s in range(2)]
    stoppers = [StopAfter(0), StopAfter(2)]
    results = train_group(specs, callbacks=stoppers)
    assert [r.status for r in results] == ["cancelled", "cancelled"]
    assert stoppers[1].polls == 3  # polled no more once it stopped
    assert [len(r.epochs) for r in results] == [0, 1]


@pytest.mark.parametrize("per_pass", [1, 3, 8])
def test_passes_over_slices_of_the_stack_change_nothing(per_pass):
    specs = mixed_group("adam")
    reference = train_group(specs, models_per_pass=8)
    for a, b in zip(train_group(specs, models_per_pass=per_pass), reference, strict=True):
        assert_same_epochs(a, b)


def test_on_cpu_fused_equals_solo_bit_for_bit():
    # per-model GEMMs and optimizer tensors: a model computes exactly what it computes alone
    specs = mixed_group("adam")
    for spec, result in zip(specs, train_group(specs), strict=True):
        assert result.epochs and [m.to_dict() | {"seconds": 0} for m in result.epochs] == [
            m.to_dict() | {"seconds": 0} for m in train(spec).epochs
        ]
