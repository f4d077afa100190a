"""Repair: what a vanished worker or a submission cut in half left behind is put right.

- Leases (runstore/leases.py): a run whose worker stopped renewing its lease goes back to the
  queue, its group to the front of its owner's queue with one token. Workers reap on every
  heartbeat and the API every few seconds, so this happens even while no worker is alive.
- Stage changes (lab/stages.py `resume`): a running staged sweep whose stage ended while
  nobody moved it on (its worker was killed after recording the last run's end) is moved on,
  and a later stage recorded but never queued is queued; exactly once, however many API
  processes repair at the same time. Found through the index of running staged sweeps.
- Strays (runstore/strays.py): a run recorded but never queued fails with the reason (its
  staged sweep moves on), and queued groups without a token waiting get a spare one. A later
  stage's runs are the stage repair's, not strays: it runs first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lab import stages
from lab.queue import TaskQueue
from runstore import Store, strays
from runstore import stages as stage_records

log = logging.getLogger(__name__)


def reap(store: Store, *, send_token: Callable[[], object]) -> list[str]:
    """Requeue expired leases and claims, one token per group put back; the runs requeued."""
    reaped = store.leases.reap()
    for _ in range(reaped.groups):
        send_token()
    if reaped.run_ids or reaped.groups:
        log.warning(
            "requeued %d run(s) of vanished workers (%s) in %d group(s)",
            len(reaped.run_ids), ", ".join(reaped.run_ids), reaped.groups,
        )  # fmt: skip
    return list(reaped.run_ids)


def reap_once(store: Store, queue: TaskQueue) -> int:
    """The API's reap: the number of runs requeued."""
    return len(reap(store, send_token=queue.send_token))


def repair_stages(store: Store, queue: TaskQueue, *, max_models: int) -> list[str]:
    """Finish the stage changes cut off by vanished processes, for every running staged
    sweep; the sweeps repaired. One sweep's trouble is logged and does not stop the others."""
    repaired = []
    for sweep_id in stage_records.running(store):
        try:
            did = stages.resume(sweep_id, store=store, queue=queue, max_models=max_models)
        except Exception:
            log.exception("sweep %s: could not repair its stages", sweep_id)
            continue
        if did is not None:
            log.warning("sweep %s: %s", sweep_id, did)
            repaired.append(sweep_id)
    return repaired


def repair_once(
    store: Store, queue: TaskQueue, *, stray_after_s: float, max_models: int
) -> list[str]:
    """Finish cut-off stage changes, fail stray queued runs (moving their staged sweeps on)
    and send a spare token when queued groups have none; the runs failed."""
    repair_stages(store, queue, max_models=max_models)
    failed = strays.fail_strays(store, older_than_s=stray_after_s)
    if failed:
        log.warning("failed run(s) %s: %s", ", ".join(failed), strays.STRAY_REASON)
        runs = store.get_runs(failed, epochs=False)
        stages.advance_sweeps(runs, store=store, queue=queue, max_models=max_models)
    if strays.needs_token(store, tokens_waiting=queue.waiting_tokens()):
        log.warning("queued work had no token waiting: sent a spare one")
        queue.send_token()
    return failed
