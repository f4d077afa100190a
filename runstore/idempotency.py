"""Idempotency-Key claims: which submission a user's key stands for, one Redis string each.

A request claims its key with one SET NX before it writes anything, holding `pending` (with
a token of its own) for PENDING_S; so of two requests with one key only one submits. Once
its records exist it names their id (`created`, kept TTL_S from then); a
submission refused before writing drops its claim (only while it is still its own pending
one), so a retry may try again. A pending claim whose API died before writing lapses after
PENDING_S. Which request waits, replays or is refused is the orchestration's business
(lab/idempotency.py).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from runstore.keys import Keys
from runstore.replies import decoded

TTL_S = 24 * 3600
PENDING_S = 120  # above any submission's writes; a dead API's claim frees the key after it

# KEYS: the claim; ARGV: token. Drops the claim while it is this token's pending one.
_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local claim = cjson.decode(raw)
if claim.state ~= 'pending' or claim.token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: the claim; ARGV: token, claim JSON, ttl ms. Names the id while the claim is ours.
_CREATED = """
local raw = redis.call('GET', KEYS[1])
if not raw or cjson.decode(raw).token ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Claimed:
    """The outcome of a claim: ours (token set, current None) or someone's (current set)."""

    token: str | None
    current: dict[str, Any] | None


class IdempotencyClaims:
    """Claiming, completing and dropping a user's Idempotency-Keys."""

    def __init__(self, client: redis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._release = client.register_script(_RELEASE)
        self._created = client.register_script(_CREATED)

    def claim(self, *, owner: str, key: str, kind: str, fingerprint: str) -> Claimed:
        """Take the key for a new submission, or say who holds it (retried if it lapses)."""
        name = self.keys.idempotency(owner, key)
        while True:
            token = secrets.token_hex(8)
            claim = {"state": "pending", "token": token, "kind": kind, "fingerprint": fingerprint}
            if self.client.set(name, json.dumps(claim), nx=True, px=PENDING_S * 1000):
                return Claimed(token=token, current=None)
            raw = decoded(self.client.get(name))
            if raw is not None:  # else it lapsed between the two calls: claim it again
                return Claimed(token=None, current=json.loads(raw))

    def get(self, *, owner: str, key: str) -> dict[str, Any] | None:
        """The key's claim as it is now, or None."""
        raw = decoded(self.client.get(self.keys.idempotency(owner, key)))
        return json.loads(raw) if raw is not None else None

    def created(
        self, *, owner: str, key: str, token: str, kind: str, fingerprint: str, record_id: str
    ) -> bool:
        """Name the record our pending claim stands for, kept TTL_S; False if not ours now."""
        claim = {
            "state": "created",
            "token": token,
            "kind": kind,
            "fingerprint": fingerprint,
            "id": record_id,
        }
        keys = [self.keys.idempotency(owner, key)]
        return bool(self._created(keys=keys, args=[token, json.dumps(claim), TTL_S * 1000]))

    def release(self, *, owner: str, key: str, token: str) -> bool:
        """Drop our claim while it is still pending (its submission wrote nothing)."""
        return bool(self._release(keys=[self.keys.idempotency(owner, key)], args=[token]))
