"""What a run leaves: a fixed val split, val metrics, its best epoch, confusion matrices and
weights that rebuild as a plain torch model giving exactly the reported accuracy."""

import pytest
import torch

from mlpcore import checkpoint
from mlpcore.data import load_dataset
from mlpcore.errors import DatasetError
from mlpcore.export import build_sequential
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec

BASE = RunSpec(
    dataset="synthetic", hidden=[16, 8], epochs=5, lr=0.02, step_size=2, gamma=0.5, device="cpu"
)
VAL = BASE.model_copy(update={"val_fraction": 0.2})


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def test_the_val_split_is_fixed_disjoint_and_independent_of_the_run():
    data = load_dataset("synthetic")
    first, again = data.split_val(0.2), data.split_val(0.2)
    assert torch.equal(first.x_val, again.x_val) and torch.equal(first.y_train, again.y_train)
    assert len(first.y_val) == round(0.2 * len(data.y_train))
    assert len(first.y_val) + len(first.y_train) == len(data.y_train)
    rows = {tuple(r.tolist()) for r in data.x_train}
    val_rows = {tuple(r.tolist()) for r in first.x_val}
    train_rows = {tuple(r.tolist()) for r in first.x_train}
    assert val_rows | train_rows == rows and not val_rows & train_rows
    assert data.split_val(0) is data
    with pytest.raises(DatasetError, match="val_fraction"):
        data.subset(1).split_val(0.5)


def test_val_metrics_every_epoch_and_the_best_epoch_by_val_loss():
    (result,) = train_group([VAL])
    val_losses = [m.val_loss for m in result.epochs]
    assert all(v is not None for v in val_losses)
    assert all(m.val_accuracy is not None for m in result.epochs)
    best = min(range(len(val_losses)), key=val_losses.__getitem__)
    assert result.result["best_epoch"] == best + 1 and result.result["best_epoch_by"] == "val_loss"
    assert result.result["best_val_loss"] == min(val_losses)
    assert result.result["final_val_loss"] == val_losses[-1]
    assert result.result["best_val_accuracy"] == max(m.val_accuracy for m in result.epochs)


def test_val_loss_is_measured_on_the_held_out_samples():
    (result,) = train_group([VAL])
    split = load_dataset("synthetic").split_val(0.2)
    model = build_sequential(result.model_config, result.weights)
    assert accuracy(model, split.x_val, split.y_val) == pytest.approx(
        result.epochs[-1].val_accuracy, abs=1e-6
    )


def test_a_criterion_with_mode_max_picks_the_best_accuracy_epoch():
    (result,) = train_group([VAL], best_by=[("val_accuracy", "max")])
    values = [m.val_accuracy for m in result.epochs]
    assert result.result["best_epoch"] == values.index(max(values)) + 1


def test_without_a_val_split_the_best_epoch_is_by_train_loss_and_no_best_weights():
    (result,) = train_group([BASE])
    losses = [m.train_loss for m in result.epochs]
    assert result.result["best_epoch"] == losses.index(min(losses)) + 1
    assert result.best_weights is None and result.weights is not None


def test_confusion_matrix_counts_the_test_set_and_matches_the_accuracy():
    (result,) = train_group([BASE])
    data = load_dataset("synthetic")
    matrix = torch.tensor(result.result["confusion"])
    assert matrix.shape == (4, 4) and matrix.sum().item() == len(data.y_test)
    assert matrix.sum(dim=1).tolist() == torch.bincount(data.y_test, minlength=4).tolist()
    assert matrix.trace().item() / len(data.y_test) == pytest.approx(
        result.result["final_test_accuracy"], abs=1e-9
    )
    per_class = result.result["per_class_accuracy"]
    assert per_class == [row[k] / sum(row) for k, row in enumerate(matrix.tolist())]
    assert result.result["class_names"] == ["class 0", "class 1", "class 2", "class 3"]


@pytest.mark.parametrize("dataset", ["synthetic", "digits"])  # float inputs; uint8 pixels
def test_the_rebuilt_model_gives_exactly_the_reported_test_accuracy(dataset):
    specs = [
        BASE.model_copy(update={"activation": a, "seed": s, "lr": lr, "dataset": dataset})
        for a, s, lr in [("relu", 0, 0.02), ("tanh", 1, 0.01), ("gelu", 2, 0.03)]
    ]
    data = load_dataset(dataset)
    for result in train_group(specs):
        model = build_sequential(result.model_config, result.weights)
        assert accuracy(model, data.x_test, data.y_test) == result.result["final_test_accuracy"]


def test_best_weights_rebuild_the_best_epoch():
    (result,) = train_group([VAL.model_copy(update={"epochs": 6, "lr": 0.2})])
    best = result.result["best_epoch"]
    data = load_dataset("synthetic")
    model = build_sequential(result.model_config, result.best_weights)
    assert accuracy(model, data.x_test, data.y_test) == result.epochs[best - 1].test_accuracy
    matrix = torch.tensor(result.result["best_confusion"])
    assert matrix.trace().item() / len(data.y_test) == pytest.approx(
        result.epochs[best - 1].test_accuracy, abs=1e-9
    )


def test_each_fused_run_stores_the_weights_its_solo_run_would():
    specs = [
        VAL.model_copy(update={"activation": a, "seed": s, "lr": lr})
        for a, s, lr in [("relu", 0, 0.02), ("sigmoid", 1, 0.05), ("relu", 2, 0.01)]
    ]
    fused = train_group(specs)
    for spec, run in zip(specs, fused, strict=True):
        (solo,) = train_group([spec])
        assert run.result == {**solo.result, "runtime_s": run.result["runtime_s"]}
        for which in ("weights", "best_weights"):
            mine, theirs = getattr(run, which), getattr(solo, which)
            assert mine.keys() == theirs.keys()
            assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_a_resumed_group_ends_with_the_same_best_epoch_weights_and_matrices():
    specs = [VAL.model_copy(update={"seed": s, "lr": 0.2}) for s in (0, 1)]
    states: list[bytes] = []
    full = train_group(specs, on_checkpoint=lambda s: states.append(checkpoint.to_bytes(s)))
    resumed = train_group(specs, resume=checkpoint.from_bytes(states[2]))
    for a, b in zip(full, resumed, strict=True):
        assert b.result == {**a.result, "runtime_s": b.result["runtime_s"]}
        assert all(torch.equal(a.best_weights[k], b.best_weights[k]) for k in a.best_weights)
        assert [m.val_loss for m in a.epochs] == [m.val_loss for m in b.epochs]


def test_a_diverged_run_leaves_no_weights():
    (result,) = train_group([BASE.model_copy(update={"lr": 1e6, "optimizer": "sgd"})])
    assert result.status == "diverged" and result.weights is None and result.result is None
