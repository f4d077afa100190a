"""A fused group's resumable state: what `GroupTrainer.state_dict()` writes into a checkpoint
and `restore()` reads back. Per-run lists are in the caller's order; tensors are on the CPU.

No RNG or scheduler state: batch orders, the val split and lrs are pure functions of (spec,
epoch). Each run's best epoch (with its weights, under a val split) and last confusion
matrix travel along, so a resumed run ends with what an uninterrupted one would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlpcore.callbacks import EpochMetrics
from mlpcore.errors import CheckpointError
from mlpcore.outcome import Best

if TYPE_CHECKING:
    from mlpcore.trainer import GroupTrainer

CHECKPOINT_FORMAT = 2  # 2: per-run best epoch and confusion matrix


def state_of(trainer: GroupTrainer) -> dict[str, Any]:
    """Everything a resume needs, on the CPU."""
    runs = [
        {
            "status": trainer.status[j],
            "reason": trainer.reasons[j],
            "runtime_s": trainer.runtimes[j],
            "offset_s": trainer.runtime_offsets[j],
            "epochs": [m.to_dict() for m in trainer.history[j]],
            "best": trainer.best[j].state(),
            "confusion": None if (c := trainer.confusion[j]) is None else c.cpu(),
        }
        for j in trainer._caller()
    ]
    model = trainer.model.state_dict().items()
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": trainer.epoch,
        "specs": [s.model_dump(mode="json") for s in trainer.caller_specs],
        "stack_order": list(trainer.order),
        "runs": runs,
        "runtime_s": trainer.runtime(),
        "model": {k: v.detach().cpu().clone() for k, v in model},
        "optimizer": trainer.opt.state_dict(),
    }


def restore(trainer: GroupTrainer, state: dict[str, Any]) -> None:
    """Continue from `state_of()`; CheckpointError when it belongs to other runs."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError("not an mlpcore checkpoint of a supported format")
    if state.get("specs") != [s.model_dump(mode="json") for s in trainer.caller_specs]:
        raise CheckpointError("the checkpoint was written for different run specs")
    if state.get("stack_order") != trainer.order:
        raise CheckpointError("the checkpoint stacks its runs in another order")
    try:
        trainer.model.load_state_dict(state["model"])
        trainer.opt.load_state_dict(state["optimizer"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint does not fit these runs: {exc}") from exc
    device = trainer.device
    for j, run in zip(trainer._caller(), state["runs"], strict=True):
        trainer.status[j], trainer.reasons[j] = run["status"], run["reason"]
        trainer.runtimes[j] = run["runtime_s"]
        trainer.runtime_offsets[j] = float(run.get("offset_s", 0.0))
        trainer.history[j] = [EpochMetrics(**m) for m in run["epochs"]]
        trainer.best[j] = Best.from_state(run["best"])
        confusion = run["confusion"]
        trainer.confusion[j] = None if confusion is None else confusion.to(device)
    trainer.epoch, trainer.runtime_before = state["epoch"], state["runtime_s"]
