"""API settings, read from MLPLAB_* environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from runstore.keys import DEFAULT_REDIS_URL


class ApiSettings(BaseSettings):
    """Everything the API process can be configured with."""

    model_config = SettingsConfigDict(env_prefix="MLPLAB_")

    redis_url: str = DEFAULT_REDIS_URL
    key_prefix: str = Field(default="mlplab", description="prefix of every runstore key")
    auth: bool = Field(
        default=True, description="Bearer tokens on /v1; off: everyone is the admin user local"
    )
    max_epochs: int = Field(default=200, ge=1)
    max_hidden_width: int = Field(default=4096, ge=1)
    max_hidden_layers: int = Field(default=8, ge=1)
    max_batch_size: int = Field(default=8192, ge=1)
    max_runs_per_sweep: int = Field(default=256, ge=1)
    max_queued: int = Field(default=1000, ge=1, description="queued+running runs per user")
    max_running: int | None = Field(
        default=None, ge=1, description="runs dispatched at once per user; None: no cap"
    )
    max_fused_models: int = Field(
        default=64, ge=1, description="most runs of a sweep sent as one fused task"
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    redis_max_connections: int = Field(
        default=1000,
        ge=10,
        description="async Redis connections: one per open SSE stream plus "
        "lookups; past it a request waits up to 5 s for one (then 503)",
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
