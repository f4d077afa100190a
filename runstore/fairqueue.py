"""Fair share across users: per-user queues of groups in Redis, a stride scheduler in Lua.

How work reaches a worker:
- The API pushes each group (the run ids one task trains; a fused group counts as its runs)
  onto its owner's queue, then sends one Celery "token" task, `mlplab.train_next`, without
  arguments. Tokens are interchangeable: whichever worker takes one asks the scheduler which
  group to train, so Celery stays the transport (acks, prefetch 1, one task per GPU) and the
  order lives here, in one place, atomically.
- The scheduler (POP, one Lua step) is start-time fair queuing, a stride scheduler: among
  owners with a pending group and free running capacity it takes the owner with the lowest
  virtual time (ties by name), and advances that owner's virtual time by the group's runs
  divided by the owner's priority, so a priority-2 user gets twice the runs of a priority-1
  one while both wait. An owner who newly gets work starts at max(own virtual time, the clock
  = the virtual time of the group dispatched last): idle time banks no credit.
- Running capacity: an owner at max_running (an admin override in the user record, else the
  cap the API recorded for them at their last submission) waits; one group always fits when
  nothing of theirs runs. A token that
  finds only such waiting work is parked (a counter), and every group end re-sends the parked
  tokens: no polling, no token left sleeping inside a busy worker.
- The pop records its group under the token task's id (a claim): a redelivered token resumes
  that group instead of taking another. Groups whose runs were all cancelled meanwhile are
  dropped when met, and their surplus tokens find nothing and end.

Limits, by design: this is a single-Redis design (the scheduler builds the names of the
runs, queues and users it finds from family prefixes, runstore/keys.py, so not Redis
Cluster); the scheduler picks the next group when a worker asks, it does not preempt a
running group; queue positions assume no running cap binds.
"""

from __future__ import annotations

import heapq
import json
from collections import deque
from dataclasses import dataclass

import redis

from mlpcore.spec import RunSpec
from runstore.fairlua import ENQUEUE, POP, POP_FAMILIES, RELEASE, UNPARK
from runstore.keys import Keys
from runstore.replies import decoded


@dataclass(frozen=True)
class Popped:
    """What a token got: a group to train (state group or claimed), or parked / empty."""

    state: str
    owner: str | None = None
    run_ids: tuple[str, ...] = ()


class FairQueue:
    """The per-user queues and the scheduler over them."""

    def __init__(self, client: redis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._enqueue = client.register_script(ENQUEUE)
        self._pop = client.register_script(POP)
        self._release = client.register_script(RELEASE)
        self._unpark = client.register_script(UNPARK)
        f = self.keys.fair
        self._pop_keys = [f("ready"), f("vtime"), f("clock"), f("parked"), f("caps")]
        self._pop_families = self.keys.lua_families(*POP_FAMILIES)
        self._release_families = self.keys.lua_families("fair_running")
        self._enqueue_families = self.keys.lua_families("run")

    def enqueue(self, *, owner: str, groups: list[list[str]], fusion_key: str = "") -> None:
        """Append groups to the owner's queue (one token per group is the caller's to send);
        groups with a fusion key may train fused with others' groups of the same key."""
        f = self.keys.fair
        keys = [self.keys.fair_queue(owner), f("ready"), f("vtime"), f("clock")]
        groups_json = [json.dumps(list(g)) for g in groups]
        self._enqueue(keys=keys, args=[self._enqueue_families, owner, fusion_key, *groups_json])

    def pop(self, *, claim: str, claim_ttl_s: int, max_models: int = 1) -> Popped:
        """The group this token trains, chosen by the scheduler (or the one it claimed),
        grown to at most `max_models` runs by the groups of the same fusion key fair share
        would serve next (1: just the one group)."""
        keys = [self.keys.fair_claim(claim), *self._pop_keys]
        args: list[str | int] = [self._pop_families, claim_ttl_s, max_models]
        state, raw = self._pop(keys=keys, args=args)
        if not raw:
            return Popped(state)
        group = json.loads(raw)
        return Popped(state, group["owner"], tuple(group["runs"]))

    def release(self, *, claim: str) -> int:
        """End a token's group (its runs stop counting as running); the parked token count."""
        keys = [self.keys.fair_claim(claim), self.keys.fair("parked"), self.keys.fair("claims")]
        return int(self._release(keys=keys, args=[self._release_families, claim]))

    def unparked(self, count: int) -> None:
        """Record that this many parked tokens were sent again."""
        if count > 0:
            self._unpark(keys=[self.keys.fair("parked")], args=[count])

    def enqueue_runs(self, run_ids: list[str]) -> str:
        """Append one group to its owner's queue (the owner and fusion key read from its
        first run and its sweep: a sweep with `fuse: false` never fuses across)."""
        owner = self.owner_of(run_ids[0])
        self.enqueue(owner=owner, groups=[run_ids], fusion_key=self._fusion_key(run_ids[0]))
        return owner

    def _fusion_key(self, run_id: str) -> str:
        """The run's fusion key; a continued run's names the epoch it starts from (runs fuse
        only when they start together)."""
        fields = self.client.hmget(self.keys.run(run_id), ["spec", "sweep_id", "continuing"])
        spec, sweep_id, continuing = (decoded(v) for v in fields)
        if sweep_id:
            sweep = json.loads(decoded(self.client.hget(self.keys.sweep(sweep_id), "spec")) or "{}")
            if not sweep.get("fuse", True):
                return ""
        if not spec:
            return ""
        start = json.loads(continuing)["from_epoch"] if continuing else 0
        return fusion_key_text(json.loads(spec)) + (f" from epoch {start}" if start else "")

    def set_cap(self, *, owner: str, cap: int | None) -> None:
        """Record the owner's effective max_running (None: no cap) for the scheduler."""
        self.client.hset(self.keys.fair("caps"), owner, "none" if cap is None else str(cap))

    def owner_of(self, run_id: str) -> str:
        """The owner of a run (to queue a group by its runs alone)."""
        owner = decoded(self.client.hget(self.keys.run(run_id), "owner"))
        if not owner:
            raise LookupError(f"no run {run_id!r} to queue")
        return owner

    def pending(self, owner: str) -> list[list[str]]:
        """The owner's pending groups, oldest first, as queued (dead runs included)."""
        return [json.loads(g) for g in self.client.lrange(self.keys.fair_queue(owner), 0, -1)]

    def running(self, owner: str) -> set[str]:
        """Run ids dispatched for the owner and not yet released."""
        return set(decoded(self.client.smembers(self.keys.fair_running(owner))))

    def parked(self) -> int:
        """How many tokens are parked (they found only capped work)."""
        return int(self.client.get(self.keys.fair("parked")) or 0)

    def has_pending(self) -> bool:
        """True when some owner has a pending group."""
        return self.client.scard(self.keys.fair("ready")) > 0

    def positions(self) -> dict[str, int]:
        """Queued run id -> runs the scheduler would dispatch before it (no cap assumed)."""
        owners = sorted(decoded(self.client.smembers(self.keys.fair("ready"))))
        queues = {o: self._live_groups(o) for o in owners}
        vtimes = self.client.hmget(self.keys.fair("vtime"), owners) if owners else []
        weights = self._weights(owners)
        heap = [(float(v or 0), o) for o, v in zip(owners, vtimes, strict=True) if queues[o]]
        heapq.heapify(heap)
        out: dict[str, int] = {}
        dispatched = 0
        while heap:
            vtime, owner = heapq.heappop(heap)
            group = queues[owner].popleft()
            out.update(dict.fromkeys(group, dispatched))
            dispatched += len(group)
            if queues[owner]:
                heapq.heappush(heap, (vtime + len(group) / weights[owner], owner))
        return out

    def _live_groups(self, owner: str) -> deque[list[str]]:
        """The owner's pending groups, each cut to its still-queued runs, empty ones dropped."""
        groups = self.pending(owner)
        ids = [run_id for g in groups for run_id in g]
        pipe = self.client.pipeline(transaction=False)
        for run_id in ids:
            pipe.hget(self.keys.run(run_id), "status")
        queued = {r for r, s in zip(ids, pipe.execute(), strict=True) if s == "queued"}
        return deque(live for g in groups if (live := [r for r in g if r in queued]))

    def _weights(self, owners: list[str]) -> dict[str, float]:
        """Each owner's priority (1 when they have no user record, e.g. no-auth mode)."""
        pipe = self.client.pipeline(transaction=False)
        for owner in owners:
            pipe.hget(self.keys.user(owner), "priority")
        return {
            o: (float(w) if w and float(w) > 0 else 1.0)
            for o, w in zip(owners, pipe.execute(), strict=True)
        }


def fusion_key_text(spec: dict) -> str:
    """RunSpec.fusion_key() as a string the scheduler compares (JSON of the key's fields)."""
    return json.dumps(list(RunSpec.model_validate(spec).fusion_key()), separators=(",", ":"))
