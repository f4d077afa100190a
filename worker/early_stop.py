"""Early stopping in the worker: a callback around a run's StoreReporter that applies its
sweep's rule (mlpcore.stopping) after every epoch, reading the peers' values from Redis.

The decision waits for `should_stop`, which the trainer polls once every run of the fused
group has reported the epoch, so group mates see each other's values. A run the rule stops
is masked in its group like a cancelled one (its mates go on) and ends `stopped_early` with
the rule's reason; a user's cancel still ends it `cancelled`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

from pydantic import TypeAdapter

from mlpcore.fused import Callback, EpochMetrics, RunResult
from mlpcore.status import RunStatus
from mlpcore.stopping import (
    EPOCH_METRIC,
    AshaRule,
    EarlyStopping,
    MedianRule,
    needs_peers,
    stop_reason,
)
from runstore import Store
from runstore.early import epoch_values, peer_ids

log = logging.getLogger(__name__)
_RULE: TypeAdapter[MedianRule | AshaRule] = TypeAdapter(EarlyStopping)


class Reporter(Protocol):
    """What the wrapper needs of a StoreReporter."""

    run_id: str

    def on_epoch_end(self, metrics: EpochMetrics) -> None: ...
    def should_stop(self) -> bool: ...
    def on_end(self, result: RunResult) -> None: ...


@dataclasses.dataclass(frozen=True)
class Judge:
    """A sweep's rule as it applies to one run: whom it is compared with, and on what."""

    rule: MedianRule | AshaRule
    peers: tuple[str, ...]  # the other runs (stage or sweep)
    name: str  # the per-epoch metric, e.g. train_loss
    mode: str
    epochs: int

    def reason(self, store: Store, metrics: EpochMetrics) -> str | None:
        """Why the run stops after this epoch, or None."""
        if not needs_peers(self.rule, epoch=metrics.epoch, epochs=self.epochs):
            return None
        peers = epoch_values(store, list(self.peers), epoch=metrics.epoch, name=self.name)
        return stop_reason(
            self.rule,
            getattr(metrics, self.name),
            peers,
            epoch=metrics.epoch,
            epochs=self.epochs,
            mode=self.mode,
            name=self.name,
        )


class EarlyStopper(Callback):
    """The reporter plus the rule: stops the run when the rule says so, as stopped_early."""

    def __init__(self, inner: Reporter, *, store: Store, judge: Judge) -> None:
        self.inner, self.store, self.judge = inner, store, judge
        self.reason: str | None = None
        self._pending: EpochMetrics | None = None
        self._cancelled = False

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        """Publish the epoch; judge it at the next should_stop (mates have reported then)."""
        self.inner.on_epoch_end(metrics)
        self._pending = metrics

    def should_stop(self) -> bool:
        """A user's cancel first, then the rule's verdict on the last epoch (once)."""
        if self.inner.should_stop():
            self._cancelled = True
            return True
        if self._pending is not None and self.reason is None:
            metrics, self._pending = self._pending, None
            self.reason = self.judge.reason(self.store, metrics)
        return self.reason is not None

    def on_end(self, result: RunResult) -> None:
        """Record the end; a stop the rule asked for is stopped_early with its reason."""
        if result.status == RunStatus.cancelled and self.reason is not None and not self._cancelled:
            result = dataclasses.replace(result, status=RunStatus.stopped_early, reason=self.reason)
            log.info("run %s: %s", self.inner.run_id, self.reason)
        self.inner.on_end(result)


def with_early_stopping(reporters: list[Any], *, store: Store) -> list[Callback]:
    """Each reporter, wrapped in an EarlyStopper when its sweep asks for early stopping."""
    runs = {r["id"]: r for r in store.get_runs([r.run_id for r in reporters], epochs=False)}
    sweeps: dict[str, dict[str, Any] | None] = {}
    out: list[Callback] = []
    for reporter in reporters:
        run = runs.get(reporter.run_id)
        judge = _judge(store, run, sweeps) if run is not None else None
        out.append(reporter if judge is None else EarlyStopper(reporter, store=store, judge=judge))
    return out


def _judge(store: Store, run: dict[str, Any], sweeps: dict[str, Any]) -> Judge | None:
    """The rule for this run from its sweep's spec (sweeps: a cache by id), or None."""
    sweep_id = run.get("sweep_id")
    if not sweep_id:
        return None
    if sweep_id not in sweeps:
        sweeps[sweep_id] = store.get_sweep(sweep_id)
    sweep = sweeps[sweep_id]
    if sweep is None or not (sweep["spec"] or {}).get("early_stopping"):
        return None
    rule = _RULE.validate_python(sweep["spec"]["early_stopping"])
    peers = tuple(p for p in peer_ids(store, sweep, run["id"]) if p != run["id"])
    return Judge(rule, peers, EPOCH_METRIC[sweep["metric"]], sweep["mode"], run["spec"]["epochs"])
