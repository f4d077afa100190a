"""What a run leaves beyond its epochs: its best epoch by a criterion (the sweep's metric),
that epoch's confusion matrix and weights, and the result dict a sweep ranks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from mlpcore.callbacks import EpochMetrics
from mlpcore.catalog import CLASS_NAMES
from mlpcore.evaluate import per_class_accuracy
from mlpcore.spec import RunSpec

Criterion = tuple[str, str]  # (EpochMetrics field, "min" | "max")


def default_criterion(spec: RunSpec) -> Criterion:
    """A lone run's best epoch: by val loss with a val split, else by the study's train loss."""
    return ("val_loss", "min") if spec.val_fraction > 0 else ("train_loss", "min")


@dataclass
class Best:
    """The best epoch so far; `weights` (stacked-layout layer pairs) only when kept."""

    field: str
    mode: str
    epoch: int | None = None
    value: float | None = None
    confusion: Tensor | None = None  # (C, C) on the CPU
    weights: list[tuple[Tensor, Tensor]] | None = None

    def offer(
        self,
        metrics: EpochMetrics,
        confusion: Tensor | None,
        weights: Callable[[], list[tuple[Tensor, Tensor]]] | None,
    ) -> None:
        """Take the epoch if strictly better (the earliest of equals stays best)."""
        value = getattr(metrics, self.field)
        if value is None or not math.isfinite(value):
            return
        if self.value is not None and not _better(value, self.value, self.mode):
            return
        self.epoch, self.value = metrics.epoch, float(value)
        self.confusion = None if confusion is None else confusion.cpu()
        self.weights = None if weights is None else weights()

    def state(self) -> dict[str, Any]:
        """For a checkpoint (weights_only loads: plain types and CPU tensors)."""
        weights = None if self.weights is None else [[w.cpu(), b.cpu()] for w, b in self.weights]
        return {**self.__dict__, "weights": weights}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Best:
        best = cls(**state)
        if best.weights is not None:
            best.weights = [(w, b) for w, b in best.weights]
        return best


def result_dict(
    spec: RunSpec,
    history: list[EpochMetrics],
    best: Best,
    confusion: Tensor | None,
    runtime_s: float,
) -> dict[str, Any]:
    """The run's final numbers, best epoch and confusion matrices (history not empty)."""
    last = history[-1]
    result: dict[str, Any] = {
        "final_train_loss": last.train_loss,
        "final_test_loss": last.test_loss,
        "final_test_accuracy": last.test_accuracy,
        "runtime_s": runtime_s,
    }
    if spec.val_fraction > 0:
        losses = [m.val_loss for m in history if _finite(m.val_loss)]
        accuracies = [m.val_accuracy for m in history if _finite(m.val_accuracy)]
        result["final_val_loss"], result["final_val_accuracy"] = last.val_loss, last.val_accuracy
        result["best_val_loss"] = min(losses, default=None)  # type: ignore[type-var]
        result["best_val_accuracy"] = max(accuracies, default=None)  # type: ignore[type-var]
    result["best_epoch"], result["best_epoch_by"] = best.epoch, best.field
    result["class_names"] = list(CLASS_NAMES[spec.dataset])
    for prefix, matrix in (("", confusion), ("best_", best.confusion)):
        if matrix is not None:
            rows = matrix.tolist()
            result[f"{prefix}confusion"] = rows
            result[f"{prefix}per_class_accuracy"] = per_class_accuracy(rows)
    return result


def _better(value: float, than: float, mode: str) -> bool:
    return value < than if mode == "min" else value > than


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
