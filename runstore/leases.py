"""Leases on running runs: who trains a run, until when, and what happens when they vanish.

A worker process has a holder id (host, pid and a random part: a restarted worker is a new
holder). Starting a run (`acquire`) records the holder in the run hash and a lease expiry in
`{p}:leases` (a zset scored by expiry, Redis clock, ms). While it trains, the worker's
heartbeat thread renews the leases of the runs it holds. Every write a holder makes to the
run (epochs, its end) checks the holder field, so a worker that lost its lease (it stalled,
or was taken for dead) notices on its next write and stops without writing.

A lease that expires means its holder vanished (SIGKILL, OOM, power): `reap` moves every such
run back to `queued` in one step, with a status event giving the reason, and puts its group
back at the front of its owner's fair-share queue; the caller sends one token per group, and
whoever takes it resumes from the group's checkpoint. A token's claim (runstore/fairqueue.py) is
leased the same way in `{p}:fair:claims`, so the runs of a claimed group that had not started
when its worker vanished go back too. `hand_back` does both at once for a worker that shuts
down (SIGTERM) with runs in hand. A run whose cancel was requested while it
was requeued is cancelled when next acquired.

Single-Redis design, like the fair-share scheduler: the scripts build the names of runs,
streams and owner queues they find from the family prefixes in ARGV[1] (runstore/keys.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.typing import EncodableT

from runstore.codec import dumps
from runstore.fairlua import ENTER_READY
from runstore.keys import Keys

# KEYS (every script): leases, fair ready, fair vtime, fair clock, fair claims.
# ARGV[1]: the families the scripts build key names in (_FAMILIES, see Keys.lua_families).
_LIB = (
    ENTER_READY
    + """
local leases, ready, vtime, clock, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local F = cjson.decode(ARGV[1])
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function emit(id, data)
  local run = F.run .. id
  local last = redis.call('HGET', run, 'last_epoch') or '0'
  redis.call('XADD', run .. F.events, last .. '-*', 'type', 'status', 'data', data)
  local sweep = redis.call('HGET', run, 'sweep_id')
  if sweep and sweep ~= '' then
    redis.call('XADD', F.sweep .. sweep .. F.events, '*', 'type', 'status',
               'run_id', id, 'data', data)
  end
end
local function requeue(id, data, counter)
  local run = F.run .. id
  redis.call('HSET', run, 'status', 'queued', 'holder', '')
  redis.call('HINCRBY', run, 'requeues', 1)
  if counter then redis.call('HINCRBY', run, counter, 1) end
  redis.call('ZREM', leases, id)
  local owner = redis.call('HGET', run, 'owner')
  redis.call('SREM', F.fair_running .. owner, id)
  emit(id, data)
  return owner
end
local function push_front(owner, ids)
  enter_ready(ready, vtime, clock, owner)
  redis.call('LPUSH', F.fair_queue .. owner, cjson.encode(ids))
end
"""
)
_FAMILIES = ("run", "events", "sweep", "fair_running", "fair_queue", "fair_claim")

# ARGV: families, run id, holder, ttl ms, status event data, started_at, field/value pairs...
_ACQUIRE = (
    _LIB
    + """
local id = ARGV[2]
local run = F.run .. id
local cur = redis.call('HGET', run, 'status')
if not cur then return {'missing', ''} end
if cur == 'running' then
  local holder = redis.call('HGET', run, 'holder') or ''
  local expiry = tonumber(redis.call('ZSCORE', leases, id) or '0')
  if holder ~= ARGV[3] and expiry > now_ms() then return {'held', holder} end
elseif cur ~= 'queued' then
  return {'refused', cur}
end
if redis.call('HGET', run, 'cancel_requested') == '1' then return {'cancel', cur} end
redis.call('HSET', run, 'status', 'running', 'holder', ARGV[3])
if (redis.call('HGET', run, 'started_at') or '') == '' then
  redis.call('HSET', run, 'started_at', ARGV[6])
end
if #ARGV >= 8 then redis.call('HSET', run, unpack(ARGV, 7)) end
redis.call('ZADD', leases, now_ms() + tonumber(ARGV[4]), id)
emit(id, ARGV[5])
return {'ok', ''}
"""
)

# ARGV: families, holder, ttl ms, run ids... Returns the ids this holder no longer holds.
_RENEW = (
    _LIB
    + """
local lost = {}
local expiry = now_ms() + tonumber(ARGV[3])
for i = 4, #ARGV do
  local run = F.run .. ARGV[i]
  local status, holder = unpack(redis.call('HMGET', run, 'status', 'holder'))
  if status == 'running' and holder == ARGV[2] then
    redis.call('ZADD', leases, expiry, ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)

# ARGV: families, status event data, holder, run ids (one group)... Requeues the holder's
# running runs and puts them, with the group's still-queued ones, back in front; returns those
# ids.
_HAND_BACK = (
    _LIB
    + """
local ids, owner = {}, nil
for i = 4, #ARGV do
  local run = F.run .. ARGV[i]
  local status, holder = unpack(redis.call('HMGET', run, 'status', 'holder'))
  if status == 'running' and holder == ARGV[3] then
    owner = requeue(ARGV[i], ARGV[2])
    ids[#ids + 1] = ARGV[i]
  elseif status == 'queued' then
    owner = owner or redis.call('HGET', run, 'owner')
    ids[#ids + 1] = ARGV[i]
  end
end
if owner then push_front(owner, ids) end
return ids
"""
)

# ARGV: families, status event data, most leases to look at. Requeues runs whose lease expired
# and the still-queued runs of expired claims. Returns {groups queued, run ids requeued...}.
_REAP = (
    _LIB
    + """
local groups, order, ids, pushed = {}, {}, {}, 0
-- claims whose token's worker vanished: their runs not started yet (first, so that runs
-- requeued below are not counted twice)
for _, claim in ipairs(redis.call('ZRANGEBYSCORE', claims, '-inf', now_ms())) do
  local raw = redis.call('GET', F.fair_claim .. claim)
  if raw then
    local group = cjson.decode(raw)
    local parts = group.parts or {group}
    -- a group fused across owners: each part back to the front of its owner's queue, the
    -- last first, so that an owner's parts keep their order
    for k = #parts, 1, -1 do
      local part, queued = parts[k], {}
      for _, id in ipairs(part.runs) do
        local status = redis.call('HGET', F.run .. id, 'status')
        if status == 'queued' then queued[#queued + 1] = id end
        if status ~= 'running' then redis.call('SREM', F.fair_running .. part.owner, id) end
      end
      if #queued > 0 then
        push_front(part.owner, queued)
        pushed = pushed + 1
      end
    end
    redis.call('DEL', F.fair_claim .. claim)
  end
  redis.call('ZREM', claims, claim)
end
local due = redis.call('ZRANGEBYSCORE', leases, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  local run = F.run .. id
  if redis.call('HGET', run, 'status') == 'running' then
    local checkpoint = redis.call('HGET', run, 'checkpoint') or ''
    if checkpoint == '' then checkpoint = id end
    local owner = requeue(id, ARGV[2], 'reaped')
    local key = owner .. '/' .. checkpoint
    if not groups[key] then
      groups[key] = {owner = owner, ids = {}}
      order[#order + 1] = key
    end
    table.insert(groups[key].ids, id)
    ids[#ids + 1] = id
  else
    redis.call('ZREM', leases, id)
  end
end
for _, key in ipairs(order) do push_front(groups[key].owner, groups[key].ids) end
return {pushed + #order, unpack(ids)}
"""
)


# ARGV: families, run id, holder, status event data. Records a restart of a run this holder
# holds (its data as a status event) when epochs are recorded already; returns their number
# (0: none, nothing written; -1: not this holder's run).
_NOTE_RESTART = (
    _LIB
    + """
local run = F.run .. ARGV[2]
local status, holder, last = unpack(redis.call('HMGET', run, 'status', 'holder', 'last_epoch'))
if status ~= 'running' or holder ~= ARGV[3] then return -1 end
last = tonumber(last or '0') or 0
if last > 0 then emit(ARGV[2], ARGV[4]) end
return last
"""
)


@dataclass(frozen=True)
class Reaped:
    """What a reap found: groups put back on the fair queue (one token each) and their runs."""

    groups: int
    run_ids: tuple[str, ...]


class Leases:
    """Acquire, renew, hand back and reap the leases on running runs."""

    def __init__(self, client: redis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._hand_back = client.register_script(_HAND_BACK)
        self._reap = client.register_script(_REAP)
        self._note_restart = client.register_script(_NOTE_RESTART)
        fair = self.keys.fair
        names = (fair("ready"), fair("vtime"), fair("clock"), fair("claims"))
        self._lua_keys = [self.keys.leases(), *names]
        self._families = self.keys.lua_families(*_FAMILIES)

    def _call(self, script: Script, *args: EncodableT) -> Any:
        """Run one of the scripts with its KEYS and, first in ARGV, its families."""
        return script(keys=self._lua_keys, args=[self._families, *args])

    def acquire(
        self,
        *,
        run_id: str,
        holder: str,
        ttl_s: float,
        data: dict[str, object],
        fields: dict[str, str],
    ) -> tuple[str, str]:
        """Start (or take over) a run: ("ok", ""), ("held", holder), ("cancel", status),
        ("refused", status) or ("missing", "")."""
        pairs = [x for kv in fields.items() for x in kv]
        ttl_ms, at = int(ttl_s * 1000), str(data["at"])
        outcome, detail = self._call(self._acquire, run_id, holder, ttl_ms, dumps(data), at, *pairs)
        return outcome, detail

    def renew(self, *, holder: str, run_ids: list[str], ttl_s: float) -> list[str]:
        """Extend this holder's leases; the run ids it no longer holds."""
        if not run_ids:
            return []
        return list(self._call(self._renew, holder, int(ttl_s * 1000), *run_ids))

    def hand_back(self, *, holder: str, run_ids: list[str], reason: str) -> list[str]:
        """Put a group back at the front of its owner's queue: this holder's running runs
        requeued, its queued ones as they are (the caller sends one token when any were);
        the run ids queued again."""
        if not run_ids:
            return []
        data = dumps({"status": "queued", "reason": reason, "at": time.time()})
        return list(self._call(self._hand_back, data, holder, *run_ids))

    def reap(self, *, limit: int = 1000) -> Reaped:
        """Requeue every running run whose lease expired (its worker vanished)."""
        reason = "its worker stopped answering; requeued to resume from its last checkpoint"
        data = dumps({"status": "queued", "reason": reason, "at": time.time()})
        groups, *run_ids = self._call(self._reap, data, limit)
        return Reaped(int(groups), tuple(run_ids))

    def note_restart(self, *, run_id: str, holder: str, reason: str) -> int:
        """Record in the run's events that this holder trains it again from epoch 1 (epochs
        already recorded are kept, and not recorded twice); how many there were (-1: the run
        is not this holder's, nothing written)."""
        data = dumps({"status": "running", "reason": reason, "restart": True, "at": time.time()})
        return int(self._call(self._note_restart, run_id, holder, data))

    def hold_claim(self, *, claim: str, ttl_s: float) -> None:
        """Start or extend the lease on a token's claim (its group's runs not yet started go
        back to the queue if it expires)."""
        seconds, micros = self.client.time()
        expiry = seconds * 1000 + micros // 1000 + int(ttl_s * 1000)
        self.client.zadd(self.keys.fair("claims"), {claim: expiry})

    def expiry(self, run_id: str) -> float | None:
        """The run's lease expiry (Redis clock, unix seconds), or None without a lease."""
        score = self.client.zscore(self.keys.leases(), run_id)
        return None if score is None else score / 1000
