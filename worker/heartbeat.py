"""Worker heartbeats in Redis, so /healthz can tell whether any worker is alive.

A thread writes them: Celery's own ping goes unanswered while a solo worker trains. Each beat
also renews this process's leases and requeues runs whose worker vanished (worker/leases.py).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from redis.exceptions import RedisError

from worker import leases
from worker.celery_app import send_token
from worker.settings import get_settings
from worker.store import get_store

log = logging.getLogger(__name__)
_state: dict[str, Any] = {}


def _beat(hostname: str, stop: threading.Event) -> None:
    """Write a heartbeat every heartbeat_s seconds until stopped."""
    settings = get_settings()
    info = {"pid": os.getpid(), "device": settings.device}
    while True:
        try:
            get_store().heartbeat(hostname=hostname, info=info, ttl_s=3 * settings.heartbeat_s)
            leases.renew_and_reap(get_store(), settings, send_token=send_token)
        except Exception as exc:  # Redis or the broker away: keep beating, it comes back
            leases.note_trouble()
            log.warning("heartbeat failed: %s", exc)
        if stop.wait(settings.heartbeat_s):
            return


@worker_ready.connect
def start_heartbeat(sender: Any = None, **_: Any) -> None:
    """Start beating once the worker consumes tasks."""
    hostname = getattr(sender, "hostname", None) or f"worker@{os.uname().nodename}"
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(hostname, stop), name="heartbeat", daemon=True)
    _state.update(hostname=hostname, stop=stop, thread=thread)
    thread.start()


@worker_shutdown.connect
def stop_heartbeat(**_: Any) -> None:
    """Stop beating and drop this worker from the live list."""
    if "stop" not in _state:
        return
    _state["stop"].set()
    _state["thread"].join(timeout=2)
    try:
        get_store().remove_worker(hostname=_state["hostname"])
    except RedisError as exc:
        log.warning("could not remove the heartbeat: %s", exc)
