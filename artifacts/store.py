"""The artifact store: one small interface, a directory behind it by default.

A run's files live under `<run id>/<save id>/<name>`. The save id is the writer's own (a
worker process saving a run), so a worker that lost its run to another one while saving
removes its own files and never the other's; the run record names the save that counts.
Every write is atomic: a temporary file in the same directory, fsync, rename, fsync of the
directory, so a reader sees a whole file or none, even across a crash.

Every id and name is checked against a strict pattern before it becomes part of a path.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

RUN_ID = re.compile(r"[0-9a-f]{16}")  # runstore.new_id's format
SAVE_ID = re.compile(r"[0-9a-f]{1,32}")
FILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\.[a-z0-9]{1,16}")
# A saved model's files: its weights (final; best with a val split) and how to rebuild it.
WEIGHT_FILES = {"final": "final.safetensors", "best": "best.safetensors"}
CONFIG_FILE = "model.json"
# A succeeded run's final training state (weights, optimizer moments, history), to continue it
# to more epochs: the worker's own, never served by the API.
STATE_FILE = "state.pt"


class ArtifactError(Exception):
    """Base of the artifact store's errors (a bad id or name is a ValueError)."""


class ArtifactMissing(ArtifactError):
    """A file that is not in the store (never written, evicted or deleted)."""


@dataclass(frozen=True)
class StoredFile:
    """A file as written: its name, size and SHA-256 (hex)."""

    name: str
    bytes: int
    sha256: str


class ArtifactStore(Protocol):
    """What the worker writes models with and the API serves them from."""

    def put(self, run_id: str, save: str, name: str, data: bytes) -> StoredFile:
        """Write one file atomically (replacing one of the same name)."""
        ...

    def open(self, run_id: str, save: str, name: str) -> BinaryIO:
        """The file, open for reading; ArtifactMissing when it is not there."""
        ...

    def remove(self, run_id: str, save: str | None = None) -> None:
        """Delete one save of a run's files, or all of them; nothing there is fine."""
        ...


def default_artifact_dir() -> Path:
    """<$MLPLAB_STATE_DIR, else $XDG_STATE_HOME/mlplab, else ~/.local/state/mlplab>/artifacts:
    beside the workers' checkpoints (worker/settings.py's default_checkpoint_dir)."""
    state = os.environ.get("MLPLAB_STATE_DIR")
    if not state:
        base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        state = str(Path(base) / "mlplab")
    return Path(state).expanduser() / "artifacts"


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    """The value if it matches the pattern whole; else ValueError (it becomes a path)."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"invalid {what} {str(value)[:40]!r}")
    return value


class DirectoryStore:
    """Files under one root directory (a local disk, a docker volume, a shared mount)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _dir(self, run_id: str, save: str | None = None) -> Path:
        run_dir = self.root / _checked(RUN_ID, run_id, "run id")
        return run_dir if save is None else run_dir / _checked(SAVE_ID, save, "save id")

    def _path(self, run_id: str, save: str, name: str) -> Path:
        return self._dir(run_id, save) / _checked(FILE_NAME, name, "file name")

    def put(self, run_id: str, save: str, name: str, data: bytes) -> StoredFile:
        """Write one file atomically: temporary file, fsync, rename, fsync the directory."""
        path = self._path(run_id, save, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return StoredFile(name=name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())

    def open(self, run_id: str, save: str, name: str) -> BinaryIO:
        """The file, open for reading; ArtifactMissing when it is not there."""
        path = self._path(run_id, save, name)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise ArtifactMissing(f"no {name} for run {run_id}") from None

    def remove(self, run_id: str, save: str | None = None) -> None:
        """Delete one save of a run's files, or the run's whole directory."""
        target = self._dir(run_id, save)
        shutil.rmtree(target, ignore_errors=True)
        if save is not None:
            try:
                target.parent.rmdir()  # the run's directory, once its last save is gone
            except OSError:
                pass  # other saves remain (or it is gone already)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in the directory durable (POSIX: fsync the directory itself)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
