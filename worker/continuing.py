"""The stored final states a group of continued runs starts from (a sweep extended by epochs:
lab/extend.py queues them, runstore/curation.py records it).

A continued run trains exactly as a run of its new epochs from the start (mlpcore.continuation),
so a state that cannot be read costs only time: the group trains from epoch 1, the epochs
already recorded are kept (each is recorded once), and the runs' events say so.
"""

from __future__ import annotations

import logging
from typing import Any

from artifacts import STATE_FILE, ArtifactError, ArtifactStore
from mlpcore import checkpoint
from mlpcore.errors import CheckpointError
from runstore import Store
from worker.checkpoints import Due
from worker.leases import holder

log = logging.getLogger(__name__)


def continued_states(
    group: list[Due], *, files: ArtifactStore, store: Store
) -> list[dict[str, Any]] | None:
    """Each run's stored state in the group's order; None when the group is not continued, or
    one state cannot be read (said in each run's events)."""
    if not any(d.continuing for d in group):
        return None
    states, why = [], None
    for d in group:
        try:
            if not d.continuing:
                raise CheckpointError("it is not a continued run")
            with files.open(d.run_id, str(d.continuing["save"]), STATE_FILE) as stream:
                states.append(checkpoint.from_bytes(stream.read()))
        except (ArtifactError, CheckpointError, OSError, ValueError) as exc:
            why = f"run {d.run_id}'s stored state: {type(exc).__name__}: {exc}"
            break
    if why is None:
        log.info("runs %s: continuing from epoch %d of their stored states",
                 [d.run_id for d in group], group[0].start_epoch)  # fmt: skip
        return states
    reason = f"{why}; training again from epoch 1, epochs already recorded are kept"
    for d in group:
        if store.leases.note_restart(run_id=d.run_id, holder=holder(), reason=reason) >= 0:
            log.warning("run %s: %s", d.run_id, reason)
    return None
