"""What a run reports and who listens: per-epoch metrics, a run's result, the callback hooks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlpcore.spec import RunSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch import Tensor

# The `status` of a run a callback abandoned: not a RunStatus, for the run did not end here.
ABANDONED = "abandoned"


class Abandon(Exception):  # noqa: N818 (a signal to let go, not an error)
    """Raised by a callback's on_epoch_end or should_stop: the run is no longer the caller's
    (say, another process trains it now). The trainer drops it without ending it: no on_end,
    no status, and no later state of its group for on_checkpoint, since such a file would
    belong to whoever trains the run now."""


@dataclass
class EpochMetrics:
    """One epoch of one run; `seconds` is the group's wall time for the epoch incl. eval."""

    epoch: int  # 1-based
    train_loss: float
    test_loss: float
    test_accuracy: float  # fraction in [0, 1]
    lr: float
    seconds: float
    val_loss: float | None = None  # with a val split (RunSpec.val_fraction > 0)
    val_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Its fields; the val ones only with a val split (so records keep their old shape)."""
        data = asdict(self)
        return {k: v for k, v in data.items() if v is not None or not k.startswith("val_")}


@dataclass
class RunResult:
    """How one run ended. `result` is None for a diverged run (its last finite losses would
    rank a broken run) and for a run stopped before its first epoch ended.

    With a result, `weights` are the run's final weights as an `nn.Sequential` state dict (CPU
    tensors; `model_config` says how to rebuild it, see mlpcore.export), and `best_weights`
    its weights at `result["best_epoch"]` when it trained with a val split."""

    spec: RunSpec
    status: str  # succeeded | cancelled | diverged, or ABANDONED: nothing of it to record
    epochs: list[EpochMetrics] = field(default_factory=list)
    result: dict[str, Any] | None = None
    reason: str | None = None
    device: str = "cpu"
    weights: dict[str, Tensor] | None = field(default=None, repr=False, compare=False)
    best_weights: dict[str, Tensor] | None = field(default=None, repr=False, compare=False)
    model_config: dict[str, Any] | None = None
    # its epochs 1..shared_until came from a run it shared them with (mlpcore.schedule): the
    # group trained them once, for both
    shared_until: int = 0
    # a succeeded run's final state for continuing it (mlpcore.continuation.run_state), read
    # when called: the run's slice of its group stays as it ended
    resume_state: Callable[[], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )

    def to_record(self) -> dict[str, Any]:
        """The shape of the server's run record."""
        return {
            "spec": self.spec.model_dump(mode="json"),
            "status": self.status,
            "epochs": [m.to_dict() for m in self.epochs],
            "result": self.result,
            "error": self.reason,
            "device": self.device,
        }


class Callback:
    """Hooks for one run; every method is a no-op unless overridden."""

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        """Called after each completed epoch; may raise Abandon."""

    def should_stop(self) -> bool:
        """Polled every few batches and at epoch ends; True cancels the run, Abandon drops it."""
        return False

    def on_end(self, result: RunResult) -> None:
        """Called once, as soon as the run stops (its mates may still be training)."""
