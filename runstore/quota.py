"""The per-user quotas, checked atomically with submission: max_queued (a user's queued +
running runs) and the compute budget max_param_epochs (parameters x epochs summed over them).

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

The budget is counted the same way, in the same step: the param-epochs of each unfinished
member of `active`, read from its spec (so a run that ends gives its share back when it is
pruned, and runs any writer creates count), plus `reserved_cost`, what submissions in flight
are writing. The Lua count uses mlpcore.catalog's SHAPES and its formula, parameter_count x
epochs (tests/runstore/test_budget.py checks that the two agree). Later stages of a staged
sweep hold no budget: its submission is admitted for its costliest runs over all stages, and
after that only the runs that exist count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.typing import EncodableT

from mlpcore.catalog import SHAPES
from runstore.errors import RunstoreError
from runstore.keys import Keys
from runstore.replies import decoded

LEASE_MS = 30_000

# A run's parameters x epochs from its spec JSON; SHAPES: dataset -> {input width, classes}.
_PARAM_EPOCHS = """
local function param_epochs(raw, shapes)
  local ok, spec = pcall(cjson.decode, raw or '')
  if not ok or type(spec) ~= 'table' or not shapes[spec.dataset] then return 0 end
  local shape = shapes[spec.dataset]
  local width, params = shape[1], 0
  for _, w in ipairs(spec.hidden or {}) do
    params = params + width * w + w
    width = w
  end
  params = params + width * shape[2] + shape[2]
  return params * (tonumber(spec.epochs) or 0)
end
"""

# KEYS: active set, reserved counter, promised counter, reserved cost; ARGV: families (run),
# runs, limit, lease ms, cost, budget (-1: none), shapes (JSON).
# Returns {1 admitted | 0 over max_queued | -1 over the budget, the run count before this
# submission, the param-epochs before it (0 without a budget)}.
_RESERVE = (
    _PARAM_EPOCHS
    + """
local F = cjson.decode(ARGV[1])
local budget = tonumber(ARGV[6])
local shapes = budget >= 0 and cjson.decode(ARGV[7]) or nil
local used = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local run = redis.call('HMGET', F.run .. id, 'status', 'spec')
  if run[1] ~= 'queued' and run[1] ~= 'running' then
    redis.call('SREM', KEYS[1], id)
  elseif shapes then
    used = used + param_epochs(run[2], shapes)
  end
end
local count = redis.call('SCARD', KEYS[1]) + tonumber(redis.call('GET', KEYS[2]) or '0')
  + math.max(0, tonumber(redis.call('GET', KEYS[3]) or '0'))
if count + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return {0, count, used} end
if shapes then
  used = used + tonumber(redis.call('GET', KEYS[4]) or '0')
  if used + tonumber(ARGV[5]) > budget then return {-1, count, used} end
end
redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if tonumber(ARGV[5]) > 0 then
  redis.call('INCRBY', KEYS[4], ARGV[5])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return {1, count, used}
"""
)

# KEYS: active set; ARGV: families (run), shapes. The param-epochs of its unfinished runs.
_USED = (
    _PARAM_EPOCHS
    + """
local F = cjson.decode(ARGV[1])
local shapes = cjson.decode(ARGV[2])
local used = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local run = redis.call('HMGET', F.run .. id, 'status', 'spec')
  if run[1] == 'queued' or run[1] == 'running' then used = used + param_epochs(run[2], shapes) end
end
return used
"""
)

# KEYS: reserved counter, reserved cost; ARGV: runs, cost.
_UNRESERVE = """
if redis.call('DECRBY', KEYS[1], ARGV[1]) <= 0 then redis.call('DEL', KEYS[1]) end
if tonumber(ARGV[2]) > 0 and redis.call('DECRBY', KEYS[2], ARGV[2]) <= 0 then
  redis.call('DEL', KEYS[2])
end
return 1
"""


class QuotaFull(RunstoreError):
    """A submission that would take its owner over a quota: max_queued here, the budget in
    BudgetFull (the API answers 429 for both)."""

    def __init__(self, *, owner: str, count: int, limit: int, runs: int) -> None:
        super().__init__(
            f"quota max_queued={limit} reached: {owner} has {count} queued or running runs "
            "(counting those their staged sweeps may still create) and this submission "
            f"adds {runs} (a staged sweep: its most runs over all stages); wait for some to "
            "finish or cancel some"
        )
        self.owner, self.count, self.limit, self.runs = owner, count, limit, runs


class BudgetFull(QuotaFull):
    """A submission that would take its owner over max_param_epochs."""

    def __init__(self, *, owner: str, used: int, budget: int, cost: int) -> None:
        # a QuotaFull (one 429 for every quota) with a message and fields of its own
        RunstoreError.__init__(
            self,
            f"budget max_param_epochs={budget} reached: {owner}'s queued and running runs "
            f"hold {used} param-epochs (parameters x epochs, counting submissions being "
            f"written) and this submission adds {cost} (a staged sweep: its costliest runs "
            "over all stages); wait for some to finish, cancel some, or ask for fewer "
            "epochs or smaller layers",
        )
        self.owner, self.used, self.budget, self.cost = owner, used, budget, cost


class Quota:
    """Leases on the max_queued quota and the max_param_epochs budget, and per-user usage."""

    def __init__(self, client: redis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._reserve = client.register_script(_RESERVE)
        self._unreserve = client.register_script(_UNRESERVE)
        self._used = client.register_script(_USED)
        self._families = self.keys.lua_families("run")
        self._shapes = json.dumps(SHAPES, separators=(",", ":"))

    @contextmanager
    def lease(
        self, *, owner: str, runs: int, limit: int, cost: int = 0, budget: int | None = None
    ) -> Iterator[int]:
        """Hold room for `runs` new runs of `cost` param-epochs in all while they are written;
        QuotaFull when they don't fit max_queued `limit`, BudgetFull when they don't fit the
        `budget` (None: no budget).

        Yields the owner's count before this submission.
        """
        keys = [
            self.keys.owner_active(owner),
            self.keys.owner_reserved(owner),
            self.keys.owner_promised(owner),
            self.keys.owner_reserved_cost(owner),
        ]
        spent = cost if budget is not None else 0
        args: list[EncodableT] = [
            self._families,
            runs,
            limit,
            LEASE_MS,
            spent,
            -1 if budget is None else budget,
            self._shapes,
        ]
        admitted, count, used = self._reserve(keys=keys, args=args)
        if admitted == 0:
            raise QuotaFull(owner=owner, count=int(count), limit=limit, runs=runs)
        if admitted < 0:
            raise BudgetFull(owner=owner, used=int(used), budget=int(budget or 0), cost=cost)
        try:
            yield int(count)
        finally:
            self._unreserve(keys=[keys[1], keys[3]], args=[runs, spent])

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

    def param_epochs(self, *, owner: str) -> int:
        """The param-epochs (parameters x epochs) of the owner's queued and running runs,
        counted as the budget counts them."""
        keys = [self.keys.owner_active(owner)]
        return int(self._used(keys=keys, args=[self._families, self._shapes]))
