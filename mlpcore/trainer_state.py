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
            **outcome_of(trainer, j),
        }
        for j in trainer._caller()
    ]
    model = trainer.model.state_dict().items()
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": trainer.epoch,
        "specs": [s.model_dump(mode="json") for s in trainer.caller_specs],
        "stack_order": list(trainer.order),
        "starts": list(trainer.branches.starts),
        "runs": runs,
        "runtime_s": trainer.runtime(),
        "model": {k: v.detach().cpu().clone() for k, v in model},
        "optimizer": trainer.opt.state_dict(),
    }


def outcome_of(trainer: GroupTrainer, i: int) -> dict[str, Any]:
    """Stack position i's epochs so far, best epoch and last confusion matrix (CPU), as a
    group checkpoint and a run's final state (mlpcore.continuation) both keep them."""
    confusion = trainer.confusion[i]
    return {
        "epochs": [m.to_dict() for m in trainer.history[i]],
        "best": trainer.best[i].state(),
        "confusion": None if confusion is None else confusion.cpu(),
    }


def take_outcome(trainer: GroupTrainer, i: int, saved: dict[str, Any]) -> None:
    """Give stack position i the `outcome_of()` in `saved` (the confusion stays on the CPU,
    where evaluation leaves it)."""
    trainer.history[i] = [EpochMetrics(**m) for m in saved["epochs"]]
    trainer.best[i] = Best.from_state(saved["best"])
    trainer.confusion[i] = saved["confusion"]


def restore(trainer: GroupTrainer, state: dict[str, Any]) -> None:
    """Continue from `state_of()`; CheckpointError when it belongs to other runs."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError("not an mlpcore checkpoint of a supported format")
    if state.get("specs") != [s.model_dump(mode="json") for s in trainer.caller_specs]:
        raise CheckpointError("the checkpoint was written for different run specs")
    if state.get("stack_order") != trainer.order:
        raise CheckpointError("the checkpoint stacks its runs in another order")
    if state.get("starts", [0] * len(trainer.order)) != trainer.branches.starts:  # older: 0s
        raise CheckpointError("the checkpoint shares other epochs between its runs")
    try:
        trainer.model.load_state_dict(state["model"])
        trainer.opt.load_state_dict(state["optimizer"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint does not fit these runs: {exc}") from exc
    for j, run in zip(trainer._caller(), state["runs"], strict=True):
        trainer.status[j], trainer.reasons[j] = run["status"], run["reason"]
        trainer.runtimes[j] = run["runtime_s"]
        trainer.runtime_offsets[j] = float(run.get("offset_s", 0.0))
        take_outcome(trainer, j, run)
    trainer.epoch, trainer.runtime_before = state["epoch"], state["runtime_s"]
