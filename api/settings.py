"""API settings, read from MLPLAB_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from artifacts import default_artifact_dir
from mlpcore.limits import DEFAULT_MAX_EPOCHS
from runstore.keys import DEFAULT_REDIS_URL


class ApiSettings(BaseSettings):
    """Everything the API process can be configured with."""

    model_config = SettingsConfigDict(env_prefix="MLPLAB_")

    redis_url: str = DEFAULT_REDIS_URL
    key_prefix: str = Field(default="mlplab", description="prefix of every runstore key")
    auth: bool = Field(
        default=True, description="Bearer tokens on /v1; off: everyone is the admin user local"
    )
    max_epochs: int = Field(default=DEFAULT_MAX_EPOCHS, ge=1)
    max_hidden_width: int = Field(default=4096, ge=1)
    max_hidden_layers: int = Field(default=8, ge=1)
    max_batch_size: int = Field(default=8192, ge=1)
    max_runs_per_sweep: int = Field(default=256, ge=1)
    max_queued: int = Field(default=1000, ge=1, description="queued+running runs per user")
    max_running: int | None = Field(
        default=None, ge=1, description="runs dispatched at once per user; None: no cap"
    )
    # 10**11 param-epochs: the study's MLP (567 k parameters) for 200 epochs 880 times over,
    # or 4 runs at every spec limit (120.7 M parameters, 200 epochs), but not 256 of them
    max_param_epochs: int = Field(
        default=10**11,
        ge=1,
        description="compute budget per user: parameters x epochs summed over "
        "their queued and running runs",
    )
    max_fused_models: int = Field(
        default=64, ge=1, description="most runs of a sweep sent as one fused task"
    )
    # 1 GiB: about 150 of the study's succeeded runs (567 k float32 parameters: 2.3 MB of
    # weights, 4.5 MB of Adam state kept to continue them to more epochs)
    max_artifact_bytes: int = Field(
        default=2**30,
        ge=1,
        description="bytes of stored models per user; past it their oldest models are evicted",
    )
    artifact_dir: Path = Field(
        default_factory=default_artifact_dir,
        description="the model files the workers store (the same directory as theirs)",
    )
    idempotency_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="how long a request waits for the first submission made "
        "with its Idempotency-Key to be written before answering 409",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    max_streams: int = Field(
        default=50,
        ge=1,
        description="event streams (SSE) one user may hold open at once, "
        "counted across API processes; past it 429",
    )
    # Two pools, so that streams can never take the connections requests need: a blocked
    # XREAD holds its connection for up to a second, and one user's thousand streams once
    # made everyone's lookups wait 5 s and fail (503).
    redis_max_connections: int = Field(
        default=200,
        ge=10,
        description="async Redis connections for requests (tokens, record "
        "lookups); past it a request waits up to 5 s for one (then 503)",
    )
    redis_stream_connections: int = Field(
        default=1000,
        ge=10,
        description="async Redis connections for SSE streams, one per open "
        "stream's blocked read: size it max_streams x the users streaming at once; past it "
        "a stream's next read waits for one",
    )
    redis_timeout_s: float = Field(
        default=5.0,
        ge=2,
        description="connect/read timeout of the run store and broker "
        "sockets: a dead or frozen Redis is a 503 after this long, not a hang",
    )
    visibility_timeout_s: int = Field(
        default=24 * 3600, description="Celery redelivers a task unacked for this long"
    )
    reap_interval_s: float = Field(
        default=5.0, gt=0, description="how often to requeue runs whose worker's lease expired"
    )
    reap_grace_s: float = Field(
        default=20.0,
        ge=0,
        description="no reaping this long after Redis failed (live "
        "workers renew their leases first); above a lease",
    )
    repair_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="how often to settle what a submission cut in half "
        "left behind: stray queued runs, groups without a token (runstore/strays.py)",
    )
    stray_after_s: float = Field(
        default=120.0,
        gt=0,
        description="a queued run in no queue counts as a stray (and "
        "fails) only after this long, so submissions in flight are left alone",
    )
    # GET /metrics (api/metrics.py): with auth on it labels runs by user (user names are a
    # small, admin-managed set) and then answers only an admin's token or metrics_token; set
    # metrics_per_user=false for an open endpoint with totals only. Auth off: open, no users.
    metrics_per_user: bool | None = Field(
        default=None, description="per-user run gauges on /metrics; unset: on exactly with auth"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="a Bearer token that may scrape /metrics (for Prometheus)"
    )


@lru_cache
def get_settings() -> ApiSettings:
    """The process's settings, read from the environment once."""
    return ApiSettings()
