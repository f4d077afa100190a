"""The training step's shortcuts change no number: gradients written into reused buffers,
one-pass input scaling, memoised val splits and the one-sync evaluation; and a CPU pass holds
the models that fit in cache."""

import pytest
import torch

from mlpcore.data import load_dataset
from mlpcore.evaluate import evaluate
from mlpcore.memory import CPU_PASS_MAX, cpu_models_per_pass
from mlpcore.model import ACTIVATIONS, StackedMLP
from mlpcore.spec import RunSpec
from mlpcore.trainer import GroupTrainer

WIDTHS = [12, 9, 7, 5]


def stacked(activations: list[str]) -> StackedMLP:
    model = StackedMLP(WIDTHS, activations)
    for i in range(len(activations)):
        model.init_model_(i, init="he", seed=i)
    return model


def grads_of(model: StackedMLP, x: torch.Tensor, y: torch.Tensor, part: slice) -> list:
    loss = model.loss_and_grad_(x, y, models=part)
    return [loss, *(p.grad[part].clone() for p in model.parameters())]


@pytest.mark.parametrize("acts", [["relu"] * 3, list(ACTIVATIONS)])
def test_gradients_leave_no_trace_between_steps(acts):
    """Batches of other sizes and slices in between leave each step's numbers unchanged."""
    warm, x, y = stacked(acts), torch.randn(6, 12), torch.randint(0, 5, (6,))
    for batch, part in [(6, slice(None)), (3, slice(1, 3)), (6, slice(0, 2)), (4, slice(None))]:
        warm.loss_and_grad_(x[:batch], y[:batch], models=part)
    for part in (slice(None), slice(1, 3)):
        got, expected = grads_of(warm, x, y, part), grads_of(stacked(acts), x, y, part)
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_features_scale_as_a_float_copy_divided():
    x = torch.randint(0, 256, (64, 784), dtype=torch.uint8)
    assert torch.equal(load_dataset("mnist-5k").features(x), x.float().div(255.0))


def test_a_val_split_is_made_once_per_dataset_and_fraction():
    data = load_dataset("synthetic")
    split = data.split_val(0.2)
    assert data.split_val(0.2) is split and data.subset(100) is data.subset(100)
    other = data.split_val(0.25)
    assert len(other.y_val) != len(split.y_val)
    assert torch.equal(data.split_val(0.2).x_val, split.x_val)


def test_evaluation_returns_the_confusion_on_the_cpu():
    data, model = load_dataset("synthetic"), StackedMLP([32, 8, 4], ["relu", "tanh"])
    x = data.test_features()
    result = evaluate(model, [slice(0, 1), slice(1, 2)], x, data.y_test, 4, confusion=True)
    assert result.confusion is not None and result.confusion.device.type == "cpu"
    assert result.confusion.sum(dim=(1, 2)).tolist() == [len(data.y_test)] * 2
    assert len(result.loss) == len(result.accuracy) == 2


def test_a_cpu_pass_holds_the_models_that_fit_in_cache():
    study = RunSpec(hidden=[512, 256, 128])
    assert cpu_models_per_pass(study, 784, 10) == 1  # 9 MB of weights, grads and Adam state
    assert cpu_models_per_pass(study.model_copy(update={"hidden": [64]}), 784, 10) == 5
    assert cpu_models_per_pass(RunSpec(hidden=[4]), 8, 2) == CPU_PASS_MAX
    sgd = study.model_copy(update={"hidden": [128, 64], "optimizer": "sgd"})
    assert cpu_models_per_pass(sgd, 784, 10) == 3  # no second moment: more fit
    data = load_dataset("synthetic")
    specs = [RunSpec(dataset="synthetic", hidden=[16], seed=s) for s in range(20)]
    trainer = GroupTrainer(specs, [None] * 20, data, torch.device("cpu"))
    assert [p.stop - p.start for p in trainer.parts] == [16, 4]
