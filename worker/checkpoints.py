"""Group checkpoints on disk, and resuming a group from one: one file per training group,
rewritten as it trains (at most every MLPLAB_CHECKPOINT_EVERY_S, from a background thread),
removed at its end, so the disk holds at most one state per group in training.

A file holds mlpcore's `train_group` state plus `run_ids`, the runs it covers in the order
`train_group` got them; each of those run records names the file's key in `checkpoint`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mlpcore import checkpoint
from mlpcore.data import TensorData
from mlpcore.errors import CheckpointError
from mlpcore.fused import train_group
from mlpcore.outcome import Criterion
from mlpcore.spec import RunSpec
from mlpcore.train import Callback, RunResult
from runstore import Store
from worker.checkpoint_writer import BackgroundWriter
from worker.leases import holder

log = logging.getLogger(__name__)
Written = Callable[[Path, dict[str, Any]], None]  # told of each file written: path, its state


def checkpoint_path(checkpoint_dir: str | Path, key: str) -> Path:
    """Where the group with this key keeps its state."""
    return Path(checkpoint_dir) / f"{key}.pt"


class GroupCheckpoint:
    """`on_checkpoint` for one group: keeps the newest epoch state and writes it atomically,
    at most every `every_s` seconds (0: every state), from a background thread when
    `background`; `flush()` writes the newest state now (a hand-back), `remove()` at the end.
    `written` (tools, tests) is told of each file written, before training goes on when not
    `background`; from the writer's thread otherwise."""

    def __init__(
        self,
        path: Path,
        run_ids: list[str],
        *,
        every_s: float = 0.0,
        background: bool = False,
        written: Written | None = None,
    ) -> None:
        self.path = path
        self.run_ids = list(run_ids)
        self.writes = 0
        self.written = written
        self.every_s = every_s
        name = f"checkpoint-{path.stem}"
        self._writer = BackgroundWriter(self._write, name=name) if background else None
        self._newest: dict[str, Any] | None = None  # offered, not yet handed to a write
        self._last = time.monotonic()  # when the last write was started (or training began)

    def __call__(self, state: dict[str, Any]) -> None:
        """Take this epoch's state (already a CPU copy); write it when one is due."""
        self._newest = state
        if time.monotonic() - self._last >= self.every_s:
            self._start_write()

    def flush(self) -> None:
        """Write the newest state not yet written and wait for it (the worker hands the
        group back: what it trained since the last write is kept)."""
        if self._newest is not None:
            self._start_write()
        if self._writer is not None:
            self._writer.drain()

    def _start_write(self) -> None:
        state, self._newest, self._last = self._newest, None, time.monotonic()
        assert state is not None
        if self._writer is None:
            self._write(state)
        else:
            self._writer.submit(state)

    def _write(self, state: dict[str, Any]) -> None:
        """Replace the file with this state; a disk error costs crash safety, not runs."""
        state = {**state, "run_ids": self.run_ids}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.save(state, self.path)
        except OSError as exc:
            log.warning("checkpoint %s not written: %s", self.path, exc)
            return
        self.writes += 1
        if self.written is not None:
            self.written(self.path, state)

    def close(self) -> None:
        """Drop a pending state and wait for a write in flight (the file is settled then)."""
        self._newest = None
        if self._writer is not None:
            self._writer.close()

    def remove(self) -> None:
        """Delete the file once the group has ended (nothing left to resume)."""
        self.close()
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("checkpoint %s not removed: %s", self.path, exc)


@dataclass(frozen=True)
class Due:
    """A run this task should train: its spec on the worker's device, its planned group."""

    run_id: str
    spec: RunSpec
    group: str | None
    checkpoint: str | None = None  # the group file of an earlier attempt, if any
    continuing: dict[str, Any] | None = None  # {"from_epoch", "save"}: continued from there

    @property
    def start_epoch(self) -> int:
        """The epochs it has before this training (a continued run's stored state has some)."""
        return int(self.continuing["from_epoch"]) if self.continuing else 0


class Ended(Callback):
    """The callback of a run in a resumed group file that has ended since: it stops at once
    and writes nothing (its model trains no further)."""

    def should_stop(self) -> bool:
        return True


def resumable(
    started: list[Due], path: Path, *, store: Store
) -> tuple[list[Due], dict[str, Any] | None]:
    """The group to train and the state to resume it from.

    When the group file at path covers these runs (and maybe others of the group that ended
    since: cancelled, stopped early), the group is the file's runs in its order; else the runs
    as they are, from scratch (a file another host wrote but this one can't see is said in
    the runs' events, through `store`).
    """
    if not path.exists():
        if any(d.checkpoint for d in started):  # an earlier attempt may have written one
            note_unreachable(started, path, store=store)
        return started, None
    try:
        state = checkpoint.load(path)
        by_id = {d.run_id: d for d in started}
        ids = list(state.get("run_ids") or [])
        specs = {i: RunSpec(**s) for i, s in zip(ids, state["specs"], strict=True)}
    except (CheckpointError, OSError, KeyError, TypeError, ValueError) as exc:
        log.warning("checkpoint %s unusable, starting over: %s", path, exc)
        return started, None
    if not set(by_id) <= set(ids):
        log.info("checkpoint %s covers runs %s, not %s: starting over", path, ids, list(by_id))
        return started, None
    ended = set(ids) - set(by_id)
    log.info(
        "runs %s: resuming from epoch %d of %s%s",
        ids,
        state.get("epoch", 0),
        path,
        f" (ended since: {sorted(ended)})" if ended else "",
    )
    return [by_id.get(i) or Due(i, specs[i], None) for i in ids], state


def note_unreachable(started: list[Due], path: Path, *, store: Store) -> None:
    """Say in each run's events that it trains again from epoch 1, when epochs were recorded
    by an earlier attempt whose file is not here (another host's private disk, or lost)."""
    for d in started:
        reason = (
            f"checkpoint not reachable from this host ({path.name} under its checkpoint "
            f"directory): training again from epoch {d.start_epoch + 1}; epochs already "
            "recorded are kept"
        )
        recorded = store.leases.note_restart(run_id=d.run_id, holder=holder(), reason=reason)
        if recorded > 0:
            log.warning("run %s: %s (%d recorded)", d.run_id, reason, recorded)


def train_resumable(
    started: list[Due],
    callbacks: list[Callback],
    *,
    data: TensorData,
    saver: GroupCheckpoint,
    resume: dict[str, Any] | None,
    best_by: list[Criterion | None] | None = None,
    batched: bool = False,
    continue_from: list[dict[str, Any]] | None = None,
    share: bool = True,
) -> list[RunResult]:
    """train_group, from the checkpoint when given, else from the continued runs' stored
    states (`continue_from`); a checkpoint that does not fit starts over from epoch 1 (as a
    continued run trains as one of its epochs from the start, that costs only time).
    `best_by`: each run's best-epoch criterion (its sweep's metric); `batched` and `share`:
    see train_group."""
    specs = [d.spec for d in started]
    train = partial(
        train_group,
        specs,
        callbacks=callbacks,
        data=data,
        best_by=best_by,
        batched=batched,
        share=share,
    )
    try:
        if resume is None:
            return train(on_checkpoint=saver, continue_from=continue_from)
        return train(on_checkpoint=saver, resume=resume)
    except CheckpointError as exc:  # raised before any training: safe to start over
        if resume is None:
            raise
        log.warning("checkpoint %s does not fit, starting over: %s", saver.path, exc)
        return train(on_checkpoint=saver)


def remove_earlier(started: list[Due], key: str, checkpoint_dir: Path) -> None:
    """Remove group files of earlier attempts under other keys (the group was re-planned)."""
    for old in {d.checkpoint for d in started if d.checkpoint is not None} - {key}:
        GroupCheckpoint(checkpoint_path(checkpoint_dir, old), []).remove()
