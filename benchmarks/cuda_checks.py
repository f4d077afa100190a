"""The CUDA checks, as plain functions: tests/mlpcore/test_cuda.py runs them under pytest
(skipped without CUDA) and benchmarks/gpu_check.py runs them directly on a box with only
torch (its conftest needs Redis and httpx). Each returns a Check; `ok` False says what failed.

Run after benchmarks/_standalone.install() where pydantic may be missing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from mlpcore.data import TensorData
from mlpcore.fused import train_group
from mlpcore.memory import model_bytes
from mlpcore.spec import RunSpec
from mlpcore.trainer import GroupTrainer

MIXED = [("sigmoid", 1e-3, 0), ("relu", 3e-3, 1), ("tanh", 1e-3, 2), ("gelu", 1e-2, 0)]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def pixels(n: int, device: torch.device, *, n_test: int = 2048, seed: int = 0) -> TensorData:
    """Random 28x28 uint8 'images' with labels a linear rule of them: Fashion-MNIST's shapes."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n + n_test, 784), generator=gen, dtype=torch.uint8)
    w = torch.randn(784, 10, generator=gen)
    y = (x.float() @ w).argmax(dim=1)
    return TensorData(
        "fashion-mnist", x[:n].to(device), y[:n].to(device), x[n:].to(device),
        y[n:].to(device), 255.0, 10,
    )  # fmt: skip


def mixed_specs(device: str, *, epochs: int = 3, hidden: tuple[int, ...] = (64, 32)) -> list:
    base = RunSpec(dataset="fashion-mnist", hidden=list(hidden), epochs=epochs, device=device)
    return [
        base.model_copy(update={"activation": a, "lr": lr, "seed": s, "step_size": 1})
        for a, lr, s in MIXED
    ]


@contextmanager
def sync_debug(mode: str) -> Iterator[list[warnings.WarningMessage]]:
    """torch.cuda.set_sync_debug_mode(mode) for the block; the warnings it raised. Without
    CUDA it watches nothing (gpu_check --device cpu runs the checks' code only)."""
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if not cuda:
            yield caught
            return
        torch.cuda.set_sync_debug_mode(mode)
        try:
            yield caught
        finally:
            torch.cuda.set_sync_debug_mode("default")


def _syncs(fn: Callable[[], object]) -> int:
    with sync_debug("warn") as caught:
        fn()
    return sum("synchroniz" in str(w.message) for w in caught)


def _trainer(device: torch.device, n: int) -> GroupTrainer:
    specs = mixed_specs(str(device))
    trainer = GroupTrainer(specs, [None] * len(specs), pixels(n, device), device)
    trainer.opt.set_lrs([lrs[0] for lrs in trainer.lrs])
    return trainer


def check_no_sync_in_the_batch_loop(device: torch.device) -> Check:
    """Steady-state batches run under sync debug mode 'error'; a whole epoch's loop (polls
    off) syncs as often for 4x the batches (only its end-of-pass poll)."""
    trainer = _trainer(device, 1024)
    model, opt, part = trainer.model, trainer.opt, trainer.parts[0]
    x, y = trainer._batch(trainer._orders(0)[0][:64])
    loss_sum = torch.zeros(model.num_models, device=device)
    for rounds in (1, 8):  # the first builds the optimizer's kernel groups (a sync, once)
        with sync_debug("error" if rounds > 1 else "default"):
            for _ in range(rounds):
                loss_sum.add_(model.loss_and_grad_(x, y, models=part), alpha=64)
                opt.step(part)
    counts = []
    for n in (1024, 4096):
        t = _trainer(device, n)
        counts.append(_syncs(lambda t=t: t._train_part(0, t.parts[0], t._orders(0), 10**9)))
    ok = counts[0] == counts[1]
    return Check("no host sync per batch", ok, f"syncs per epoch loop {counts[0]} (16 batches)"
                 f" vs {counts[1]} (64 batches); 8 batches under 'error'")  # fmt: skip


def check_cuda_matches_cpu(device: torch.device) -> Check:
    """A mixed group on CUDA agrees with the exact CPU path to float32 rounding."""
    worst = 0.0
    gpu = train_group(mixed_specs(str(device)), data=pixels(2048, device))
    cpu = train_group(mixed_specs("cpu"), data=pixels(2048, torch.device("cpu")))
    for a, b in zip(gpu, cpu, strict=True):
        for ma, mb in zip(a.epochs, b.epochs, strict=True):
            worst = max(worst, abs(ma.train_loss - mb.train_loss) / abs(mb.train_loss))
    return Check("CUDA losses = CPU losses", worst < 1e-3, f"max relative deviation {worst:.1e}")


def check_memory_model(device: torch.device, *, models: int = 8) -> Check:
    """torch.cuda.max_memory_allocated of a group's training stays within mlpcore.memory's
    estimate (which splits groups to fit a device)."""
    data = pixels(4096, device)
    data.test_features()  # the dataset's own cached copy is not the group's
    spec = RunSpec(dataset="fashion-mnist", epochs=1, device=str(device))
    specs = [spec.model_copy(update={"seed": s}) for s in range(models)]
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    train_group(specs, data=data)
    peak = torch.cuda.max_memory_allocated(device) - base
    estimate = models * model_bytes(spec, 784, 10)
    ratio = peak / estimate
    return Check("memory model bounds the peak", ratio <= 1.0,
                 f"peak {peak / 2**20:.0f} MiB = {ratio:.2f} x the estimate")  # fmt: skip


CHECKS = [check_no_sync_in_the_batch_loop, check_cuda_matches_cpu, check_memory_model]
