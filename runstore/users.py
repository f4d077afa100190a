"""Users and their API tokens: records in Redis, tokens stored only as SHA-256 hashes.

A token is `mlp_` + secrets.token_urlsafe(32) (256 random bits). It is shown once, when it is
made; Redis holds its SHA-256 (a fast hash is enough for a random secret of that size) in the
user record and in the `tokens` index, so a lookup is one HGET plus one HGETALL. Revoking or
rotating removes the old hash from the index in the same Lua step, so the old token fails on
the very next request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis

from mlpcore.limits import LIMIT_NAMES
from runstore.errors import Conflict, NotFound
from runstore.keys import Keys
from runstore.replies import decoded, hash_fields, members

TOKEN_PREFIX = "mlp_"
NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")

# KEYS: user hash, users zset, tokens hash; ARGV: name, token hash, admin, now.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'token_hash', ARGV[2], 'admin', ARGV[3],
           'priority', '1', 'created_at', ARGV[4], 'revoked', '0')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

# KEYS: user hash, tokens hash; ARGV: new token hash ('' revokes). Returns 0 if no such user.
_REPLACE_TOKEN = """
local old = redis.call('HGET', KEYS[1], 'token_hash')
if not old then return 0 end
redis.call('HDEL', KEYS[2], old)
if ARGV[1] == '' then
  redis.call('HSET', KEYS[1], 'revoked', '1', 'token_hash', '')
else
  redis.call('HSET', KEYS[1], 'revoked', '0', 'token_hash', ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], redis.call('HGET', KEYS[1], 'name'))
end
return 1
"""


@dataclass(frozen=True)
class User:
    """Who is calling: name, admin flag, fair-share weight and per-user limit overrides."""

    name: str
    admin: bool = False
    priority: float = 1.0
    overrides: dict[str, int] = field(default_factory=dict)
    created_at: float | None = None
    revoked: bool = False

    def public(self) -> dict[str, Any]:
        """The record as the API and CLI show it (no token hash)."""
        return {
            "name": self.name,
            "admin": self.admin,
            "priority": self.priority,
            "overrides": dict(self.overrides),
            "created_at": self.created_at,
            "revoked": self.revoked,
        }


def new_token() -> str:
    """A fresh random API token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    """The name, if it is a valid user name (it becomes part of Redis keys); else ValueError."""
    if not NAME.match(name):
        raise ValueError(f"invalid user name {name!r}: 1-32 of a-z 0-9 _ . -, starting a-z")
    return name


def decode_user(raw: Mapping[str, str]) -> User:
    """A user hash as a User."""
    overrides: dict[str, int] = {k: int(raw[k]) for k in LIMIT_NAMES if raw.get(k)}
    return User(
        name=raw["name"],
        admin=raw.get("admin") == "1",
        priority=float(raw.get("priority") or 1),
        overrides=overrides,
        created_at=float(raw["created_at"]) if raw.get("created_at") else None,
        revoked=raw.get("revoked") == "1",
    )


def _live(raw: Mapping[str, str], digest: str) -> User | None:
    """The user a token lookup found, unless revoked or holding another token since."""
    if not raw or raw.get("revoked") == "1" or raw.get("token_hash") != digest:
        return None
    return decode_user(raw)


async def authenticate_async(client: aioredis.Redis, keys: Keys, token: str) -> User | None:
    """The live user holding this token, or None (async: the API's auth dependency)."""
    digest = token_hash(token)
    name = decoded(await client.hget(keys.tokens(), digest))
    return _live(decoded(await client.hgetall(keys.user(name))), digest) if name else None


class UserStore:
    """Adding, listing, revoking and rotating users, and their priority and overrides."""

    def __init__(self, client: redis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._add = client.register_script(_ADD)
        self._replace = client.register_script(_REPLACE_TOKEN)

    def add(self, *, name: str, admin: bool = False) -> tuple[User, str]:
        """Create a user; return it and its token (the only time the token is seen)."""
        token, now = new_token(), time.time()
        keys = [self.keys.user(check_name(name)), self.keys.users(), self.keys.tokens()]
        if not self._add(keys=keys, args=[name, token_hash(token), "1" if admin else "0", now]):
            raise Conflict(f"user {name!r} already exists")
        return self.require(name), token

    def get(self, name: str) -> User | None:
        """The user record, or None."""
        raw = decoded(self.client.hgetall(self.keys.user(name)))
        return decode_user(raw) if raw else None

    def require(self, name: str) -> User:
        """The user record, or NotFound."""
        user = self.get(name)
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user

    def list(self) -> list[User]:
        """Every user, oldest first."""
        names = members(self.client.zrange(self.keys.users(), 0, -1))
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.user(name))
        return [decode_user(raw) for raw in pipe.execute() if raw]

    def authenticate(self, token: str) -> User | None:
        """The live user holding this token, or None."""
        digest = token_hash(token)
        name = decoded(self.client.hget(self.keys.tokens(), digest))
        return _live(decoded(self.client.hgetall(self.keys.user(name))), digest) if name else None

    def revoke(self, name: str) -> User:
        """Invalidate the user's token at once; the record and its runs stay."""
        self._replace_token(name, "")
        return self.require(name)

    def rotate(self, name: str) -> tuple[User, str]:
        """A new token for the user (re-enabling a revoked one); the old token fails at once."""
        token = new_token()
        self._replace_token(name, token_hash(token))
        return self.require(name), token

    def _replace_token(self, name: str, digest: str) -> None:
        if not self._replace(keys=[self.keys.user(name), self.keys.tokens()], args=[digest]):
            raise NotFound(f"no user {name!r}")

    def update(
        self,
        name: str,
        *,
        priority: float | None = None,
        limits: dict[str, int | None] | None = None,
    ) -> User:
        """Set the priority and per-user overrides (None as a value drops that override)."""
        self.require(name)
        limits = limits or {}
        unknown = set(limits) - set(LIMIT_NAMES)
        if unknown:
            raise ValueError(f"unknown limit(s) {sorted(unknown)}; known: {list(LIMIT_NAMES)}")
        if priority is not None and not priority > 0:
            raise ValueError("priority must be > 0")
        if any(v is not None and v < 1 for v in limits.values()):
            raise ValueError("limits must be >= 1")
        fields = {k: str(v) for k, v in limits.items() if v is not None}
        if priority is not None:
            fields["priority"] = repr(float(priority))
        pipe = self.client.pipeline(transaction=True)
        if fields:
            pipe.hset(self.keys.user(name), mapping=hash_fields(fields))
        dropped = [k for k, v in limits.items() if v is None]
        if dropped:
            pipe.hdel(self.keys.user(name), *dropped)
        if "max_running" in dropped:  # the server's cap applies again from their next submission
            pipe.hdel(self.keys.fair("caps"), name)
        pipe.execute()
        return self.require(name)
