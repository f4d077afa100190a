"""Redis replies as runstore's clients get them: str where redis-py's types say bytes | str.

Every client runstore builds or is given is made with `decode_responses=True` (Store.from_url,
AsyncStore.from_url, and the clients api/ and mlplab/ build), so a reply is str at run time. The
redis-py type hints cannot see that flag: they type each reply `bytes | str` (or a container of
it). These helpers say so once, in one place: each returns its argument unchanged (a
`typing.cast`, no run-time cost and no conversion), typed as the decoded reply it is. Use them
only on replies of a decoding client.

The last one goes the other way: what runstore writes with HSET is str -> str, which the hints
do not accept as is (see `hash_fields`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast, overload

from redis.typing import EncodableT, FieldT, StreamRangeResponse, ZSetRangeResponse

# A stream entry as XRANGE / XREAD give it on a decoding client: (entry id, its fields).
Entry = tuple[str, dict[str, str]]


@overload
def decoded(reply: bytes | str) -> str: ...
@overload
def decoded(reply: bytes | str | None) -> str | None: ...
@overload
def decoded(reply: list[bytes | str]) -> list[str]: ...
@overload
def decoded(reply: set[bytes | str]) -> set[str]: ...
@overload
def decoded(reply: dict[bytes | str, bytes | str]) -> dict[str, str]: ...
def decoded(reply: Any) -> Any:
    """The reply of a decoding client (GET / HGET, LRANGE, SMEMBERS, HGETALL), typed with str
    for `bytes | str`; returned as is."""
    return reply


def members(reply: ZSetRangeResponse) -> list[str]:
    """The members a ZRANGE / ZREVRANGE without scores returned on a decoding client (the hints
    type the reply for every option, WITHSCORES included); returned as is."""
    return cast(list[str], reply)


def entries(reply: StreamRangeResponse | None) -> list[Entry]:
    """The entries an XRANGE returned on a decoding client; returned as is. (The hints allow
    None for the reply and for an entry's parts, which XRANGE never gives: it answers an empty
    list for an empty range, and only XCLAIM-like commands name deleted entries.)"""
    return cast(list[Entry], reply)


def hash_fields(fields: Mapping[str, str]) -> Mapping[FieldT, EncodableT]:
    """HSET's `mapping=` for str fields and values; returned as is. The hints ask for a
    Mapping[FieldT, EncodableT], and Mapping is invariant in its key type, so a Mapping[str,
    str] does not match it although HSET only reads it."""
    return cast(Mapping[FieldT, EncodableT], fields)
