"""Idempotency-Key: the same key from the same user within 24 h answers the first submission,
never a second one.

A submission with a key claims it first (runstore.idempotency, one SET NX), names its record
as soon as the record is written, and only then queues it; so a retry after a dropped
connection finds that record whatever the first request got through. A refused submission
(422, 429) wrote nothing and frees the key. A second request while the first is still
writing waits up to `wait_s` for its id, then is told to retry (409); a key sent with another
body, or for the other kind, is a 409 too. Replays skip every check: the submission was
admitted once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runstore import Conflict, Store
from runstore.idempotency import IdempotencyClaims

POLL_S = 0.05  # how often a duplicate looks again while the first request writes


@dataclass
class Claim:
    """A submission's hold on its key: `first_id` names the record a replay answers; else
    the submission is ours to make, and `created` records what it made."""

    store: Store
    owner: str
    key: str | None
    kind: str
    fingerprint: str
    token: str | None = None
    first_id: str | None = None
    recorded: bool = False

    def created(self, record_id: str) -> None:
        """Name the record this key stands for from now on (before it is queued)."""
        if self.key is None or self.token is None:
            return
        self.recorded = _claims(self.store).created(
            owner=self.owner,
            key=self.key,
            token=self.token,
            kind=self.kind,
            fingerprint=self.fingerprint,
            record_id=record_id,
        )

    def release(self) -> None:
        """Free the key of a submission that wrote nothing."""
        if self.key is not None and self.token is not None and not self.recorded:
            _claims(self.store).release(owner=self.owner, key=self.key, token=self.token)


def _claims(store: Store) -> IdempotencyClaims:
    return IdempotencyClaims(store.client, prefix=store.keys.prefix)


def fingerprint(kind: str, body: dict[str, Any]) -> str:
    """The sha256 of a submission's kind and validated body, as canonical JSON."""
    text = json.dumps([kind, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def claim(
    *,
    store: Store,
    owner: str,
    key: str,
    kind: str,
    body: dict[str, Any],
    wait_s: float = 10.0,
) -> Claim:
    """Our claim on the key, or one naming the first submission's record; Conflict for a key
    used with another body, or one still being written after `wait_s`."""
    digest = fingerprint(kind, body)
    claims = _claims(store)
    deadline = time.monotonic() + wait_s
    while True:
        got = claims.claim(owner=owner, key=key, kind=kind, fingerprint=digest)
        if got.current is None:
            return Claim(store, owner, key, kind, digest, token=got.token)
        if got.current["fingerprint"] != digest:
            raise Conflict(
                f"Idempotency-Key {key!r} was used for a different submission (another "
                f"{'body' if got.current['kind'] == kind else 'kind: ' + got.current['kind']}); "
                "send a new key for a new submission"
            )
        if got.current["state"] == "created":
            return Claim(store, owner, key, kind, digest, first_id=got.current["id"])
        if time.monotonic() >= deadline:  # mlplab/client.py asks again on "still in progress"
            raise Conflict(
                f"the submission with Idempotency-Key {key!r} is still in progress; "
                "retry in a moment with the same key"
            )
        time.sleep(POLL_S)


@contextmanager
def once(
    *,
    store: Store,
    owner: str,
    key: str | None,
    kind: str,
    body: dict[str, Any],
    wait_s: float = 10.0,
) -> Iterator[Claim]:
    """The submission's claim on its key (without a key: one that holds nothing); a claim
    whose submission fails before naming its record is dropped again."""
    if key is None:
        yield Claim(store, owner, None, kind, "")
        return
    held = claim(store=store, owner=owner, key=key, kind=kind, body=body, wait_s=wait_s)
    try:
        yield held
    except BaseException:
        held.release()
        raise
