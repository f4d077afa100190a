"""Worker heartbeats in Redis, so /healthz can tell whether any worker is alive.

A thread writes them: Celery's own ping goes unanswered while a solo worker trains. Each beat
also renews this process's leases and requeues runs whose worker vanished (worker/leases.py).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from redis.exceptions import RedisError

from mlpcore.catalog import available_datasets
from worker import leases, speed
from worker.celery_app import send_token
from worker.settings import WorkerSettings, get_settings
from worker.store import get_store

log = logging.getLogger(__name__)
_state: dict[str, Any] = {}
REMOVE_WAIT_S = 1.0  # how long shutdown waits for Redis to drop the heartbeat


def _info(settings: WorkerSettings) -> dict[str, Any]:
    """What the beat says: pid, the device for `auto` specs, and what this worker can serve
    (lab/capability.py refuses what no live worker can): the devices a spec may name and the
    datasets that load here (looked for again each beat, as files may arrive)."""
    return {
        "pid": os.getpid(),
        "device": settings.device,
        "devices": _devices(),
        "datasets": available_datasets(settings.data_dir),
        "speed": speed.advertised(),  # parameter-samples per second, per device trained on
    }


@functools.cache
def _devices() -> list[str]:
    """cpu, each visible CUDA device, mps where there is one (torch counts GPUs through NVML
    where it can, without starting CUDA; a solo worker never forks after this anyway)."""
    import torch

    cuda = [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return ["cpu", *cuda, *(["mps"] if torch.backends.mps.is_available() else [])]


def _beat(hostname: str, stop: threading.Event) -> None:
    """Write a heartbeat every heartbeat_s seconds until stopped."""
    settings = get_settings()
    while True:
        try:
            info = _info(settings)
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
    """Stop beating and drop this worker from the live list, never waiting long on Redis."""
    if "stop" not in _state:
        return
    log.info("%s shutting down: heartbeat stopped", _state["hostname"])
    _state["stop"].set()
    _state["thread"].join(timeout=1)
    if _state["thread"].is_alive():  # stuck in a call to a silent Redis: the TTL ends the beat
        log.warning("Redis did not answer the last heartbeat; leaving it to expire")
        return
    # a frozen Redis would block this call for good (the store has no socket timeout), and the
    # heartbeat expires on its own within 3 beats: wait for the removal a moment, not forever
    remover = threading.Thread(target=_remove, args=(_state["hostname"],), daemon=True)
    remover.start()
    remover.join(timeout=REMOVE_WAIT_S)


def _remove(hostname: str) -> None:
    """Drop the heartbeat (in a thread of its own: see stop_heartbeat)."""
    try:
        get_store().remove_worker(hostname=hostname)
    except RedisError as exc:
        log.warning("could not remove the heartbeat: %s", exc)
