"""Training in tests: the worker's settings on the unit-test Redis, a callback that cancels."""

from __future__ import annotations

from pathlib import Path

from mlpcore.fused import Callback
from tests.support.redis_db import TEST_PREFIX, UNIT_REDIS_URL


def worker_settings(tmp_path: Path):
    """WorkerSettings on the unit-test DB: CPU, one thread, data and checkpoints in tmp_path,
    the cancel flag read every 0.01 s."""
    from worker.settings import WorkerSettings

    return WorkerSettings(
        redis_url=UNIT_REDIS_URL,
        key_prefix=TEST_PREFIX,
        device="cpu",
        torch_threads=1,
        cancel_poll_s=0.01,
        data_dir=str(tmp_path),
        checkpoint_dir=tmp_path / "checkpoints",
        checkpoint_every_s=0.0,  # every epoch: tests count the files and act on each
        artifact_dir=tmp_path / "artifacts",
    )


class StopAfter(Callback):
    """Asks to stop once polled more than `polls` times; counts the polls."""

    def __init__(self, polls: int) -> None:
        self.polls, self.left = 0, polls

    def should_stop(self) -> bool:
        self.polls += 1
        return self.polls > self.left
