"""This worker process's side of runstore's leases: its holder id, the runs and claims it holds,
their renewal and the reaping of other workers' expired ones (from the heartbeat thread), and
the shutdown flag that makes a training group hand its runs back (SIGTERM).

Torch-free. The lease TTL is 3 heartbeats: a worker that stops beating for that long (killed,
frozen, cut off from Redis) loses its runs to the queue, and its own next write notices.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from celery.signals import worker_shutting_down

from lab.repair import reap
from runstore import Store
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

SHUTDOWN = threading.Event()  # set on SIGTERM: groups in training hand their runs back
_lock = threading.Lock()
# run id -> which hold() holds it: a renewal's answer about one attempt at a run must not
# reach the next attempt (same process, so the same holder) that started it meanwhile
_held_runs: dict[str, int] = {}
_holds = itertools.count(1)
_held_claims: set[str] = set()
_lost: set[str] = set()  # runs a renewal found requeued or taken over: training drops them
_holder: dict[int, str] = {}
_trouble = {"at": -float("inf")}  # when Redis last failed this process (monotonic seconds)


class HandBack(Exception):  # noqa: N818 (a signal to unwind, not an error)
    """Raised inside training when the worker shuts down: hand the group back, keep its file."""


def holder() -> str:
    """This process's holder id: host, pid and a random part (a restart is a new holder)."""
    pid = os.getpid()
    if pid not in _holder:
        _holder[pid] = f"{socket.gethostname()}/{pid}/{secrets.token_hex(3)}"
    return _holder[pid]


def ttl_s(settings: WorkerSettings) -> float:
    """How long a lease lasts without renewal."""
    return 3 * settings.heartbeat_s


def hold(run_ids: Iterable[str] = (), claim: str | None = None) -> None:
    """Renew these runs' leases (and the claim's) from the heartbeat from now on."""
    with _lock:
        _held_runs.update(dict.fromkeys(run_ids, next(_holds)))
        if claim:
            _held_claims.add(claim)


def let_go(run_ids: Iterable[str] = (), claim: str | None = None) -> None:
    """Stop renewing them (they ended, were handed back, or training was abandoned)."""
    run_ids = list(run_ids)
    with _lock:
        for run_id in run_ids:
            _held_runs.pop(run_id, None)
        _lost.difference_update(run_ids)
        _held_claims.discard(claim or "")


def is_lost(run_id: str) -> bool:
    """True once a renewal found the run no longer this process's."""
    with _lock:
        return run_id in _lost


def note_trouble() -> None:
    """Redis failed this process just now (the heartbeat could not reach it)."""
    _trouble["at"] = time.monotonic()


def renew_and_reap(store: Store, settings: WorkerSettings, send_token: Callable[[], Any]) -> None:
    """One heartbeat's lease work: renew what this process holds, requeue what others lost.

    After Redis trouble, reaping waits one lease: an outage longer than a lease leaves every
    lease expired by Redis's clock, and live workers need a heartbeat to renew theirs first.
    """
    with _lock:
        held, claims = dict(_held_runs), sorted(_held_claims)
    lost = store.leases.renew(holder=holder(), run_ids=sorted(held), ttl_s=ttl_s(settings))
    with _lock:  # only the attempts asked about, if they still hold the runs
        lost = [run_id for run_id in lost if _held_runs.get(run_id) == held.get(run_id)]
        _lost.update(lost)
    if lost:
        log.warning("lease lost on run(s) %s: requeued, taken over or ended; dropping them", lost)
    for claim in claims:
        store.leases.hold_claim(claim=claim, ttl_s=ttl_s(settings))
    if time.monotonic() - _trouble["at"] < ttl_s(settings):
        return
    reap(store, send_token=send_token)


@contextmanager
def holding_claim(store: Store, claim: str, *, settings: WorkerSettings) -> Iterator[None]:
    """Lease a token's claim like its runs while its group trains: if this worker vanishes,
    the reaper queues the group's unstarted runs again."""
    store.leases.hold_claim(claim=claim, ttl_s=ttl_s(settings))
    hold(claim=claim)
    try:
        yield
    finally:
        let_go(claim=claim)


@worker_shutting_down.connect
def _on_shutdown(**_: Any) -> None:
    """Celery's SIGTERM/SIGINT handler (main process): training groups hand their runs back."""
    SHUTDOWN.set()
