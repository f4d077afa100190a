"""Worker settings, read from MLPLAB_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from artifacts import default_artifact_dir
from runstore.keys import DEFAULT_REDIS_URL


def default_checkpoint_dir() -> Path:
    """<$MLPLAB_STATE_DIR, else $XDG_STATE_HOME/mlplab, else ~/.local/state/mlplab>/checkpoints."""
    state = os.environ.get("MLPLAB_STATE_DIR")
    if not state:
        base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        state = str(Path(base) / "mlplab")
    return Path(state).expanduser() / "checkpoints"


class WorkerSettings(BaseSettings):
    """Everything a worker process can be configured with."""

    model_config = SettingsConfigDict(env_prefix="MLPLAB_")

    redis_url: str = DEFAULT_REDIS_URL
    key_prefix: str = Field(default="mlplab", description="prefix of every runstore key")
    data_dir: str | None = Field(default=None, description="dataset files; None: mlpcore's")
    device: str = Field(default="auto", description="device for specs that say auto")
    visibility_timeout_s: int = Field(
        default=24 * 3600, description="above the longest allowed run: Celery redelivers after"
    )
    torch_threads: int | None = Field(default=None, ge=1, description="CPU threads for torch")
    heartbeat_s: float = Field(default=5.0, gt=0, description="heartbeat period; TTL is 3x")
    cancel_poll_s: float = Field(default=0.2, gt=0, description="min seconds between cancel reads")
    max_reaped: int = Field(
        default=3,
        ge=1,
        description="a run whose worker vanished this often fails (a poison "
        "run that kills its worker, e.g. out of memory)",
    )
    max_fused_models: int = Field(default=64, ge=1, description="most models trained as one")
    fuse_across: bool = Field(
        default=True,
        description="a popped group takes on the same-shaped groups of other sweeps and users "
        "that fair share would serve next (MLPLAB_FUSE_ACROSS=0: each group trains alone)",
    )
    memory_fraction: float = Field(
        default=0.5, gt=0, le=1, description="share of the device's free memory a group may use"
    )
    checkpoint_every_s: float = Field(
        default=30.0,
        ge=0,
        description="least seconds between a group's checkpoint writes (0: every epoch); "
        "written from a background thread, and always when the worker hands runs back",
    )
    batched_matmul: bool = Field(
        default=False,
        description="on a CPU, one bmm over a fused pass (a GPU's arithmetic) instead of one "
        "GEMM per model: agrees to float32 rounding, not bit for bit, with solo runs",
    )
    share_prefixes: bool = Field(
        default=True,
        description="runs of a group that differ only in their lr schedule train the epochs "
        "where their lrs agree once (StepLR at 20, 30, 40: the first 20 epochs once, not "
        "three times); every run's numbers stay its solo run's",
    )
    checkpoint_dir: Path = Field(
        default_factory=default_checkpoint_dir,
        description="one file per training group, rewritten as it trains, removed at its end",
    )
    artifact_dir: Path = Field(
        default_factory=default_artifact_dir,
        description="trained models (safetensors + JSON) of finished runs; the API serves them",
    )


@lru_cache
def get_settings() -> WorkerSettings:
    """The process's settings, read from the environment once."""
    return WorkerSettings()
