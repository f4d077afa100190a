"""The API's repair schedule: runs whose worker vanished go back to the queue even while no
worker is alive to notice, and, less often, what a vanished process left half done is
settled: a staged sweep's cut-off stage change, a submission cut in half. What each pass does
is the orchestration's (lab/repair.py); this is only when.
"""

from __future__ import annotations

import asyncio
import logging
import time

from api.settings import ApiSettings
from lab.queue import TaskQueue
from lab.repair import reap_once, repair_once
from runstore import Store

log = logging.getLogger("mlplab.api")


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
                await asyncio.to_thread(
                    repair_once,
                    store,
                    queue,
                    stray_after_s=settings.stray_after_s,
                    max_models=settings.max_fused_models,
                )
        except Exception as exc:  # Redis or the broker away: try again after the grace
            trouble = time.monotonic()
            log.warning("reaping failed: %s", exc)
