"""The run store: every record operation the API and the worker perform on Redis."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from redis.typing import EncodableT

from runstore import scripts
from runstore.artifacts import ModelAccounts
from runstore.codec import decode_runs, decode_sweep, dumps, encode
from runstore.errors import LeaseLost
from runstore.events import TERMINAL, Event, parse_entry
from runstore.fairqueue import FairQueue
from runstore.keys import Keys
from runstore.leases import Leases
from runstore.quota import Quota
from runstore.records import CREATION_INDEX, index_created, new_id, new_run, new_sweep, queue_run
from runstore.replies import decoded, entries, hash_fields, members
from runstore.users import UserStore


class Store:
    """Run and sweep records, their event streams, cancel flags and worker heartbeats; its
    parts (leases, fair queue, quota, users, model accounts) share its client and key prefix."""

    def __init__(self, client: redis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._transition = client.register_script(scripts.TRANSITION)
        self._cancel = client.register_script(scripts.CANCEL)
        self._append_epoch = client.register_script(scripts.APPEND_EPOCH)
        # every new run and sweep is indexed through it (records.py), the stage moves' too
        self.creation_index = client.register_script(CREATION_INDEX)
        self.leases = Leases(client, prefix=prefix)
        self.fair = FairQueue(client, prefix=prefix)
        self.quota = Quota(client, prefix=prefix)
        self.users = UserStore(client, prefix=prefix)
        self.models = ModelAccounts(client, prefix=prefix)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "mlplab") -> Store:
        """A store on a new connection pool for `url`."""
        return cls(redis.Redis.from_url(url, decode_responses=True), prefix=prefix)

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self.client.ping())

    # -- creating ------------------------------------------------------------------------

    def create_run(self, *, owner: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Record one queued run and return it."""
        run = new_run(owner=owner, spec=spec, sweep_id=None, varied=None)
        pipe = self.client.pipeline(transaction=True)
        queue_run(pipe, self.keys, run, index=self.creation_index)
        pipe.execute()
        return run

    def create_sweep(
        self,
        *,
        owner: str,
        spec: dict[str, Any],
        metric: str,
        mode: str,
        configs: list[tuple[dict[str, Any], dict[str, Any]]],
        groups: list[str | None] | None = None,
        repeats: list[int] | None = None,
        varied: list[str] | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Record a sweep and its queued runs atomically.

        configs: (varied, spec) pairs; groups: each run's fused_group (None: queued alone);
        repeats: each run's repeat index (None: all 0); varied: the fields the sweep varies
        (mlpcore.sweep.varied_fields; None: its grid's).
        """
        sweep_id, now = new_id(), time.time()
        groups = groups if groups is not None else [None] * len(configs)
        repeats = repeats if repeats is not None else [0] * len(configs)
        runs = [
            new_run(owner=owner, spec=s, sweep_id=sweep_id, varied=v, fused_group=g, repeat=r)
            for (v, s), g, r in zip(configs, groups, repeats, strict=True)
        ]
        run_ids = [run["id"] for run in runs]
        sweep = new_sweep(
            sweep_id=sweep_id,
            owner=owner,
            spec=spec,
            metric=metric,
            mode=mode,
            run_ids=run_ids,
            created_at=now,
            varied=varied if varied is not None else list(spec.get("grid", {})),
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.sweep(sweep_id), mapping=hash_fields(encode(sweep)))
        index_created(
            pipe,
            self.keys,
            index=self.creation_index,
            zsets=[self.keys.owner_sweeps(owner), self.keys.all_sweeps()],
            record_id=sweep_id,
            created_at=now,
        )
        for run in runs:
            queue_run(pipe, self.keys, run, index=self.creation_index)
        pipe.execute()
        return sweep, runs

    # -- reading -------------------------------------------------------------------------

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run record with its epochs, or None."""
        runs = self.get_runs([run_id])
        return runs[0] if runs else None

    def get_runs(self, run_ids: list[str], *, epochs: bool = True) -> list[dict[str, Any]]:
        """The records of the runs that exist, in the given order."""
        pipe = self.client.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hgetall(self.keys.run(run_id))
            if epochs:
                pipe.xrange(self.keys.run_events(run_id), min="1-0")
        return decode_runs(pipe.execute(), epochs=epochs)

    def owner_run_ids(self, *, owner: str) -> list[str]:
        """The owner's run ids, newest first."""
        return members(self.client.zrevrange(self.keys.owner_runs(owner), 0, -1))

    def all_run_ids(self) -> list[str]:
        """Every run id, newest first (an admin's listing)."""
        return members(self.client.zrevrange(self.keys.all_runs(), 0, -1))

    def list_runs(
        self, *, run_ids: list[str], status: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the given runs (optionally of one status) and the total that match."""
        if status is not None:
            pipe = self.client.pipeline(transaction=False)
            for run_id in run_ids:
                pipe.hget(self.keys.run(run_id), "status")
            statuses = pipe.execute()
            run_ids = [r for r, s in zip(run_ids, statuses, strict=True) if s == status]
        return self.get_runs(run_ids[offset : offset + limit]), len(run_ids)

    def get_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        """The sweep record, or None."""
        raw = decoded(self.client.hgetall(self.keys.sweep(sweep_id)))
        return decode_sweep(raw) if raw else None

    def events(self, key: str, *, after: str = "0-0", count: int = 1000) -> list[Event]:
        """Entries of a stream after a position (tests and tools; SSE reads asynchronously)."""
        reply = self.client.xrange(key, f"({after}", "+", count)
        return [parse_entry(i, f) for i, f in entries(reply)]

    # -- lifecycle -----------------------------------------------------------------------

    def mark_running(
        self,
        *,
        run_id: str,
        worker: str,
        device: str,
        checkpoint: str | None = None,
        fused_group: str | None = None,
        holder: str | None = None,
        lease_s: float = 3600.0,
        claim: str | None = None,
    ) -> str:
        """Move a queued run (or a running one whose lease expired, or that this holder
        holds) to running under a lease for `holder` (default: the worker name); else why not.

        With a checkpoint key, also records it and the fused_group the run trains in.
        Returns "running", "held" (another holder's lease is live), "cancel" (a cancel is
        pending), "missing" or the current status. started_at keeps the first start.
        """
        data = {"status": "running", "worker": worker, "device": device, "at": time.time()}
        fields: dict[str, Any] = {"worker": worker, "device": device, "claim": claim}
        if checkpoint is not None:
            fields.update(checkpoint=checkpoint, fused_group=fused_group)
        outcome, detail = self.leases.acquire(
            run_id=run_id, holder=holder or worker, ttl_s=lease_s, data=data, fields=encode(fields)
        )
        return {"ok": "running", "refused": detail}.get(outcome, outcome)

    def finish_run(
        self,
        *,
        run_id: str,
        status: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        holder: str | None = None,
        allowed: str = "queued,running",
        model: dict[str, Any] | None = None,
    ) -> bool:
        """Move an unfinished run (one whose status is in `allowed`) to a terminal status with
        its result or error (and what became of its model, runstore/artifacts.py); with a
        holder, only while that holder holds it running (False otherwise)."""
        now = time.time()
        data = {"status": status, "result": result, "error": error, "at": now}
        fields = {"finished_at": now, "result": result, "error": error}
        if model is not None:
            fields["model"] = model
        outcome, _ = self._move(run_id, allowed, status, data, fields, False, holder)
        return outcome == "ok"

    def fail_queued(self, *, run_id: str, error: str) -> bool:
        """Fail a run that is still queued (never one that started) with the reason."""
        return self.finish_run(run_id=run_id, status="failed", error=error, allowed="queued")

    def _move(
        self,
        run_id: str,
        allowed: str,
        status: str,
        data: dict[str, Any],
        fields: dict[str, Any],
        honour_cancel: bool,
        holder: str | None = None,
    ) -> tuple[str, str]:
        pairs = [x for kv in encode(fields).items() for x in kv]
        argv = [
            run_id,
            dumps(data),
            "1" if status in TERMINAL else "0",
            allowed,
            status,
            "1" if honour_cancel else "0",
            holder or "",
            *pairs,
        ]
        outcome, detail = self._transition(keys=self._script_keys(run_id), args=argv)
        return outcome, detail

    def cancel_run(self, *, run_id: str) -> str:
        """Cancel a queued run or flag a running one: cancelled, requested, finished, missing."""
        now = time.time()
        data = dumps({"status": "cancelled", "reason": "cancelled before it started", "at": now})
        return self._cancel(keys=self._script_keys(run_id), args=[run_id, data, "1", now])

    def cancel_requested(self, *, run_id: str) -> bool:
        """True when someone asked the running run to stop."""
        return self.client.hget(self.keys.run(run_id), "cancel_requested") == "1"

    def append_epoch(
        self, *, run_id: str, metrics: dict[str, Any], holder: str | None = None
    ) -> bool:
        """Append an epoch event unless the run already has it (or is no longer running).

        With a holder: LeaseLost unless the run is running under that holder's lease.
        """
        args: list[EncodableT] = [run_id, int(metrics["epoch"]), dumps(metrics), holder or ""]
        appended = int(self._append_epoch(keys=self._script_keys(run_id), args=args))
        if appended < 0:
            raise LeaseLost(f"run {run_id} is held by another worker now")
        return appended == 1

    def _script_keys(self, run_id: str) -> list[str]:
        """The KEYS of runstore/scripts.py: leases, stats, run hash and stream, plus sweep
        hash and stream when the run belongs to a sweep."""
        run = self.keys.run(run_id)
        keys = [self.keys.leases(), self.keys.stats(), run, self.keys.run_events(run_id)]
        sweep_id = decoded(self.client.hget(run, "sweep_id"))
        if sweep_id:
            keys += [self.keys.sweep(sweep_id), self.keys.sweep_events(sweep_id)]
        return keys

    # -- workers -------------------------------------------------------------------------

    def heartbeat(self, *, hostname: str, info: dict[str, Any], ttl_s: float) -> None:
        """Record that a worker is alive, with what it says about itself."""
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.keys.workers(), {hostname: now})
        pipe.set(
            self.keys.worker(hostname),
            dumps({**info, "hostname": hostname, "seen": now}),
            px=int(ttl_s * 1000),
        )
        pipe.zremrangebyscore(self.keys.workers(), "-inf", now - 24 * 3600)
        pipe.execute()

    def remove_worker(self, *, hostname: str) -> None:
        """Forget a worker that shut down cleanly."""
        self.client.delete(self.keys.worker(hostname))
        self.client.zrem(self.keys.workers(), hostname)

    def live_workers(self) -> list[dict[str, Any]]:
        """The workers whose heartbeat has not expired."""
        names = members(self.client.zrange(self.keys.workers(), 0, -1))
        infos = self.client.mget([self.keys.worker(n) for n in names]) if names else []
        return [json.loads(info) for info in infos if info]
