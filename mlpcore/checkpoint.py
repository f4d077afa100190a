"""Checkpoints of `train_group` state: bytes for Redis, files written atomically for disks."""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from mlpcore.errors import CheckpointError


def to_bytes(state: dict[str, Any]) -> bytes:
    """Serialise a state dict of tensors and plain values."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> dict[str, Any]:
    """Read `to_bytes` output onto the CPU; weights_only, so loading runs no foreign code."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"unreadable checkpoint: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"a checkpoint holds a dict, not {type(state).__name__}")
    return state


def save(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file.
    torch.save streams into the file itself, with no whole copy in memory first (to_bytes
    builds one and copies it again): less CPU taken from the training beside the writer's
    thread (the cadence rows of benchmarks/gpu_check.py)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from exc
    return from_bytes(data)
