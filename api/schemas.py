"""Response models: what every route returns, as documented in /docs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Header
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mlpcore.limits import LimitName
from mlpcore.spec import NoBool, Number, RunSpec
from mlpcore.status import RunStatus
from mlpcore.sweep import Metric, Mode

_KEY = re.compile(r"[!-~]{1,255}")  # printable ASCII, no spaces


def _idempotency_key(value: str | None) -> str | None:
    """The key as sent, if it is 1-255 printable ASCII characters without spaces."""
    if value is not None and not _KEY.fullmatch(value):
        raise ValueError("must be 1 to 255 printable ASCII characters without spaces (a UUID)")
    return value


# The Idempotency-Key request header of POST /v1/runs and /v1/sweeps; it names the first
# submission made with it for 24 h (lab/idempotency.py).
IdempotencyKey = Annotated[
    str | None,
    Header(
        description="a key of your own per submission (a UUID): a retry with the same key "
        "(after a dropped connection) answers the first submission instead of making a second",
    ),
    AfterValidator(_idempotency_key),
]


class EpochPublic(BaseModel):
    """One epoch's metrics, as reported by the worker (non-finite values are null)."""

    model_config = ConfigDict(extra="allow")

    epoch: int
    train_loss: float | None
    test_loss: float | None
    test_accuracy: float | None
    lr: float | None
    seconds: float | None
    ts: float | None = None  # unix time the worker finished the epoch


class ResultPublic(BaseModel):
    """A finished run's final numbers."""

    model_config = ConfigDict(extra="allow")

    final_train_loss: float | None = None
    final_test_loss: float | None = None
    final_test_accuracy: float | None = None
    runtime_s: float | None = None


class RunPublic(BaseModel):
    """A run record with its per-epoch metrics so far and its final result."""

    id: str
    status: RunStatus
    spec: RunSpec
    owner: str
    sweep_id: str | None
    varied: dict[str, Any] | None
    fused_group: str | None = None  # shared by runs trained as one fused model; None: alone
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    epochs: list[EpochPublic]
    result: ResultPublic | None
    error: str | None
    worker: str | None
    device: str | None
    cancel_requested: bool
    queue_position: int | None = None  # while queued: runs fair share dispatches before it
    requeues: int = 0  # times its worker vanished or shut down and it was queued again


class RunsPublic(BaseModel):
    """One page of runs and how many match in all."""

    data: list[RunPublic]
    count: int


class BestConfig(BaseModel):
    """The winning configuration: the fields the sweep varied and the full spec."""

    varied: dict[str, Any]
    spec: RunSpec


class BestPublic(BaseModel):
    """The best finished run of a sweep so far."""

    run_id: str
    metric: Metric
    mode: Mode
    value: float
    config: BestConfig


class LeaderboardRow(BaseModel):
    """A run's place: finished runs best first, then the rest in sweep order."""

    rank: int | None
    run_id: str
    status: RunStatus
    value: float | None
    varied: dict[str, Any]


class LeaderboardPublic(BaseModel):
    """A sweep's runs ranked by its metric."""

    sweep_id: str
    metric: Metric
    mode: Mode
    data: list[LeaderboardRow]
    count: int


class StagePublic(BaseModel):
    """One stage of a staged sweep: the field it varies, its runs and the winners it carried."""

    field: str
    values: list[Any]
    status: Literal["pending", "running", "finished"]
    run_ids: list[str]
    kept: list[str] = []  # run ids of earlier stages it repeats as they are (first in run_ids)
    winners: list[str]  # run ids carried into the next stage, best first


class SweepPublic(BaseModel):
    """A sweep record: its runs, their status counts and the best so far."""

    id: str
    name: str | None
    owner: str
    spec: dict[str, Any]
    metric: Metric
    mode: Mode
    varied: list[str]
    run_ids: list[str]
    counts: dict[str, int]
    done: bool
    best: BestPublic | None
    stages: list[StagePublic] | None = None  # staged sweeps only, in order
    end_reason: str | None = None  # why a staged sweep ended before its last stage
    epochs_saved: int = 0  # epochs its early-stopped runs did not train
    created_at: datetime


class WorkerPublic(BaseModel):
    """A worker that sent a heartbeat recently."""

    model_config = ConfigDict(extra="allow")

    hostname: str
    seen: float


class HealthPublic(BaseModel):
    """Liveness and what the API can reach."""

    status: Literal["ok", "degraded", "unavailable"]
    redis: bool
    workers: list[WorkerPublic]


class UsagePublic(BaseModel):
    """A user's runs that count against the quotas right now."""

    queued: int
    running: int
    promised: int = 0  # runs the later stages of their running staged sweeps may still create
    param_epochs: int = 0  # parameters x epochs of the queued and running runs (the budget's)
    streams: int = 0  # event streams open now (max_streams)


class LimitsPublic(BaseModel):
    """The caller's effective limits (server settings with their overrides) and usage."""

    user: str
    admin: bool
    priority: float
    limits: dict[LimitName, int | None]  # max_running None: no cap
    overrides: dict[LimitName, int]
    usage: UsagePublic


class UserPublic(BaseModel):
    """A user as an admin sees it (never a token or its hash)."""

    name: str
    admin: bool
    priority: float
    overrides: dict[LimitName, int]
    created_at: datetime | None
    revoked: bool


class UsersPublic(BaseModel):
    """Every user."""

    data: list[UserPublic]
    count: int


class UserUpdate(BaseModel):
    """An admin's change to a user: priority, and limit overrides (null drops one)."""

    model_config = ConfigDict(extra="forbid")

    priority: Number | None = Field(default=None, gt=0, le=1000)
    limits: dict[LimitName, Annotated[int, NoBool, Field(ge=1, lt=2**63)] | None] = Field(
        default_factory=dict
    )
