"""The plain-loop and Ray Tune sides of benchmarks/peers.py: the study's grid trained one
config after another the way a student writes it, and the same loop as Ray Tune trials."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import statistics
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import _common as bench  # benchmarks/ is on sys.path when this runs as a script
import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}
Outcome = tuple[float, float]  # seconds, mean final test accuracy over the grid


class Split(NamedTuple):
    """The data every side trains on, as float32 inputs already in memory."""

    x_train: torch.Tensor  # (N, D)
    y_train: torch.Tensor  # (N,)
    x_test: torch.Tensor  # (N_test, D)
    y_test: torch.Tensor  # (N_test,)


class Setup(NamedTuple):
    """What the grid is and how each of its runs trains."""

    grid: dict[str, list[Any]]
    hidden: list[int]
    epochs: int
    subset: int
    dataset: str
    batch_size: int = 64
    flush_denormal: bool = False  # the worker always flushes; a student's loop does not

    def configs(self) -> list[dict[str, Any]]:
        """One dict per grid point, in the grid's order."""
        return [
            dict(zip(self.grid, v, strict=True)) for v in itertools.product(*self.grid.values())
        ]


def student_loop(
    config: dict[str, Any],
    split: Split,
    setup: Setup,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Train one config the textbook way; the last epoch's metrics."""
    torch.manual_seed(0)
    x, y = split.x_train, split.y_train
    sizes = [x.shape[1], *setup.hidden, int(split.y_test.max()) + 1]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(fan_in, fan_out), ACTIVATIONS[config["activation"]]()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config["step_size"], gamma=0.1)
    metrics: dict[str, float] = {}
    for epoch in range(setup.epochs):
        model.train()
        total = torch.zeros(())
        for idx in torch.randperm(len(y)).split(setup.batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])  # (B, C) logits
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)  # .item() once per epoch: no sync per batch
        scheduler.step()
        metrics = {"epoch": epoch + 1, "train_loss": total.item() / len(y)}
        metrics |= evaluate(model, split.x_test, split.y_test)
        if on_epoch is not None:
            on_epoch(metrics)
    return metrics


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Test loss and accuracy in one pass."""
    model.eval()
    logits = model(x)  # (N_test, C)
    accuracy = (logits.argmax(dim=1) == y).float().mean()
    return {"test_loss": F.cross_entropy(logits, y).item(), "test_accuracy": accuracy.item()}


def warm_up(split: Split, setup: Setup) -> tuple[Split, Setup]:
    """An untimed first job of each side's own shape: one config, one epoch, 256 samples."""
    one = {k: v[:1] for k, v in setup.grid.items()}
    return Split(*(t[:256] for t in split)), setup._replace(grid=one, epochs=1)


@contextlib.contextmanager
def loop_side(split: Split, setup: Setup) -> Iterator[Callable[[], Outcome]]:
    """Warmed (torch's thread pool, first kernels); yields the timed grid, one config after
    another in this process."""

    def grid(split: Split, setup: Setup) -> Outcome:
        results, seconds = bench.timed(
            lambda: [student_loop(c, split, setup) for c in setup.configs()]
        )
        return seconds, statistics.fmean(r["test_accuracy"] for r in results)

    grid(*warm_up(split, setup))
    yield lambda: grid(split, setup)


def ray_installed() -> bool:
    """Whether `import ray` works here (ray is an optional extra: mlplab[bench])."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def ray_trial(config: dict[str, Any], split: Split, setup: Setup) -> None:
    """One Tune trial: the student's loop on the trial's one CPU, a report per epoch."""
    from ray import tune

    torch.set_num_threads(1)
    torch.set_flush_denormal(setup.flush_denormal)
    student_loop(config, split, setup, on_epoch=tune.report)


@contextlib.contextmanager
def ray_side(split: Split, setup: Setup, *, cores: int) -> Iterator[Callable[[], Outcome]]:
    """A local Ray of `cores` CPUs, warmed with a one-trial fit; yields the timed grid fit."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no tables per fit
    import ray
    from ray import tune

    def fit(split: Split, setup: Setup, storage: str) -> Outcome:
        tuner = tune.Tuner(
            tune.with_resources(
                tune.with_parameters(ray_trial, split=split, setup=setup), {"cpu": 1}
            ),
            param_space={k: tune.grid_search(v) for k, v in setup.grid.items()},
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=cores),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        results, seconds = bench.timed(tuner.fit)
        if results.errors:
            raise SystemExit(f"ray: {len(results.errors)} trial(s) failed: {results.errors[0]}")
        return seconds, float(results.get_dataframe()["test_accuracy"].mean())

    ray.init(
        num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    try:
        with tempfile.TemporaryDirectory() as storage:
            fit(*warm_up(split, setup), storage)  # Tune's imports, the object store
            yield lambda: fit(split, setup, storage)
    finally:
        ray.shutdown()
