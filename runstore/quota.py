"""The max_queued quota: a user's queued + running runs, checked atomically with submission.

Every run the store writes joins its owner's `active` set; a count prunes the members that
have finished (any status but queued and running), so nothing has to remember to decrement.
A submission first takes a lease on its run count (RESERVE, one Lua step: prune, compare
active + leased + promised + new against the limit, add to the lease), then writes its runs,
then drops the lease. Two submissions of one user therefore cannot both pass a quota that
fits only one, and a refused submission has written nothing. A lease outlives a crashed API
for at most LEASE_MS.

`promised` is what the owner's running staged sweeps may still create (runstore/stages.py
keeps it): a staged sweep is admitted for its most runs over all stages, and its later
stages keep their room until they are created or the sweep ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.typing import EncodableT

from runstore.errors import RunstoreError
from runstore.keys import Keys
from runstore.replies import decoded

LEASE_MS = 30_000

# KEYS: active set, reserved counter, promised counter; ARGV: families (run), runs, limit,
# lease ms.
# Returns {1 admitted | 0 refused, the count before this submission}.
_RESERVE = """
local F = cjson.decode(ARGV[1])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local s = redis.call('HGET', F.run .. id, 'status')
  if s ~= 'queued' and s ~= 'running' then redis.call('SREM', KEYS[1], id) end
end
local count = redis.call('SCARD', KEYS[1]) + tonumber(redis.call('GET', KEYS[2]) or '0')
  + math.max(0, tonumber(redis.call('GET', KEYS[3]) or '0'))
if count + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return {0, count} end
redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, count}
"""

# KEYS: reserved counter; ARGV: runs.
_UNRESERVE = """
if redis.call('DECRBY', KEYS[1], ARGV[1]) <= 0 then redis.call('DEL', KEYS[1]) end
return 1
"""


class QuotaFull(RunstoreError):
    """A submission that would take its owner over max_queued (the API answers 429)."""

    def __init__(self, *, owner: str, count: int, limit: int, runs: int) -> None:
        super().__init__(
            f"quota max_queued={limit} reached: {owner} has {count} queued or running runs "
            "(counting those their staged sweeps may still create) and this submission "
            f"adds {runs} (a staged sweep: its most runs over all stages); wait for some to "
            "finish or cancel some"
        )
        self.owner, self.count, self.limit, self.runs = owner, count, limit, runs


class Quota:
    """Leases on the max_queued quota, and per-user usage counts."""

    def __init__(self, client: redis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._reserve = client.register_script(_RESERVE)
        self._unreserve = client.register_script(_UNRESERVE)
        self._families = self.keys.lua_families("run")

    @contextmanager
    def lease(self, *, owner: str, runs: int, limit: int) -> Iterator[int]:
        """Hold room for `runs` new runs while they are written; QuotaFull when they don't fit.

        Yields the owner's count before this submission.
        """
        keys = [
            self.keys.owner_active(owner),
            self.keys.owner_reserved(owner),
            self.keys.owner_promised(owner),
        ]
        args: list[EncodableT] = [self._families, runs, limit, LEASE_MS]
        admitted, count = self._reserve(keys=keys, args=args)
        if not admitted:
            raise QuotaFull(owner=owner, count=int(count), limit=limit, runs=runs)
        try:
            yield int(count)
        finally:
            self._unreserve(keys=keys[1:2], args=[runs])

    def usage(self, *, owner: str) -> dict[str, int]:
        """The owner's queued and running runs right now, and the runs their running staged
        sweeps may still create."""
        ids = list(decoded(self.client.smembers(self.keys.owner_active(owner))))
        pipe = self.client.pipeline(transaction=False)
        for run_id in ids:
            pipe.hget(self.keys.run(run_id), "status")
        statuses = pipe.execute() if ids else []
        promised = max(0, int(self.client.get(self.keys.owner_promised(owner)) or 0))
        return {
            "queued": statuses.count("queued"),
            "running": statuses.count("running"),
            "promised": promised,
        }
