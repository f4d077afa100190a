"""Train one run: a fused group of one (see `mlpcore.fused`), with any number of callbacks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlpcore.callbacks import Callback, EpochMetrics, RunResult
from mlpcore.data import TensorData
from mlpcore.device import resolve_device
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec

__all__ = ["Callback", "CallbackList", "EpochMetrics", "RunResult", "resolve_device", "train"]


class CallbackList(Callback):
    """Several callbacks acting as one; the run stops when any of them asks."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(metrics)

    def should_stop(self) -> bool:
        return any(callback.should_stop() for callback in self.callbacks)

    def on_end(self, result: RunResult) -> None:
        for callback in self.callbacks:
            callback.on_end(result)


def train(
    spec: RunSpec,
    *,
    callbacks: Sequence[Callback] = (),
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
    data: TensorData | None = None,
    data_dir: str | None = None,
) -> RunResult:
    """Train one spec and return how it ended."""
    return train_group(
        [spec],
        callbacks=[CallbackList(callbacks)],
        on_checkpoint=on_checkpoint,
        resume=resume,
        data=data,
        data_dir=data_dir,
    )[0]
