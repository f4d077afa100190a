"""What each user's stored models weigh, and the max_artifact_bytes retention: one Lua step
per change, so two workers saving models of one owner at once cannot both stay under a limit
that fits one, and an eviction marks its runs in the same step that frees their bytes.

A stored model is an entry in the owner's `models` zset (oldest first) and `model_bytes`
hash ("<bytes> <save id>"); the run hash's `model` field says stored, evicted or deleted.
The files themselves are the artifact store's (artifacts/): the caller deletes them after
the step that gave them up, so a reader may find a record saying evicted while its files
are still there, never a record saying stored whose files were deleted by eviction.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.typing import EncodableT

from runstore.keys import Keys
from runstore.replies import decoded

STORED, EVICTED, DELETED, FAILED = "stored", "evicted", "deleted", "failed"
EVICTED_REASON = "evicted: over max_artifact_bytes (%d bytes)"  # Lua's string.format: the limit

# The bytes of a model_bytes entry ("<bytes> <save id>"), and its save id.
_ENTRY = """
local function entry_bytes(entry) return tonumber(string.match(entry or '', '^(%d+)')) or 0 end
local function entry_save(entry) return string.match(entry or '', ' (%w+)$') or '' end
local function model_state(raw)
  local ok, model = pcall(cjson.decode, raw or '')
  if ok and type(model) == 'table' then return model.state end
  return nil
end
"""

# KEYS: models zset, model_bytes hash, user hash, model_limits hash; ARGV: families (run),
# run id, bytes, save id, owner, the reason (EVICTED_REASON). Records the model, then, over
# the owner's limit (the user record's override, else the limit the API applied), gives up
# the oldest stored models (this one too, last) until the rest fit, marking their runs
# evicted; models still being saved by other workers (no `stored` record yet) are left to
# their own step.
# Returns {total bytes kept, {run id, save id, ...} evicted, the evicted runs' model JSON or ''}.
_ADD = (
    _ENTRY
    + """
local F = cjson.decode(ARGV[1])
local id = ARGV[2]
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], id, ARGV[3] .. ' ' .. ARGV[4])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], math.max(now, (tonumber(newest) or 0) + 1), id)
local total = 0
for _, entry in ipairs(redis.call('HVALS', KEYS[2])) do total = total + entry_bytes(entry) end
local limit = tonumber(redis.call('HGET', KEYS[3], 'max_artifact_bytes') or '')
  or tonumber(redis.call('HGET', KEYS[4], ARGV[5]) or '')
local evicted = {}
if not limit or total <= limit then return {total, evicted, ''} end
local reason = cjson.encode({state = 'evicted', reason = string.format(ARGV[6], limit),
  at = tonumber(t[1])})
for _, other in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if total <= limit then break end
  local entry = redis.call('HGET', KEYS[2], other)
  local evictable = other == id  -- this save: its worker records it evicted
  if not evictable and model_state(redis.call('HGET', F.run .. other, 'model')) == 'stored' then
    redis.call('HSET', F.run .. other, 'model', reason)
    evictable = true
  end
  if evictable then
    redis.call('ZREM', KEYS[1], other)
    redis.call('HDEL', KEYS[2], other)
    total = total - entry_bytes(entry)
    table.insert(evicted, other)
    table.insert(evicted, entry_save(entry))
  end
end
return {total, evicted, reason}
"""
)

# KEYS: models zset, model_bytes hash; ARGV: run id, save id. Forget the model only if the
# entry is still that save's (a worker whose end was refused: another may have saved since).
_RELEASE = (
    _ENTRY
    + """
if entry_save(redis.call('HGET', KEYS[2], ARGV[1])) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""
)

# KEYS: models zset, model_bytes hash, run hash; ARGV: run id, the record's new model JSON.
# A stored model is given up and its run marked; returns 1, or 0 when it had none stored.
_DROP = (
    _ENTRY
    + """
if model_state(redis.call('HGET', KEYS[3], 'model')) ~= 'stored' then return 0 end
redis.call('HSET', KEYS[3], 'model', ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""
)


@dataclass(frozen=True)
class Accounted:
    """A model's bytes recorded: the owner's total kept, the (run id, save id) of the models
    evicted for it (perhaps this one itself), whose files the caller deletes, and the `model`
    their records now hold (None when nothing was evicted)."""

    total: int
    evicted: list[tuple[str, str]]
    marked: dict[str, Any] | None = None


class ModelAccounts:
    """Per-owner model bytes, the max_artifact_bytes eviction and owner's deletions."""

    def __init__(self, client: redis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._add = client.register_script(_ADD)
        self._release = client.register_script(_RELEASE)
        self._drop = client.register_script(_DROP)
        self._families = self.keys.lua_families("run")

    def add(self, *, owner: str, run_id: str, size: int, save: str) -> Accounted:
        """Count a run's saved model for its owner, evicting the oldest over the limit."""
        keys = [
            self.keys.owner_models(owner),
            self.keys.owner_model_bytes(owner),
            self.keys.user(owner),
            self.keys.model_limits(),
        ]
        args: list[EncodableT] = [self._families, run_id, int(size), save, owner, EVICTED_REASON]
        total, flat, marked = self._add(keys=keys, args=args)
        flat = list(decoded(flat))
        pairs = list(zip(flat[::2], flat[1::2], strict=True))
        return Accounted(int(total), pairs, json.loads(marked) if marked else None)

    def release(self, *, owner: str, run_id: str, save: str) -> bool:
        """Forget a model that was counted but not recorded (its end was refused)."""
        keys = [self.keys.owner_models(owner), self.keys.owner_model_bytes(owner)]
        return bool(self._release(keys=keys, args=[run_id, save]))

    def drop(self, *, owner: str, run_id: str) -> bool:
        """The owner's deletion: give up the run's stored model; False when none was."""
        keys = [
            self.keys.owner_models(owner),
            self.keys.owner_model_bytes(owner),
            self.keys.run(run_id),
        ]
        state = json.dumps({"state": DELETED, "reason": "deleted by its owner", "at": time.time()})
        return bool(self._drop(keys=keys, args=[run_id, state]))

    def set_limit(self, *, owner: str, limit: int) -> None:
        """Record the owner's effective max_artifact_bytes for the workers' evictions."""
        self.client.hset(self.keys.model_limits(), owner, str(int(limit)))

    def record(self, run_id: str) -> dict[str, Any] | None:
        """The run's `model` field as it is now (None: it has none)."""
        raw = decoded(self.client.hget(self.keys.run(run_id), "model"))
        return json.loads(raw) if raw else None

    def usage(self, *, owner: str) -> dict[str, int]:
        """The owner's stored models and their bytes, as the limit counts them."""
        entries = decoded(self.client.hvals(self.keys.owner_model_bytes(owner)))
        sizes = [int(entry.split(" ", 1)[0]) for entry in entries]
        return {"artifact_bytes": sum(sizes), "models": len(sizes)}
