"""Continuing ended runs to more epochs: one run's final state out of a group, and a new group
(of runs from any groups, all ended at the same epoch) started from such states.

A run's state is its slice of the stack: weights, the optimizer's moments and step count, its
history, best epoch and last confusion matrix, and the seconds it trained. Batch orders and
the val split are pure functions of (seed, epoch), and a step or constant lr schedule does not
depend on the total epochs, so a run continued from epoch N to E trains exactly as one trained
to E from the start: on a CPU bit for bit. A cosine schedule anneals over the total epochs, so
it cannot be continued: `mlpcore.continuable` says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from mlpcore import trainer_state
from mlpcore.continuable import continuable
from mlpcore.errors import CheckpointError, SpecError
from mlpcore.spec import RunSpec

if TYPE_CHECKING:
    from mlpcore.trainer import GroupTrainer

RUN_STATE_FORMAT = "mlpcore-run/1"
_MAY_CHANGE = {"epochs", "device"}  # a run may continue longer, and on another device


def run_state(trainer: GroupTrainer, i: int) -> dict[str, Any]:
    """Stack position i's state, on the CPU (weights_only loads: plain types and tensors); the
    weights and moments are its source's (the run it shared its epochs with, or itself)."""
    opt, s = trainer.opt, trainer.source(i)
    return {
        "format": RUN_STATE_FORMAT,
        "epoch": len(trainer.history[i]),
        "spec": trainer.specs[i].model_dump(mode="json"),
        "runtime_s": trainer.runtimes[i],
        **trainer_state.outcome_of(trainer, i),
        "params": [p[s].detach().cpu().clone() for p in trainer.model.parameters()],
        "optimizer": {
            "kind": opt.kind,
            "step": opt.steps[s].cpu().clone(),
            **{name: [t[s].cpu().clone() for t in ts] for name, ts in opt.state.items()},
        },
    }


def continue_from(trainer: GroupTrainer, states: list[dict[str, Any]]) -> None:
    """Start a fresh trainer (the caller's order) from each run's `run_state()`: all ended at
    one epoch, each with the trainer's spec but for a larger `epochs`. SpecError when a spec
    cannot continue, CheckpointError when a state does not fit its run."""
    if len(states) != len(trainer.caller_specs):
        raise CheckpointError(f"{len(states)} run states for {len(trainer.caller_specs)} runs")
    starts = {
        _checked(state, spec) for state, spec in zip(states, trainer.caller_specs, strict=True)
    }
    if len(starts) != 1:
        raise CheckpointError(f"runs continued together must share their epoch, not {starts}")
    params, opt = list(trainer.model.parameters()), trainer.opt
    with torch.no_grad():
        for j, state in zip(trainer._caller(), states, strict=True):
            saved = state["optimizer"]
            if saved["kind"] != opt.kind or len(state["params"]) != len(params):
                raise CheckpointError("the run state is for another optimizer or model")
            try:
                for p, value in zip(params, state["params"], strict=True):
                    p[j].copy_(value)
                for name, tensors in opt.state.items():
                    for t, value in zip(tensors, saved[name], strict=True):
                        t[j].copy_(value)
            except (KeyError, RuntimeError, ValueError) as exc:
                raise CheckpointError(f"the run state does not fit this run: {exc}") from exc
            opt.steps[j] = saved["step"]
            trainer_state.take_outcome(trainer, j, state)
            trainer.runtime_offsets[j] = float(state["runtime_s"])
    trainer.epoch = trainer.first_epoch = starts.pop()


def _checked(state: dict[str, Any], spec: RunSpec) -> int:
    """The epoch the state ended at, once it is known to continue as `spec`."""
    if not isinstance(state, dict) or state.get("format") != RUN_STATE_FORMAT:
        raise CheckpointError("not an mlpcore run state of a supported format")
    before = RunSpec(**state["spec"])
    if before.model_dump(exclude=_MAY_CHANGE) != spec.model_dump(exclude=_MAY_CHANGE):
        raise CheckpointError("the run state was written for another spec")
    why = continuable(before, spec.epochs)
    if why is not None:
        raise SpecError(f"the run cannot continue: {why}")
    if state["epoch"] != before.epochs or len(state["epochs"]) != before.epochs:
        raise CheckpointError(f"the run state ended at epoch {state['epoch']} of {before.epochs}")
    return int(state["epoch"])
