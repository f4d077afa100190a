"""The names of the server's limits: the spec limits a submission is checked against, then
the per-user quotas (max_param_epochs: the compute budget, parameters x epochs of a user's
queued and running runs; max_streams: event streams open at once; max_artifact_bytes: the
bytes of a user's stored models, oldest evicted beyond it); an admin may override
each per user. Plain Python: the client's `mlplab users` flags come from here too."""

from __future__ import annotations

from typing import Literal, get_args

LimitName = Literal[
    "max_epochs",
    "max_hidden_width",
    "max_hidden_layers",
    "max_batch_size",
    "max_runs_per_sweep",
    "max_queued",
    "max_running",
    "max_param_epochs",
    "max_streams",
    "max_artifact_bytes",
]
LIMIT_NAMES: tuple[LimitName, ...] = get_args(LimitName)
DEFAULT_MAX_EPOCHS = 200  # a server's max_epochs unless configured; `mlplab train` warns above
