"""The API's reaper: runs whose worker vanished go back to the queue even while no worker is
alive to notice (workers reap too, on every heartbeat; runstore/leases.py does it once); and,
less often, what a submission cut in half left behind is settled (runstore/strays.py)."""

from __future__ import annotations

import asyncio
import logging
import time

from api.queue import TaskQueue
from api.settings import ApiSettings
from runstore import Store, strays
from worker.stages import advance_sweeps

log = logging.getLogger("mlplab.api")


def reap_once(store: Store, queue: TaskQueue) -> int:
    """Requeue expired leases and claims, one token per group put back; the runs requeued."""
    reaped = store.leases.reap()
    for _ in range(reaped.groups):
        queue.send_token()
    if reaped.run_ids:
        log.warning("requeued run(s) %s: their worker stopped answering", ", ".join(reaped.run_ids))
    return len(reaped.run_ids)


def repair_once(store: Store, queue: TaskQueue, *, settings: ApiSettings) -> list[str]:
    """Fail stray queued runs (moving their staged sweeps on) and send a spare token when
    queued groups have none; the runs failed."""
    failed = strays.fail_strays(store, older_than_s=settings.stray_after_s)
    if failed:
        log.warning("failed run(s) %s: %s", ", ".join(failed), strays.STRAY_REASON)
        advance_sweeps(
            store.get_runs(failed, epochs=False),
            store=store,
            queue=queue,
            max_models=settings.max_fused_models,
        )
    if strays.needs_token(store, tokens_waiting=queue.waiting_tokens()):
        log.warning("queued work had no token waiting: sent a spare one")
        queue.send_token()
    return failed


async def reap_forever(store: Store, queue: TaskQueue, *, settings: ApiSettings) -> None:
    """reap_once every reap_interval_s and repair_once every repair_interval_s seconds until
    cancelled; errors are logged, not fatal.

    After a failure, both pause reap_grace_s: when Redis comes back from an outage longer than
    a lease, every lease has expired by its clock, and live workers must renew theirs first.
    """
    trouble = -float("inf")
    repaired = time.monotonic()
    while True:
        await asyncio.sleep(settings.reap_interval_s)
        if time.monotonic() - trouble < settings.reap_grace_s:
            continue
        try:
            await asyncio.to_thread(reap_once, store, queue)
            if time.monotonic() - repaired >= settings.repair_interval_s:
                repaired = time.monotonic()
                await asyncio.to_thread(repair_once, store, queue, settings=settings)
        except Exception as exc:  # Redis or the broker away: try again after the grace
            trouble = time.monotonic()
            log.warning("reaping failed: %s", exc)
