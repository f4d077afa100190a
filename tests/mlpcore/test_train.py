"""train(): a single run, checked against itself, torch's schedulers and a textbook loop."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from mlpcore.data import load_dataset
from mlpcore.errors import DeviceError, SpecError
from mlpcore.fused import epoch_order
from mlpcore.model import StackedMLP
from mlpcore.schedule import lr_schedule
from mlpcore.spec import RunSpec
from mlpcore.train import Callback, CallbackList, EpochMetrics, RunResult, resolve_device, train

BASE = RunSpec(dataset="synthetic", hidden=[16, 8], epochs=3, lr=0.01, device="cpu")


def losses(result: RunResult) -> list[tuple[float, float, float]]:
    return [(m.train_loss, m.test_loss, m.test_accuracy) for m in result.epochs]


def test_same_spec_and_seed_give_identical_epochs():
    assert losses(train(BASE)) == losses(train(BASE))
    assert losses(train(BASE)) != losses(train(BASE.model_copy(update={"seed": 1})))


def test_loss_falls_and_the_result_is_complete():
    result = train(BASE.model_copy(update={"epochs": 5}))
    assert result.status == "succeeded" and result.reason is None and result.device == "cpu"
    assert [m.epoch for m in result.epochs] == [1, 2, 3, 4, 5]
    assert result.epochs[-1].train_loss < 0.7 * result.epochs[0].train_loss
    assert result.epochs[-1].test_accuracy > 0.7
    final = result.epochs[-1]
    finals = {k: result.result[k] for k in ("final_train_loss", "final_test_loss")}
    assert finals == {"final_train_loss": final.train_loss, "final_test_loss": final.test_loss}
    assert result.result["final_test_accuracy"] == final.test_accuracy
    assert "final_val_loss" not in result.result  # no val split asked for
    assert result.result["runtime_s"] > 0 and all(m.seconds > 0 for m in result.epochs)


def test_a_short_real_mnist_run_learns():
    spec = RunSpec(dataset="mnist-5k", hidden=[64, 32], epochs=3, train_subset=1024, device="cpu")
    result = train(spec)
    assert result.epochs[-1].train_loss < 0.5 * result.epochs[0].train_loss
    assert result.epochs[-1].test_accuracy > 0.75


def test_record_has_the_server_shape():
    record = train(BASE.model_copy(update={"epochs": 1})).to_record()
    assert set(record) == {"spec", "status", "epochs", "result", "error", "device"}
    assert record["spec"] == BASE.model_copy(update={"epochs": 1}).model_dump(mode="json")
    assert set(record["epochs"][0]) == {
        "epoch",
        "train_loss",
        "test_loss",
        "test_accuracy",
        "lr",
        "seconds",
    }


def test_step_lr_changes_at_the_right_epochs():
    spec = BASE.model_copy(update={"epochs": 5, "scheduler": "step", "step_size": 2, "gamma": 0.5})
    assert [m.lr for m in train(spec).epochs] == [0.01 * f for f in (1, 1, 0.5, 0.5, 0.25)]
    flat = spec.model_copy(update={"scheduler": "none"})
    assert [m.lr for m in train(flat).epochs] == [0.01] * 5


@pytest.mark.parametrize("scheduler", ["step", "cosine"])
def test_schedules_equal_torch_schedulers_exactly(scheduler):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.003)
    torch_sched = (
        torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.3)
        if scheduler == "step"
        else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    )
    expected = []
    for _ in range(10):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        torch_sched.step()
    assert lr_schedule(lr=0.003, scheduler=scheduler, step_size=3, gamma=0.3, epochs=10) == expected


def test_cosine_lr_values():
    spec = BASE.model_copy(update={"epochs": 4, "scheduler": "cosine"})
    expected = [0.01 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert [m.lr for m in train(spec).epochs] == pytest.approx(expected, rel=1e-12)


def textbook_run(spec: RunSpec) -> list[tuple[float, float, float]]:
    """The same run as a student writes it: nn.Sequential, torch.optim, StepLR, F.cross_entropy,
    with train()'s initial weights (via export) and batch order (via epoch_order)."""
    data = load_dataset(spec.dataset).subset(spec.train_subset)
    stack = StackedMLP([data.num_features, *spec.hidden, data.num_classes], [spec.activation])
    stack.init_model_(0, init=spec.init, seed=spec.seed)
    model = stack.export(0)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=spec.step_size, gamma=spec.gamma)
    n, out = len(data.y_train), []
    for epoch in range(spec.epochs):
        total = 0.0
        order = epoch_order(spec.seed, epoch, n)
        for start in range(0, n, spec.batch_size):
            idx = order[start : start + spec.batch_size]
            loss = F.cross_entropy(model(data.features(data.x_train[idx])), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        with torch.no_grad():
            logits = model(data.test_features())
            test_loss = F.cross_entropy(logits, data.y_test).item()
            accuracy = (logits.argmax(1) == data.y_test).float().mean().item()
        out.append((total / n, test_loss, accuracy))
    return out


@pytest.mark.parametrize("dataset, subset", [("synthetic", None), ("mnist-5k", 640)])
def test_single_run_equals_a_textbook_torch_loop(dataset, subset):
    spec = RunSpec(
        dataset=dataset,
        hidden=[32, 16],
        activation="tanh",
        init="he",
        lr=0.005,
        epochs=4,
        step_size=2,
        gamma=0.5,
        batch_size=50,
        train_subset=subset,
        seed=3,
        device="cpu",
    )
    ours, theirs = losses(train(spec)), textbook_run(spec)
    for (a, b, c), (x, y, z) in zip(ours, theirs, strict=True):
        assert a == pytest.approx(x, rel=1e-5)
        assert b == pytest.approx(y, rel=1e-5)
        assert c == pytest.approx(z, abs=1e-6)


class Recorder(Callback):
    def __init__(self, stop_after_polls: int | None = None) -> None:
        self.metrics: list[EpochMetrics] = []
        self.ends: list[RunResult] = []
        self.polls = 0
        self.stop_after_polls = stop_after_polls

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.metrics.append(metrics)

    def should_stop(self) -> bool:
        self.polls += 1
        return self.stop_after_polls is not None and self.polls > self.stop_after_polls

    def on_end(self, result: RunResult) -> None:
        self.ends.append(result)


def test_callbacks_see_every_epoch_and_the_end():
    first, second = Recorder(), Recorder()
    result = train(BASE, callbacks=[first, second])
    for rec in (first, second):
        assert rec.metrics == result.epochs and rec.ends == [result]
        assert rec.polls >= 2  # mid-epoch (every 16 of 32 batches) and at epoch ends


def test_any_callback_can_cancel_and_completed_epochs_are_kept():
    stopper = Recorder(stop_after_polls=2)  # polls: e1 mid, e1 end, e2 mid
    result = train(BASE, callbacks=[Recorder(), stopper])
    assert result.status == "cancelled" and "epoch 2" in result.reason
    assert [m.epoch for m in result.epochs] == [1]
    assert result.result["final_train_loss"] == result.epochs[0].train_loss
    assert CallbackList([Recorder(), Recorder(stop_after_polls=0)]).should_stop()


def test_cancel_before_the_first_epoch_ends_leaves_no_result():
    result = train(BASE, callbacks=[Recorder(stop_after_polls=0)])
    assert result.status == "cancelled" and result.epochs == [] and result.result is None


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_cuda_is_a_device_error():
    with pytest.raises(DeviceError):
        train(BASE.model_copy(update={"device": "cuda:0"}))


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_absent_mps_is_a_device_error():
    with pytest.raises(DeviceError):
        resolve_device("mps")


def test_data_on_another_device_is_refused():
    data = load_dataset("synthetic")
    elsewhere = dataclasses.replace(data, x_train=data.x_train.to("meta"))
    with pytest.raises(SpecError, match="data is on meta"):
        train(BASE, data=elsewhere)
    assert train(BASE, data=data).status == "succeeded"


def test_a_group_of_mismatched_specs_is_refused():
    from mlpcore.fused import train_group

    with pytest.raises(SpecError, match="same dataset"):
        train_group([BASE, BASE.model_copy(update={"batch_size": 32})])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_matches_cpu_run():
    gpu = train(BASE.model_copy(update={"device": "cuda"}))
    assert gpu.device.startswith("cuda")
    for (a, b, _), (x, y, _) in zip(losses(gpu), losses(train(BASE)), strict=True):
        assert a == pytest.approx(x, rel=1e-3) and b == pytest.approx(y, rel=1e-3)


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("fused", [True, False])
def test_stacked_optimizer_equals_torch_optim_per_model(kind, fused):
    from mlpcore.optim import StackedOptimizer

    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(4, 5, 3, generator=gen), torch.randn(4, 1, 3, generator=gen)
    lrs, moms, wds = [0.1, 0.1, 0.01, 0.1], [0.9, 0.9, 0.5, 0.0], [0.0, 0.1, 0.1, 0.0]
    opt = StackedOptimizer([weight, bias], kind, lrs=lrs, momentums=moms, weight_decays=wds)
    opt.fused = fused  # False: the foreach fallback for devices without fused kernels
    torch_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    refs = []
    for i in range(4):
        params = [weight[i].clone().requires_grad_(), bias[i].clone().requires_grad_()]
        extra = {"momentum": moms[i]} if kind == "sgd" else {}
        refs.append((params, torch_cls[kind](params, lr=lrs[i], weight_decay=wds[i], **extra)))
    weight.grad, bias.grad = torch.zeros_like(weight), torch.zeros_like(bias)
    for step in range(6):
        weight.grad.copy_(torch.randn(4, 5, 3, generator=gen))
        bias.grad.copy_(torch.randn(4, 1, 3, generator=gen))
        if step == 3:
            opt.freeze(1)
        opt.step()
        for i, (params, ref) in enumerate(refs):
            if not (step >= 3 and i == 1):
                params[0].grad, params[1].grad = weight.grad[i].clone(), bias.grad[i].clone()
                ref.step()
    for i, (params, _) in enumerate(refs):
        torch.testing.assert_close(weight[i], params[0].detach(), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(bias[i], params[1].detach(), rtol=1e-6, atol=1e-6)
    assert opt.steps.tolist() == [6, 3, 6, 6]
