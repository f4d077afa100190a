"""How a training group talks to the run store: one StoreReporter per run (epochs, cancel
polls, its end), writing under this process's lease and waiting out short Redis outages.

A lost lease is never a status: the run is another holder's (or the queue's) now, so the
reporter raises mlpcore's Abandon and the trainer drops the run silently, writing nothing of
it, not even to the group's file, which the run's next holder resumes from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from artifacts import ArtifactStore
from mlpcore.callbacks import Abandon
from mlpcore.status import RunStatus
from mlpcore.train import Callback, EpochMetrics, RunResult
from runstore import LeaseLost, Store
from worker import artifacts, leases

log = logging.getLogger(__name__)
T = TypeVar("T")
REDIS_RETRY_S = 300.0  # how long training waits for Redis to come back before giving up


class StoreReporter(Callback):
    """Appends each epoch to the run's stream, polls its cancel flag (throttled), ends it;
    abandons the run once its lease is lost, and hands the group back on shutdown."""

    def __init__(self, store: Store, run_id: str, *, poll_s: float, files: ArtifactStore) -> None:
        self.store = store
        self.run_id = run_id
        self.files = files  # where its model goes at its end
        self.poll_s = poll_s
        self.finished = False
        self.lost = False  # another worker holds the run now: write nothing more
        self._next_poll = 0.0
        self._stop = False

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        """Publish the epoch with the wall-clock time it ended (for latency measurements);
        Abandon when the store refuses it (the lease was lost)."""
        metrics_data = {**metrics.to_dict(), "ts": time.time()}
        try:
            _retrying(
                lambda: self.store.append_epoch(
                    run_id=self.run_id, metrics=metrics_data, holder=leases.holder()
                )
            )
        except LeaseLost:
            self._abandon(f"epoch {metrics.epoch} refused")

    def should_stop(self) -> bool:
        """True once a cancel was requested (Redis is read at most every poll_s seconds);
        Abandon once a renewal found the lease lost; HandBack once the worker shuts down."""
        if leases.SHUTDOWN.is_set():
            raise leases.HandBack
        if leases.is_lost(self.run_id):
            self._abandon("its renewal refused")
        now = time.monotonic()
        if not self._stop and now >= self._next_poll:
            self._next_poll = now + self.poll_s
            self._stop = _retrying(lambda: self.store.cancel_requested(run_id=self.run_id))
        return self._stop

    def on_end(self, result: RunResult) -> None:
        """Record the end at once: in a fused group the others may train on. A refused end
        (the lease was lost just now) counts as a lost lease: the group's file stays."""
        if not self.lost and not _retrying(
            lambda: finish(self.store, self.run_id, result, files=self.files)
        ):
            log.warning("run %s: its end was refused, another worker has it", self.run_id)
            self.lost = True
        leases.let_go([self.run_id])
        self.finished = True

    def _abandon(self, why: str) -> NoReturn:
        """Give the run up without a trace: it is not this process's any more."""
        log.warning("run %s: lease lost (%s), another worker has it; dropped", self.run_id, why)
        self.lost = True
        raise Abandon(self.run_id)


def _retrying(call: Callable[[], T]) -> T:
    """call(), retried while Redis is unreachable (training pauses rather than fails)."""
    deadline, delay = time.monotonic() + REDIS_RETRY_S, 0.5
    while True:
        try:
            return call()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if time.monotonic() > deadline or leases.SHUTDOWN.is_set():
                raise
            log.warning("Redis unreachable (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(2 * delay, 5.0)


def finish(store: Store, run_id: str, result: RunResult, *, files: ArtifactStore) -> bool:
    """Record a run's end: its status, final numbers, where its model is (stored first) and,
    unless it succeeded, the reason; False when refused (this process no longer holds the
    run: its model is removed again)."""
    error = None if result.status == RunStatus.succeeded else result.reason
    before = store.models.record(run_id)  # a continued run's model until this end
    model = artifacts.save_model(store, run_id, result, files=files)
    done = store.finish_run(
        run_id=run_id,
        status=result.status,
        result=result.result,
        error=error,
        holder=leases.holder(),
        model=model,
    )
    if done:
        artifacts.superseded(files, run_id, before, model)
    else:
        artifacts.discard(store, run_id, model, files=files)
    log.info("run %s: %s%s", run_id, result.status, "" if done else " (refused: not held)")
    return done
