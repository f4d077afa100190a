"""Group checkpoints on disk: one file per training group, rewritten every epoch, removed at
its end, so the disk holds at most one state per group in training.

A file holds mlpcore's `train_group` state plus `run_ids`, the runs it covers in the order
`train_group` got them; each of those run records names the file's key in `checkpoint`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlpcore import checkpoint

log = logging.getLogger(__name__)


def checkpoint_path(checkpoint_dir: str | Path, key: str) -> Path:
    """Where the group with this key keeps its state."""
    return Path(checkpoint_dir) / f"{key}.pt"


class GroupCheckpoint:
    """`on_checkpoint` for one group: writes its state atomically; `remove()` at its end."""

    def __init__(self, path: Path, run_ids: list[str]) -> None:
        self.path = path
        self.run_ids = list(run_ids)
        self.writes = 0

    def __call__(self, state: dict[str, Any]) -> None:
        """Replace the file with this epoch's state; a disk error costs crash safety, not runs."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.save({**state, "run_ids": self.run_ids}, self.path)
        except OSError as exc:
            log.warning("checkpoint %s not written: %s", self.path, exc)
            return
        self.writes += 1

    def remove(self) -> None:
        """Delete the file once the group has ended (nothing left to resume)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("checkpoint %s not removed: %s", self.path, exc)
