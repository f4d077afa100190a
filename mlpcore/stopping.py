"""Early stopping for a sweep's runs: the rule specs and their pure decisions (torch-free).

A run is compared with its peers (the other runs of its sweep, or of its stage in a staged
sweep) on the per-epoch counterpart of the sweep's metric, in the sweep's mode:

median  at every epoch e > grace_epochs: with at least `min_peers` peers that reached e,
        stop the run when its value at e is strictly worse than the median of theirs.
asha    asynchronous successive halving: rungs at grace_epochs * reduction_factor**i
        (before the last epoch). At a rung r, of the n runs that reached r so far (this one
        included) the best ceil(n / reduction_factor) continue; ties continue. The first
        run at a rung always continues. (For distinct values this is Ray Tune's ASHA
        cutoff, the (1 - 1/eta) quantile.)

A missing or non-finite value counts as the worst possible value.
"""

from __future__ import annotations

import math
import statistics
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlpcore.spec import NoBool

EPOCH_METRIC = {
    "final_train_loss": "train_loss",
    "final_test_loss": "test_loss",
    "final_test_accuracy": "test_accuracy",
    "final_val_loss": "val_loss",
    "final_val_accuracy": "val_accuracy",
    "best_val_loss": "val_loss",
    "best_val_accuracy": "val_accuracy",
}


Count = Annotated[int, NoBool, Field(lt=2**63)]


class MedianRule(BaseModel):
    """Stop a run that is worse than the median of its peers at the same epoch."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: Literal["median"]
    grace_epochs: Count = Field(default=1, ge=0, description="never stop at epoch <= this")
    min_peers: Count = Field(default=2, ge=1, description="peers at the epoch needed to judge")


class AshaRule(BaseModel):
    """Asynchronous successive halving over epochs."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: Literal["asha"]
    grace_epochs: Count = Field(default=1, ge=1, description="the first rung, in epochs")
    reduction_factor: Count = Field(default=3, ge=2, description="eta: 1/eta continue a rung")


EarlyStopping = Annotated[MedianRule | AshaRule, Field(discriminator="rule")]


def badness(value: float | None, mode: str) -> float:
    """A key where smaller is better; None and NaN are +inf (the worst)."""
    if value is None or math.isnan(value):
        return math.inf
    return value if mode == "min" else -value


def median_reason(
    value: float | None,
    peers: list[float | None],
    *,
    rule: MedianRule,
    epoch: int,
    mode: str,
    name: str,
) -> str | None:
    """Why the run stops at `epoch` under the median rule, or None to go on."""
    if epoch <= rule.grace_epochs or len(peers) < rule.min_peers:
        return None
    median = statistics.median(badness(p, mode) for p in peers)
    if badness(value, mode) <= median:
        return None
    shown = median if mode == "min" else -median
    return (
        f"median rule: {name} {_fmt(value)} at epoch {epoch} is worse than the median "
        f"{_fmt(shown)} of the {len(peers)} other runs that reached it"
    )


def asha_rungs(rule: AshaRule, epochs: int) -> list[int]:
    """The rung epochs grace * eta**i that come before the run's last epoch."""
    rungs, rung = [], rule.grace_epochs
    while rung < epochs:
        rungs.append(rung)
        rung *= rule.reduction_factor
    return rungs


def asha_reason(
    value: float | None,
    peers: list[float | None],
    *,
    rule: AshaRule,
    epoch: int,
    epochs: int,
    mode: str,
    name: str,
) -> str | None:
    """Why the run stops at rung `epoch` under ASHA (peers: the others there), or None."""
    if epoch not in asha_rungs(rule, epochs):
        return None
    mine = badness(value, mode)
    rank = 1 + sum(badness(p, mode) < mine for p in peers)
    reached = len(peers) + 1
    keep = max(1, math.ceil(reached / rule.reduction_factor))
    if rank <= keep:
        return None
    return (
        f"asha rule: {name} {_fmt(value)} ranks {rank} of the {reached} runs that reached "
        f"rung epoch {epoch}; only the best {keep} (1/{rule.reduction_factor}) go on"
    )


def stop_reason(
    rule: MedianRule | AshaRule,
    value: float | None,
    peers: list[float | None],
    *,
    epoch: int,
    epochs: int,
    mode: str,
    name: str,
) -> str | None:
    """The rule's decision for a run after `epoch`: a reason to stop, or None."""
    if isinstance(rule, MedianRule):
        return median_reason(value, peers, rule=rule, epoch=epoch, mode=mode, name=name)
    return asha_reason(value, peers, rule=rule, epoch=epoch, epochs=epochs, mode=mode, name=name)


def needs_peers(rule: MedianRule | AshaRule, *, epoch: int, epochs: int) -> bool:
    """Whether a decision at `epoch` can stop the run at all (saves reading the peers)."""
    if epoch >= epochs:
        return False
    if isinstance(rule, MedianRule):
        return epoch > rule.grace_epochs
    return epoch in asha_rungs(rule, epochs)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
