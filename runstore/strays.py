"""Leftovers of a submission that Redis or the broker cut in half, found and settled.

Queuing a run takes several steps: the API (or the worker moving a staged sweep on) records
the runs, pushes their group onto the owner's fair-share queue, then sends one Celery token.
When a step fails, `lab.queue.send_group` fails the runs with the reason; but when
Redis itself went away mid-way, that too can fail, and two kinds of leftover stay behind:

stray run      status queued, yet in no owner queue and never dispatched: no token can ever
               reach it. `fail_strays` fails it with the reason (its submitter was answered
               with an error, so it is not trained behind their back).
tokenless work groups waiting in a queue while no token waits in the broker and none is
               parked: `needs_token` says so, and the caller sends one spare token (a
               surplus token finds nothing and ends).

A run younger than `older_than_s` is never taken for a stray, so a submission in flight is
left alone; a spare token needs no such care, since a surplus one only ends. The API's
repair pass runs both checks now and then (lab/repair.py, scheduled by api/reaper.py).

A run a staged sweep's stage move created (its hash has `stage`) is no stray while its sweep
runs (Keys.staged_running): nobody was answered with an error for it, so the stage repair
queues it instead (`queue_unqueued`, lab/stages.py `resume`), in one step that finds it
unqueued and queues it, so two repairs, or a repair and the worker that recorded the stage,
queue it once.
"""

from __future__ import annotations

import time

from runstore.fairlua import ENTER_READY
from runstore.replies import decoded
from runstore.store import Store

STRAY_REASON = (
    "its submission was cut off before it was queued (Redis or the broker "
    "failed mid-way); submit it again"
)

# Lua shared by the scripts below: whether a run of `owner` is neither dispatched
# (fair_running) nor in a group of the owner's queue; `queues` caches each owner's queue text.
_NOWHERE = """
local function nowhere(F, queues, id, owner)
  if redis.call('SISMEMBER', F.fair_running .. owner, id) == 1 then return false end
  local text = queues[owner]
  if text == nil then
    text = table.concat(redis.call('LRANGE', F.fair_queue .. owner, 0, -1), ' ')
    queues[owner] = text
  end
  return not string.find(text, '"' .. id .. '"', 1, true)
end
"""

# KEYS: running staged sweeps; ARGV: families (_FAMILIES), cutoff (unix seconds), run ids...
# Returns the ids that are queued, were created before the cutoff, are in no queue and not
# dispatched, and are not a later stage's runs of a running staged sweep. One step, so the
# scheduler cannot pop a run between the checks.
_FIND = (
    _NOWHERE
    + """
local F, cutoff = cjson.decode(ARGV[1]), tonumber(ARGV[2])
local queues, out = {}, {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local f = redis.call('HMGET', F.run .. id, 'status', 'created_at', 'owner', 'stage', 'sweep_id')
  local created = tonumber(f[2])
  local staged = f[4] and f[4] ~= '' and f[5] and redis.call('ZSCORE', KEYS[1], f[5])
  if f[1] == 'queued' and f[3] and created and created < cutoff and not staged
      and nowhere(F, queues, id, f[3]) then
    out[#out + 1] = id
  end
end
return out
"""
)
_FAMILIES = ("run", "fair_running", "fair_queue")

# KEYS: owner queue, ready set, vtime hash, clock; ARGV: families (_FAMILIES), owner, run
# ids... The runs of the owner still queued, in no queue and not dispatched are pushed as one
# group, the owner joining the ready set as fairqueue.py's enqueue does (an owner who newly
# has work starts at the clock); returns their ids.
_QUEUE = (
    _NOWHERE
    + ENTER_READY
    + """
local F, owner = cjson.decode(ARGV[1]), ARGV[2]
local queues, ids = {}, {}
for i = 3, #ARGV do
  local f = redis.call('HMGET', F.run .. ARGV[i], 'status', 'owner')
  if f[1] == 'queued' and f[2] == owner and nowhere(F, queues, ARGV[i], owner) then
    ids[#ids + 1] = ARGV[i]
  end
end
if #ids == 0 then return ids end
enter_ready(KEYS[2], KEYS[3], KEYS[4], owner)
redis.call('RPUSH', KEYS[1], cjson.encode(ids))
return ids
"""
)

_BATCH = 500  # run ids per script call: no one call holds Redis for long


def find_strays(store: Store, *, older_than_s: float) -> list[str]:
    """Ids of stray runs (queued in no queue, not dispatched) older than older_than_s."""
    find, families = store.client.register_script(_FIND), store.keys.lua_families(*_FAMILIES)
    candidates: list[str] = []
    for key in store.client.scan_iter(match=store.keys.owner_active("*"), count=500):
        candidates += decoded(store.client.smembers(key))
    cutoff = time.time() - older_than_s
    strays: list[str] = []
    for start in range(0, len(candidates), _BATCH):
        batch = candidates[start : start + _BATCH]
        strays += find(keys=[store.keys.staged_running()], args=[families, repr(cutoff), *batch])
    return strays


def fail_strays(store: Store, *, older_than_s: float) -> list[str]:
    """Fail every stray run older than older_than_s with the reason; the ids failed."""
    return [
        run_id
        for run_id in find_strays(store, older_than_s=older_than_s)
        if store.fail_queued(run_id=run_id, error=STRAY_REASON)
    ]


def queue_unqueued(store: Store, *, run_ids: list[str]) -> list[str]:
    """Queue as one group, in one step, the runs of this group (one owner's) that are still
    queued yet in no queue and not dispatched; the ids queued, none when someone queued them
    first. Its token is the caller's to send."""
    if not run_ids:
        return []
    owner = store.fair.owner_of(run_ids[0])
    fair = store.keys.fair
    keys = [store.keys.fair_queue(owner), fair("ready"), fair("vtime"), fair("clock")]
    families = store.keys.lua_families(*_FAMILIES)
    queued = store.client.register_script(_QUEUE)(keys=keys, args=[families, owner, *run_ids])
    return list(queued)


def needs_token(store: Store, *, tokens_waiting: int) -> bool:
    """True when groups wait in a fair-share queue but no token is waiting in the broker
    (tokens_waiting) or parked: a token was lost, so one spare token should be sent."""
    if tokens_waiting > 0 or store.fair.parked() > 0:
        return False
    return store.fair.has_pending()
