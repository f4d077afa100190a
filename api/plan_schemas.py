"""Response models of a dry run (`POST /v1/sweeps?dry_run=true`): how a sweep would train."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class GroupPlanPublic(BaseModel):
    """One group of runs that would train as one stacked model (or alone)."""

    runs: int
    fused: bool
    shape: dict[str, Any]  # the fusion key's fields: dataset, hidden, batch_size, epochs, ...
    configurations: list[dict[str, Any]]  # each run's varied values


class DryRunPublic(BaseModel):
    """A sweep checked as a submission is, with nothing written: its groups, its cost, and
    the time the live workers would take at the speed they measured."""

    dry_run: bool
    runs: int  # runs queued at submission (a staged sweep: its first stage)
    runs_at_most: int
    groups: list[GroupPlanPublic]
    model_epochs: int
    # less the epochs that runs differing only in their lr schedule train once (their lrs
    # agree so far: mlpcore.schedule), which workers do unless MLPLAB_SHARE_PREFIXES=0
    trained_model_epochs: int
    param_samples: int  # parameters x training samples x trained epochs, summed over the runs
    estimate_s: float | None  # on the fastest measured worker; None: none measured yet
    estimate_parallel_s: float | None = None  # groups spread over the measured workers
    estimate_reason: str | None = None
    workers_measured: int = 0
    speed: float | None = None  # the fastest worker's parameter-samples per second
    note: str | None = None
