"""Training in tests: the worker's settings on the unit-test Redis, a callback that cancels."""

from __future__ import annotations

from pathlib import Path

from mlpcore.fused import Callback
from mlpcore.spec import RunSpec
from tests.support.redis_db import TEST_PREFIX, UNIT_REDIS_URL


def worker_settings(tmp_path: Path):
    """WorkerSettings on the unit-test DB: CPU, one thread, data and checkpoints in tmp_path,
    the cancel flag read every 0.01 s."""
    from worker.settings import WorkerSettings

    return WorkerSettings(
        redis_url=UNIT_REDIS_URL,
        key_prefix=TEST_PREFIX,
        device="cpu",
        torch_threads=1,
        cancel_poll_s=0.01,
        data_dir=str(tmp_path),
        checkpoint_dir=tmp_path / "checkpoints",
        checkpoint_every_s=0.0,  # every epoch: tests count the files and act on each
        artifact_dir=tmp_path / "artifacts",
    )


class StopAfter(Callback):
    """Asks to stop once polled more than `polls` times; counts the polls."""

    def __init__(self, polls: int) -> None:
        self.polls, self.left = 0, polls

    def should_stop(self) -> bool:
        self.polls += 1
        return self.polls > self.left


def mixed_specs(base: RunSpec, optimizer: str) -> list[RunSpec]:
    """Every activation and init, different lrs, schedules, seeds and regularisers."""
    rows = [
        ("sigmoid", "he", 0.01, "step", 1, 0, 0.0, 0.9),
        ("relu", "xavier", 0.003, "cosine", 2, 1, 0.01, 0.5),
        ("tanh", "default", 0.01, "none", 1, 2, 0.0, 0.0),
        ("leaky_relu", "he", 0.02, "step", 2, 0, 0.001, 0.9),
        ("gelu", "xavier", 0.005, "step", 1, 3, 0.0, 0.8),
        ("elu", "default", 0.01, "cosine", 3, 0, 0.0, 0.9),
        ("silu", "he", 0.003, "step", 1, 4, 0.05, 0.0),
        ("relu", "he", 0.01, "step", 1, 5, 0.0, 0.9),
    ]
    lr_scale = 10.0 if optimizer == "sgd" else 1.0
    return [
        base.model_copy(
            update={
                "optimizer": optimizer,
                "activation": act,
                "init": init,
                "lr": lr * lr_scale,
                "scheduler": sched,
                "step_size": step,
                "gamma": 0.5,
                "seed": seed,
                "weight_decay": wd,
                "momentum": mom,
            }
        )
        for act, init, lr, sched, step, seed, wd, mom in rows
    ]
