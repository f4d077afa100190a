"""`mlplab train`'s progress: a bar per run, a line per epoch, Ctrl-C as a clean cancel."""

from __future__ import annotations

from typing import Any

from mlpcore.callbacks import Callback, EpochMetrics


def _epoch_line(m: EpochMetrics) -> str:
    val = "" if m.val_loss is None else f"val_loss {m.val_loss:.4f}  val_acc {m.val_accuracy:.4f}  "
    return (
        f"epoch {m.epoch:>3}  train_loss {m.train_loss:.4f}  {val}test_loss {m.test_loss:.4f}  "
        f"test_acc {m.test_accuracy:.4f}  lr {m.lr:.2g}  {m.seconds:.2f}s"
    )


class ProgressCallback(Callback):
    """Advances the progress bar, prints each epoch, and turns Ctrl-C into a clean cancel."""

    def __init__(self, progress: Any, task: Any, console: Any) -> None:
        self.progress, self.task, self.console = progress, task, console
        self.stop = False

    def interrupt(self, signum: int, frame: Any) -> None:
        self.stop = True

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.console.print(_epoch_line(metrics))
        self.progress.advance(self.task)

    def should_stop(self) -> bool:
        return self.stop
