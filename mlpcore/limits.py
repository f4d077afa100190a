"""The names of the server's limits: the spec limits a submission is checked against, then
the per-user quotas; an admin may override each per user. Plain Python: the client's
`mlplab users` flags come from here too."""

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
]
LIMIT_NAMES: tuple[LimitName, ...] = get_args(LimitName)
