"""Whether an ended run can train on to more epochs and end as a run of those epochs from the
start (mlpcore.continuation continues it; lab/extend.py asks before queuing). Plain Python:
no torch, no pydantic, so the API and the standalone GPU check both import it."""

from __future__ import annotations

from typing import Any

CONTINUABLE_SCHEDULERS = frozenset({"step", "none"})


def continuable(spec: Any, epochs: int) -> str | None:
    """Why a run of `spec` (ended after spec.epochs) cannot continue to `epochs` and train as
    one of `epochs` from the start; None if it can (mlpcore.continuation continues it)."""
    if spec.scheduler not in CONTINUABLE_SCHEDULERS:
        return (
            f"scheduler {spec.scheduler!r} anneals the lr over the run's total epochs, so a run "
            f"of {spec.epochs} epochs continued to {epochs} would not train as one of {epochs} "
            "from the start; submit a new sweep with the epochs you want"
        )
    if epochs <= spec.epochs:
        return f"it has trained {spec.epochs} epochs already, not fewer than {epochs}"
    return None
