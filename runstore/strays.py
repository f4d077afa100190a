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
"""

from __future__ import annotations

import time

from runstore.replies import decoded
from runstore.store import Store

STRAY_REASON = (
    "its submission was cut off before it was queued (Redis or the broker "
    "failed mid-way); submit it again"
)

# ARGV: families (_FAMILIES), cutoff (unix seconds), run ids... Returns the ids that are
# queued, were created before the cutoff, are not dispatched (fair_running) and appear in no
# group of their owner's queue. One step, so the scheduler cannot pop a run between the checks.
_FIND = """
local F, cutoff = cjson.decode(ARGV[1]), tonumber(ARGV[2])
local queues, out = {}, {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local f = redis.call('HMGET', F.run .. id, 'status', 'created_at', 'owner')
  local created = tonumber(f[2])
  if f[1] == 'queued' and f[3] and created and created < cutoff
      and redis.call('SISMEMBER', F.fair_running .. f[3], id) == 0 then
    local text = queues[f[3]]
    if text == nil then
      text = table.concat(redis.call('LRANGE', F.fair_queue .. f[3], 0, -1), ' ')
      queues[f[3]] = text
    end
    if not string.find(text, '"' .. id .. '"', 1, true) then out[#out + 1] = id end
  end
end
return out
"""
_FAMILIES = ("run", "fair_running", "fair_queue")

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
        strays += find(args=[families, repr(cutoff), *batch])
    return strays


def fail_strays(store: Store, *, older_than_s: float) -> list[str]:
    """Fail every stray run older than older_than_s with the reason; the ids failed."""
    return [
        run_id
        for run_id in find_strays(store, older_than_s=older_than_s)
        if store.fail_queued(run_id=run_id, error=STRAY_REASON)
    ]


def needs_token(store: Store, *, tokens_waiting: int) -> bool:
    """True when groups wait in a fair-share queue but no token is waiting in the broker
    (tokens_waiting) or parked: a token was lost, so one spare token should be sent."""
    if tokens_waiting > 0 or store.fair.parked() > 0:
        return False
    return store.fair.has_pending()
