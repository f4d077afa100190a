"""What early stopping reads: the runs a run is compared with, and their values at an epoch.

Nothing new is stored: peers are the runs of the run's stage (staged sweeps) or of its
sweep, and a peer's value at epoch e is the `e-0` entry of its run stream.
"""

from __future__ import annotations

import json
from typing import Any

from runstore import stages
from runstore.store import Store


def peer_ids(store: Store, sweep: dict[str, Any], run_id: str) -> list[str]:
    """The runs `run_id` is compared with (itself included): its stage's, else its sweep's."""
    record = stages.get(store, sweep["id"])
    for stage in (record or {}).get("stages", []):
        if run_id in stage["run_ids"]:
            return list(stage["run_ids"])
    return list(sweep["run_ids"])


def epoch_values(store: Store, run_ids: list[str], *, epoch: int, name: str) -> list[Any]:
    """`name` (e.g. train_loss) at `epoch` of each run that has reached it (None if null)."""
    pipe = store.client.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.xrange(store.keys.run_events(run_id), min=f"{epoch}-0", max=f"{epoch}-0")
    values = []
    for entries in pipe.execute():
        for _, fields in entries:
            if fields.get("type") == "epoch":
                values.append(json.loads(fields["data"]).get(name))
    return values
