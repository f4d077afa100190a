"""Evaluating a fused group on a held-out set: mean cross-entropy, accuracy and (for the test
set) each model's confusion matrix, in chunks so that memory stays bounded."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mlpcore.memory import EVAL_CHUNK
from mlpcore.model import StackedMLP


@dataclass
class Evaluation:
    """Per-model numbers over one set; `confusion` (m, C, C) counts (true, predicted) pairs,
    on the CPU (one copy for the whole group, not one per run)."""

    loss: list[float]
    accuracy: list[float]
    confusion: Tensor | None = None


@torch.no_grad()
def evaluate(
    model: StackedMLP,
    parts: list[slice],
    x_all: Tensor,
    y_all: Tensor,
    num_classes: int,
    *,
    confusion: bool = False,
) -> Evaluation:
    """Mean cross-entropy and accuracy of every model on (x_all, y_all), pass by pass."""
    model.eval()
    m, n, c = model.num_models, len(y_all), num_classes
    loss_sum = torch.zeros(m, device=x_all.device)
    correct = torch.zeros(m, device=x_all.device)
    counts = torch.zeros(m, c * c, dtype=torch.int64, device=x_all.device) if confusion else None
    for part in parts:
        for a in range(0, n, EVAL_CHUNK):
            logits = model(x_all[a : a + EVAL_CHUNK], models=part)  # (m, b, C)
            y = y_all[a : a + EVAL_CHUNK].expand(*logits.shape[:2])  # (m, b)
            ce = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (m, b)
            loss_sum[part] += ce.sum(dim=1)
            predicted = logits.argmax(dim=-1)  # (m, b)
            correct[part] += (predicted == y).sum(dim=1)
            if counts is not None:  # (true, predicted) pair -> one cell of a flat C*C row
                cells = y * c + predicted  # (m, b)
                counts[part].scatter_add_(1, cells, torch.ones_like(cells))
    model.train()
    loss, accuracy = torch.stack([loss_sum, correct]).div_(n).tolist()  # one sync, not two
    matrices = None if counts is None else counts.view(m, c, c).cpu()
    return Evaluation(loss, accuracy, matrices)


def per_class_accuracy(matrix: list[list[int]]) -> list[float | None]:
    """Each true class's share predicted right (None for a class with no samples)."""
    return [row[k] / sum(row) if sum(row) else None for k, row in enumerate(matrix)]
