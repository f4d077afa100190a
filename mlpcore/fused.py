"""The one training loop's entry point: M >= 1 runs trained together as one StackedMLP.

A single run is a group of one, so "fused equals unfused" holds by construction. Runs in a
group share `RunSpec.fusion_key()`; each keeps its own activation, init, seed (weights and
batch order), lr, schedule, epochs, momentum and weight decay, ends after its own epochs
(the group trains until its longest run ends), and stops alone when it diverges or
is cancelled while its mates go on; a run whose callback raises Abandon (the run is not the
caller's any more) is dropped without ending, and no later state of the group is offered to
`on_checkpoint`. The loop itself is `mlpcore.trainer.GroupTrainer`; the types a caller meets
(EpochMetrics, RunResult, Callback, Abandon) live in `mlpcore.callbacks` and are importable
from here as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from mlpcore.callbacks import ABANDONED, Abandon, Callback, EpochMetrics, RunResult
from mlpcore.data import TensorData, epoch_order, load_dataset
from mlpcore.device import resolve_device
from mlpcore.errors import SpecError
from mlpcore.outcome import Criterion
from mlpcore.spec import RunSpec
from mlpcore.trainer import POLL_EVERY, GroupTrainer

__all__ = [
    "ABANDONED",
    "POLL_EVERY",
    "Abandon",
    "Callback",
    "EpochMetrics",
    "RunResult",
    "epoch_order",
    "resolve_device",
    "train_group",
]


def train_group(
    specs: Sequence[RunSpec],
    *,
    callbacks: Sequence[Callback | None] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
    data: TensorData | None = None,
    data_dir: str | None = None,
    poll_every: int = POLL_EVERY,
    models_per_pass: int | None = None,
    best_by: Sequence[Criterion | None] | None = None,
    batched: bool = False,
    continue_from: Sequence[dict[str, Any]] | None = None,
    share: bool = True,
) -> list[RunResult]:
    """Train runs sharing a fusion key as one stacked model; results in the caller's order.

    Each epoch runs the stack in passes of `models_per_pass` neighbouring models (default: all
    of them on a GPU; on a CPU as many as fit in cache, mlpcore.memory.cpu_models_per_pass).
    On a CPU every model's results are bit for bit those of its solo run, whatever the group
    or pass size; on a GPU they agree to float32 rounding (a batched GEMM rounds differently
    from a single one). On a CPU it flushes denormals for the calling thread (as
    `mlpcore.device.configure_process()` does at a worker's start-up): many times faster, and
    part of what "the same losses" means, so a notebook calling this gets the worker's
    numbers and speed.

    `best_by` names, per run, the (epoch field, mode) its best epoch is chosen by (a sweep's
    metric; default: val loss with a val split, else train loss).

    `continue_from` starts each run from the final state of an earlier run of the same spec
    with fewer epochs (`RunResult.resume_state()`; mlpcore.continuation): it trains on to its
    spec's epochs exactly as if it had trained them from the start.

    `share` lets runs that differ only in their lr schedule train the epochs where their lrs
    agree once (mlpcore.schedule.shared_prefixes): each run's numbers stay those of its solo
    run, and a stopped run whose state others follow goes on training for them.

    `batched` makes a CPU compute each layer of a pass as one bmm over its models, the
    arithmetic a GPU does (so CI runs the GPU's code path); results then agree with solo
    runs to float32 rounding instead of bit for bit. It changes nothing on a GPU.
    """
    specs = list(specs)
    if not specs or len({s.fusion_key() for s in specs}) != 1:
        raise SpecError(
            "a fused group needs at least one spec, all with the same dataset, "
            "hidden, batch_size, optimizer, train_subset, val_fraction and device"
        )
    callbacks = list(callbacks) if callbacks is not None else [None] * len(specs)
    if len(callbacks) != len(specs):
        raise SpecError(f"{len(callbacks)} callbacks for {len(specs)} specs")
    device = resolve_device(specs[0].device)  # indexed ('cuda:0'), as data.device is
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # one CPU flag for this thread: cheap to set again
    if data is None:
        data = load_dataset(specs[0].dataset, device=device, data_dir=data_dir)
    elif data.device != device:
        raise SpecError(f"data is on {data.device} but the runs ask for {device}")
    if best_by is not None and len(best_by) != len(specs):
        raise SpecError(f"{len(best_by)} best_by criteria for {len(specs)} specs")
    data = data.subset(specs[0].train_subset).split_val(specs[0].val_fraction)
    criteria = list(best_by) if best_by else None
    trainer = GroupTrainer(
        specs, callbacks, data, device, models_per_pass, criteria, batched, share
    )
    if resume is not None and continue_from is not None:
        raise SpecError("give resume (a group's checkpoint) or continue_from, not both")
    if resume is not None:
        trainer.restore(resume)
    elif continue_from is not None:
        trainer.continue_runs(list(continue_from))
    trainer.run(on_checkpoint, poll_every)
    return trainer.results()
