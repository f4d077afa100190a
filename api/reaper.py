"""The API's reaper: runs whose worker vanished go back to the queue even while no worker is
alive to notice (workers reap too, on every heartbeat; runstore/leases.py does it once)."""

from __future__ import annotations

import asyncio
import logging
import time

from api.queue import TaskQueue
from runstore import Store

log = logging.getLogger("mlplab.api")


def reap_once(store: Store, queue: TaskQueue) -> int:
    """Requeue expired leases and claims, one token per group put back; the runs requeued."""
    reaped = store.leases.reap()
    for _ in range(reaped.groups):
        queue.send_token()
    if reaped.run_ids:
        log.warning("requeued run(s) %s: their worker stopped answering",
                    ", ".join(reaped.run_ids))
    return len(reaped.run_ids)


async def reap_forever(
    store: Store, queue: TaskQueue, *, interval_s: float, grace_s: float
) -> None:
    """reap_once every interval_s seconds until cancelled; errors are logged, not fatal.

    After a failure, reaping pauses grace_s: when Redis comes back from an outage longer than
    a lease, every lease has expired by its clock, and live workers must renew theirs first.
    """
    trouble = -float("inf")
    while True:
        await asyncio.sleep(interval_s)
        if time.monotonic() - trouble < grace_s:
            continue
        try:
            await asyncio.to_thread(reap_once, store, queue)
        except Exception as exc:  # Redis or the broker away: try again after the grace
            trouble = time.monotonic()
            log.warning("reaping failed: %s", exc)
