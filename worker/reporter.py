"""How a training group talks to the run store: one StoreReporter per run (epochs, cancel
polls, its end), writing under this process's lease and waiting out short Redis outages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mlpcore.status import RunStatus
from mlpcore.train import Callback, EpochMetrics, RunResult
from runstore import LeaseLost, Store
from worker import leases

log = logging.getLogger(__name__)
T = TypeVar("T")
REDIS_RETRY_S = 300.0  # how long training waits for Redis to come back before giving up


class StoreReporter(Callback):
    """Appends each epoch to the run's stream, polls its cancel flag (throttled), ends it;
    stops writing once its lease is lost, and hands the group back on shutdown."""

    def __init__(self, store: Store, run_id: str, *, poll_s: float) -> None:
        self.store = store
        self.run_id = run_id
        self.poll_s = poll_s
        self.finished = False
        self.lost = False  # another worker holds the run now: write nothing more
        self._next_poll = 0.0
        self._stop = False

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        """Publish the epoch with the wall-clock time it ended (for latency measurements)."""
        metrics_data = {**metrics.to_dict(), "ts": time.time()}
        try:
            _retrying(
                lambda: self.store.append_epoch(
                    run_id=self.run_id, metrics=metrics_data, holder=leases.holder()
                )
            )
        except LeaseLost:
            log.warning(
                "run %s: lease lost, another worker has it; stopping without writing", self.run_id
            )
            self.lost = True

    def should_stop(self) -> bool:
        """True once a cancel was requested or the lease was lost; Redis is read at most
        every poll_s seconds. Raises HandBack once the worker is shutting down."""
        if leases.SHUTDOWN.is_set():
            raise leases.HandBack
        now = time.monotonic()
        if not self._stop and now >= self._next_poll:
            self._next_poll = now + self.poll_s
            self._stop = _retrying(lambda: self.store.cancel_requested(run_id=self.run_id))
        self.lost = self.lost or leases.is_lost(self.run_id)
        return self._stop or self.lost

    def on_end(self, result: RunResult) -> None:
        """Record the end at once: in a fused group the others may train on."""
        if not self.lost:
            _retrying(lambda: finish(self.store, self.run_id, result))
        leases.let_go([self.run_id])
        self.finished = True


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


def finish(store: Store, run_id: str, result: RunResult) -> None:
    """Record a run's end: its status, final numbers and, unless it succeeded, the reason."""
    error = None if result.status == RunStatus.succeeded else result.reason
    store.finish_run(
        run_id=run_id,
        status=result.status,
        result=result.result,
        error=error,
        holder=leases.holder(),
    )
    log.info("run %s: %s", run_id, result.status)
