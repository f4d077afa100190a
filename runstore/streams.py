"""Open event streams per user, counted in Redis: the max_streams cap of the API's SSE routes.

Each open stream holds a lease, a member of the owner's `streams` zset scored by its expiry
(Redis clock, ms). Opening one (`acquire`, one Lua step) drops the lapsed leases, compares
the rest with the cap and adds the new one, so two API processes cannot both let a user
past it; the stream renews its lease while it runs and removes it when it ends. A stream of
an API process that died (SIGKILL, OOM) stops counting when its lease lapses, so a crash
never locks a user out for longer than one lease.

{p}:owner:{owner}:streams  zset  stream token -> lease expiry (ms); expires with the last one.
The key's name is made here until runstore/keys.py names it (`owner_streams`).
"""

from __future__ import annotations

import secrets

import redis
import redis.asyncio as aioredis

from runstore.errors import RunstoreError
from runstore.keys import Keys

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# The key lives exactly as long as its longest lease (leases may differ across processes).
_EXPIRE = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
"""
# KEYS: the owner's streams zset; ARGV: cap, token, lease ms. Returns {opened 0/1, open now}.
_ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local open = redis.call('ZCARD', KEYS[1])
if open >= tonumber(ARGV[1]) then return {0, open} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
"""
    + _EXPIRE
    + "return {1, open + 1}"
)
# KEYS: the owner's streams zset; ARGV: token, lease ms. Re-adds a lease that lapsed while
# its stream stalled: the stream is still open, so it counts.
_RENEW = _NOW + "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n" + _EXPIRE
# KEYS: the owner's streams zset. The leases not lapsed yet.
_COUNT = _NOW + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')"


class StreamsFull(RunstoreError):
    """A stream the owner may not open: they hold max_streams already (the API answers 429)."""

    def __init__(self, *, owner: str, open_now: int, limit: int) -> None:
        super().__init__(
            f"limit max_streams={limit} reached: {owner} has {open_now} event streams open "
            "(each dashboard view or `mlplab watch` holds one); close one and try again"
        )
        self.owner, self.open_now, self.limit = owner, open_now, limit


def streams_key(keys: Keys, owner: str) -> str:
    """The owner's zset of stream leases."""
    return keys.owner_streams(owner)


class StreamLeases:
    """Acquire, renew and release the owner's stream leases on a redis.asyncio client."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    async def acquire(self, *, owner: str, limit: int, lease_ms: int) -> str:
        """A new lease's token, or StreamsFull when the owner holds `limit` already."""
        token = secrets.token_hex(8)
        reply = await self._acquire(
            keys=[streams_key(self.keys, owner)], args=[limit, token, lease_ms]
        )
        opened, open_now = (int(part) for part in reply)
        if not opened:
            raise StreamsFull(owner=owner, open_now=open_now, limit=limit)
        return token

    async def renew(self, *, owner: str, token: str, lease_ms: int) -> None:
        """Extend the lease by lease_ms from now."""
        await self._renew(keys=[streams_key(self.keys, owner)], args=[token, lease_ms])

    async def release(self, *, owner: str, token: str) -> None:
        """End the lease: the stream no longer counts."""
        await self._client.zrem(streams_key(self.keys, owner), token)


def open_streams(client: redis.Redis, keys: Keys, *, owner: str) -> int:
    """How many streams the owner holds open now (leases not lapsed), for /v1/limits."""
    return int(client.eval(_COUNT, 1, streams_key(keys, owner)))
