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


def _when_set() -> Any:
    """An optional field left out of the response when None: a run without a val split keeps
    the record's shape (mlpcore.callbacks.EpochMetrics.to_dict leaves them out too)."""
    return Field(default=None, exclude_if=lambda value: value is None)


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
    val_loss: float | None = _when_set()  # with a val split (spec val_fraction > 0)
    val_accuracy: float | None = _when_set()


class ResultPublic(BaseModel):
    """A finished run's final numbers."""

    model_config = ConfigDict(extra="allow")

    final_train_loss: float | None = None
    final_test_loss: float | None = None
    final_test_accuracy: float | None = None
    runtime_s: float | None = None
    final_val_loss: float | None = _when_set()  # the val metrics: with a val split only
    final_val_accuracy: float | None = _when_set()
    best_val_loss: float | None = _when_set()
    best_val_accuracy: float | None = _when_set()
    best_epoch: int | None = _when_set()  # by the sweep's metric's epoch field (alone: val loss)
    # its first epochs trained once with runs whose lrs agreed that far (mlpcore.schedule)
    shared_epochs: int | None = _when_set()


class ModelPublic(BaseModel):
    """What became of a finished run's trained model: stored (its files' bytes; download it
    from /v1/runs/{id}/model), or evicted, deleted or failed (with the reason)."""

    model_config = ConfigDict(extra="allow")

    state: Literal["stored", "evicted", "deleted", "failed"]
    reason: str | None = None
    files: dict[str, int] | None = None  # final, and best with a val split -> bytes
    bytes: int | None = None  # all its files, model.json included: what max_artifact_bytes counts
    save_s: float | None = None  # seconds the worker took to write and count it
    at: float | None = None  # unix time of the change


class ModelInfoPublic(BaseModel):
    """GET /v1/runs/{id}/model.json: how to rebuild the run's model, and its files."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    config: dict[str, Any]  # mlpcore.export's: widths, activation, input scaling, dataset, spec
    best_epoch: int | None = None
    files: dict[str, dict[str, Any]]  # final / best / config -> name, bytes, sha256


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
    repeat: int = 0  # which of its configuration's repeats (seed = the configuration's + repeat)
    model: ModelPublic | None = None  # its trained model, once it ended (None: it has none)
    name: str | None = None  # its owner's labels (PATCH /v1/runs/{id})
    tags: list[str] = []
    notes: str | None = None
    attempts: list[dict[str, Any]] = []  # earlier attempts, oldest first (sweep retry)
    # each time it was continued to more epochs (sweep extend): from and to which epoch,
    # when, and the result it had before; oldest first
    extensions: list[dict[str, Any]] = []


class RunsPublic(BaseModel):
    """One page of runs and how many match in all."""

    data: list[RunPublic]
    count: int


class BestConfig(BaseModel):
    """The winning configuration: the fields the sweep varied and the full spec."""

    varied: dict[str, Any]
    spec: RunSpec


class VerdictSide(BaseModel):
    """One configuration of a verdict and its numbers over its repeats."""

    varied: dict[str, Any]
    mean: float | None
    std: float | None
    n: int
    run_ids: list[str]


class VerdictPublic(BaseModel):
    """Whether the best configuration beats the runner-up by more than seed noise (Welch: the
    gap of the means against sqrt(s1^2/n1 + s2^2/n2), lab/verdict.py)."""

    status: Literal["clear", "noise", "not_enough_repeats", "no_runner_up"]
    summary: str  # the verdict in one sentence
    metric: Metric
    best: VerdictSide
    runner_up: VerdictSide | None
    diff: float | None  # |mean best - mean runner-up|
    se: float | None  # the standard error of that difference
    ratio: float | None  # diff / se
    df: float | None  # Welch-Satterthwaite degrees of freedom
    threshold: float | None  # the ratio a clear winner needs (Student's t, 95%)


class BestPublic(BaseModel):
    """The best finished run of a sweep so far."""

    run_id: str  # with repeats: the best run of the best configuration
    metric: Metric
    mode: Mode
    value: float  # with repeats: the configuration's mean
    config: BestConfig
    runs: list[str] | None = None  # with repeats: all the configuration's run ids
    mean: float | None = None
    std: float | None = None  # sample standard deviation (ddof=1) over its repeats
    n: int | None = None  # its succeeded runs with a value
    warnings: list[str] = []  # plain words on the sweep's metric (a winner chosen on test)
    verdict: VerdictPublic | None = None  # does it beat the runner-up beyond seed noise?


class LeaderboardRow(BaseModel):
    """A run's place: finished runs best first, then the rest in sweep order."""

    rank: int | None
    run_id: str  # by configuration: its best run
    status: RunStatus
    value: float | None  # by configuration: the mean
    varied: dict[str, Any]
    mean: float | None = None  # by configuration only: mean, std (ddof=1), n, all its runs
    std: float | None = None
    n: int | None = None
    run_ids: list[str] | None = None


class LeaderboardPublic(BaseModel):
    """A sweep's runs (or, with repeats, configurations) ranked by its metric."""

    sweep_id: str
    metric: Metric
    mode: Mode
    by: Literal["run", "config"] = "run"
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
    verdict: VerdictPublic | None = None  # on the stage's best configuration


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
    repeats: int = 1  # runs per configuration
    warnings: list[str] = []  # plain words on the sweep's metric (a winner chosen on test)
    verdict: VerdictPublic | None = None  # None until a configuration has succeeded runs
    stages: list[StagePublic] | None = None  # staged sweeps only, in order
    end_reason: str | None = None  # why a staged sweep ended before its last stage
    epochs_saved: int = 0  # epochs its early-stopped runs did not train
    search: dict[str, Any] | None = None  # learned sweeps: batches done, best, what comes next
    tags: list[str] = []  # its owner's labels (PATCH /v1/sweeps/{id})
    notes: str | None = None
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
    artifact_bytes: int = 0  # bytes of their stored models (max_artifact_bytes)
    models: int = 0  # their stored models


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
