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

from runstore.keys import Keys
from runstore.replies import decoded

# Lua for every script that gives an owner pending work (enqueue here, the reaper's push_front
# in runstore/leases.py, strays.queue_unqueued): an owner who joins the ready set starts at the
# scheduler's clock, so time spent idle earns no credit over those who waited.
ENTER_READY = """
local function enter_ready(ready, vtime, clock, owner)
  if redis.call('SISMEMBER', ready, owner) == 1 then return end
  local own = tonumber(redis.call('HGET', vtime, owner) or '0')
  local now = tonumber(redis.call('GET', clock) or '0')
  if now > own then redis.call('HSET', vtime, owner, string.format('%.17g', now)) end
  redis.call('SADD', ready, owner)
end
"""

# KEYS: owner queue, ready set, vtime hash, clock; ARGV: owner, groups (JSON run id lists)...
_ENQUEUE = (
    ENTER_READY
    + """
enter_ready(KEYS[2], KEYS[3], KEYS[4], ARGV[1])
for i = 2, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
return #ARGV - 1
"""
)

# KEYS: claim, ready set, vtime hash, clock, parked, caps; ARGV: families (_POP_FAMILIES),
# claim TTL (s). Returns {state, group JSON}: claimed, group, parked (only capped work waits)
# or empty (nothing pending).
_POP = """
local claim, ready, vtime, clock, parked, caps = unpack(KEYS)
local F = cjson.decode(ARGV[1])
local held = redis.call('GET', claim)
if held then return {'claimed', held} end

local function live(ids)
  local out = {}
  for _, id in ipairs(ids) do
    if redis.call('HGET', F.run .. id, 'status') == 'queued' then out[#out + 1] = id end
  end
  return out
end

local function head(user)
  local q = F.fair_queue .. user
  while true do
    local raw = redis.call('LINDEX', q, 0)
    if not raw then redis.call('SREM', ready, user) return nil end
    local ids = live(cjson.decode(raw))
    if #ids > 0 then return ids end
    redis.call('LPOP', q)
  end
end

local function running(user)
  local set = F.fair_running .. user
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local s = redis.call('HGET', F.run .. id, 'status')
    if s ~= 'queued' and s ~= 'running' then redis.call('SREM', set, id) end
  end
  return redis.call('SCARD', set)
end

local users = redis.call('SMEMBERS', ready)
table.sort(users)
local best, best_ids, best_v, waiting = nil, nil, nil, 0
for _, user in ipairs(users) do
  local ids = head(user)
  if ids then
    local cap = tonumber(redis.call('HGET', F.user .. user, 'max_running') or '')
    cap = cap or tonumber(redis.call('HGET', caps, user) or '')
    local n = running(user)
    if cap == nil or n == 0 or n + #ids <= cap then
      local v = tonumber(redis.call('HGET', vtime, user) or '0')
      if best == nil or v < best_v then best, best_ids, best_v = user, ids, v end
    else
      waiting = waiting + redis.call('LLEN', F.fair_queue .. user)
    end
  end
end

if best == nil then
  if waiting == 0 then redis.call('DEL', parked) return {'empty', ''} end
  if tonumber(redis.call('GET', parked) or '0') < waiting then
    redis.call('INCR', parked)
  end
  return {'parked', ''}
end
local q = F.fair_queue .. best
redis.call('LPOP', q)
if redis.call('LLEN', q) == 0 then redis.call('SREM', ready, best) end
local weight = tonumber(redis.call('HGET', F.user .. best, 'priority') or '1') or 1
if weight <= 0 then weight = 1 end
local latest = tonumber(redis.call('GET', clock) or '0')
if best_v > latest then redis.call('SET', clock, string.format('%.17g', best_v)) end
redis.call('HSET', vtime, best, string.format('%.17g', best_v + #best_ids / weight))
redis.call('SADD', F.fair_running .. best, unpack(best_ids))
local group = cjson.encode({owner = best, runs = best_ids})
redis.call('SET', claim, group, 'EX', ARGV[2])
return {'group', group}
"""
_POP_FAMILIES = ("run", "user", "fair_queue", "fair_running")

# KEYS: claim, parked, claims; ARGV: families (fair_running), claim id. Ends a claim and its
# lease; returns how many tokens are parked.
_RELEASE = """
local F = cjson.decode(ARGV[1])
local held = redis.call('GET', KEYS[1])
if held then
  local group = cjson.decode(held)
  redis.call('SREM', F.fair_running .. group.owner, unpack(group.runs))
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[3], ARGV[2])
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""

# KEYS: parked; ARGV: how many were re-sent.
_UNPARK = """
local left = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[1])
if left > 0 then redis.call('SET', KEYS[1], left) else redis.call('DEL', KEYS[1]) end
return math.max(left, 0)
"""


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
        self._enqueue = client.register_script(_ENQUEUE)
        self._pop = client.register_script(_POP)
        self._release = client.register_script(_RELEASE)
        self._unpark = client.register_script(_UNPARK)
        f = self.keys.fair
        self._pop_keys = [f("ready"), f("vtime"), f("clock"), f("parked"), f("caps")]
        self._pop_families = self.keys.lua_families(*_POP_FAMILIES)
        self._release_families = self.keys.lua_families("fair_running")

    def enqueue(self, *, owner: str, groups: list[list[str]]) -> None:
        """Append groups to the owner's queue (one token per group is the caller's to send)."""
        f = self.keys.fair
        keys = [self.keys.fair_queue(owner), f("ready"), f("vtime"), f("clock")]
        self._enqueue(keys=keys, args=[owner, *(json.dumps(list(g)) for g in groups)])

    def pop(self, *, claim: str, claim_ttl_s: int) -> Popped:
        """The group this token trains, chosen by the scheduler (or the one it claimed)."""
        keys = [self.keys.fair_claim(claim), *self._pop_keys]
        state, raw = self._pop(keys=keys, args=[self._pop_families, claim_ttl_s])
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
        """Append one group to its owner's queue (the owner read from its first run)."""
        owner = self.owner_of(run_ids[0])
        self.enqueue(owner=owner, groups=[run_ids])
        return owner

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
