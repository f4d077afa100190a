"""The one status vocabulary of a run; every terminal set is derived from it.

Plain Python (no pydantic, no torch): the thin client imports it too.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Lifecycle of a run; all but queued and running are terminal."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    diverged = "diverged"
    stopped_early = "stopped_early"  # by the sweep's early-stopping rule


ACTIVE = (RunStatus.queued, RunStatus.running)  # in lifecycle order
TERMINAL = frozenset(set(RunStatus) - set(ACTIVE))
# the tiers a sweep ranks, in rank order: an early-stopped run's value is its last epoch's
RANKED = (RunStatus.succeeded, RunStatus.stopped_early)
