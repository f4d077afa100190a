"""A task's runs cut into the chunks a worker trains one after another: each fits the
device's free memory and the fused-model cap, and trains as the planned group it belongs to."""

from __future__ import annotations

import logging

from lab import fusion
from mlpcore.data import TensorData
from mlpcore.memory import free_bytes, split_to_fit
from mlpcore.spec import RunSpec
from worker.checkpoints import Due
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def split_runs(
    specs: list[RunSpec], *, data: TensorData, settings: WorkerSettings
) -> list[list[int]]:
    """Consecutive chunks of spec indices, each within memory_fraction of the device's free
    memory and max_fused_models."""
    budget = int(free_bytes(data.device) * settings.memory_fraction)
    chunks = split_to_fit(
        specs,
        num_features=data.num_features,
        num_classes=data.num_classes,
        budget_bytes=budget,
        max_models=settings.max_fused_models,
    )
    if len(chunks) > 1:
        log.info(
            "%d models split into %d chunks (budget %.1f MiB on %s, at most %d a chunk)",
            len(specs),
            len(chunks),
            budget / 2**20,
            data.device,
            settings.max_fused_models,
        )
    return chunks


def chunk_groups(due: list[Due], chunks: list[list[int]]) -> list[str | None]:
    """The fused_group each chunk trains as, named after the planned group (lab.fusion)."""
    planned = {d.group for d in due}
    base = planned.pop() if len(planned) == 1 else None
    return fusion.split_names(base, [len(chunk) for chunk in chunks])
