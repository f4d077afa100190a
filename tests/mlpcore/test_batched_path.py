"""The batched path on a CPU (`train_group(batched=True)`): one bmm over the stack, the GPU's
arithmetic, agrees with the exact per-model path to float32 rounding, so CI runs the GPU's
code without a GPU."""

import pytest
import torch

from mlpcore.fused import RunResult, train_group
from mlpcore.model import StackedMLP
from mlpcore.spec import RunSpec
from tests.support.training import StopAfter, mixed_specs

BASE = RunSpec(dataset="synthetic", hidden=[16, 8], epochs=4, device="cpu")


def mixed_group(optimizer: str) -> list[RunSpec]:
    return mixed_specs(BASE, optimizer)


def assert_close(batched: RunResult, exact: RunResult, rel: float = 1e-4) -> None:
    """Same epochs and statuses; losses within float32 rounding carried over a few epochs."""
    assert (batched.status, batched.reason) == (exact.status, exact.reason)
    assert len(batched.epochs) == len(exact.epochs)
    for a, b in zip(batched.epochs, exact.epochs, strict=True):
        assert (a.epoch, a.lr) == (b.epoch, b.lr)
        assert a.train_loss == pytest.approx(b.train_loss, rel=rel)
        assert a.test_loss == pytest.approx(b.test_loss, rel=rel)
        assert a.test_accuracy == pytest.approx(b.test_accuracy, abs=0.02)


def epochs_of(results: list[RunResult]) -> list[list[dict]]:
    return [[m.to_dict() | {"seconds": 0} for m in r.epochs] for r in results]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_the_batched_path_agrees_with_the_exact_path(optimizer):
    specs = mixed_group(optimizer)
    exact = train_group(specs, models_per_pass=8)
    batched = train_group(specs, models_per_pass=8, batched=True)
    assert all(r.status == "succeeded" for r in batched)
    for a, b in zip(batched, exact, strict=True):
        assert_close(a, b)


def test_cancel_and_divergence_masks_on_the_batched_path():
    sgd = BASE.model_copy(update={"optimizer": "sgd", "lr": 0.05, "epochs": 3})
    specs = [
        sgd.model_copy(update={"seed": 1}),
        sgd.model_copy(update={"lr": 1e6}),  # diverges in epoch 1
        sgd.model_copy(update={"activation": "tanh", "seed": 2}),
        sgd.model_copy(update={"seed": 3}),  # cancelled during epoch 2
    ]

    def run(batched: bool) -> list[RunResult]:
        callbacks = [None, None, None, StopAfter(2)]
        return train_group(
            specs, callbacks=callbacks, poll_every=4, models_per_pass=4, batched=batched
        )

    batched, exact = run(True), run(False)
    assert [r.status for r in batched] == ["succeeded", "diverged", "succeeded", "cancelled"]
    for a, b in zip(batched, exact, strict=True):
        assert_close(a, b)


def test_a_resumed_batched_group_equals_the_uninterrupted_one():
    specs = mixed_group("adam")
    states: list[dict] = []
    full = train_group(specs, on_checkpoint=states.append, batched=True)
    resumed = train_group(specs, resume=states[1], batched=True)
    assert epochs_of(resumed) == epochs_of(full)  # deterministic: bit for bit
    for a, b in zip(resumed, train_group(specs), strict=True):
        assert_close(a, b)


def count_bmm(model: StackedMLP, x: torch.Tensor, y: torch.Tensor) -> int:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model.loss_and_grad_(x, y)
    return sum(e.count for e in prof.key_averages() if e.key in ("aten::bmm", "aten::baddbmm"))


@pytest.mark.parametrize(("batched", "calls"), [(True, 5), (False, 5 * 6)])
def test_batched_means_one_bmm_per_layer_over_the_stack(batched, calls):
    # 2 layers: forward 2, backward 2 weight grads + 1 input grad; per model without batched
    model = StackedMLP([12, 8, 3], ["relu"] * 6, batched=batched)
    for i in range(6):
        model.init_model_(i, init="he", seed=i)
    x, y = torch.randn(32, 12), torch.randint(0, 3, (32,))
    assert count_bmm(model, x, y) == calls
