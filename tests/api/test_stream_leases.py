"""The per-user stream leases behind max_streams (runstore/streams.py), on the real Redis.

Two AsyncStores on separate pools stand in for two API processes; a lease never renewed or
released stands in for a stream of an API process that was SIGKILLed.
"""

import asyncio

import pytest

from runstore import AsyncStore
from runstore.streams import StreamsFull, open_streams, streams_key
from tests.support.redis_db import TEST_PREFIX, UNIT_REDIS_URL
from tests.support.waiting import wait_for

LONG_MS = 600_000


def run(coroutine):
    return asyncio.run(coroutine)


async def with_stores(n, body):
    """body(stores) with n async stores, each on its own connection pool (one per process)."""
    stores = [AsyncStore.from_url(UNIT_REDIS_URL, prefix=TEST_PREFIX) for _ in range(n)]
    try:
        return await body(stores)
    finally:
        for store in stores:
            await store.close()


async def try_acquire(store, *, limit, lease_ms=LONG_MS, owner="ann"):
    try:
        return await store.streams.acquire(owner=owner, limit=limit, lease_ms=lease_ms)
    except StreamsFull:
        return None


def test_concurrent_opens_from_two_processes_admit_exactly_the_cap(redis_client, store):
    async def body(stores):
        attempts = [try_acquire(stores[i % 2], limit=10) for i in range(40)]
        return await asyncio.gather(*attempts)

    tokens = run(with_stores(2, body))
    assert sum(t is not None for t in tokens) == 10
    assert open_streams(redis_client, store.keys, owner="ann") == 10
    assert open_streams(redis_client, store.keys, owner="bob") == 0


def test_refusal_names_the_cap_and_the_count(redis_client):
    async def body(stores):
        for _ in range(3):
            await stores[0].streams.acquire(owner="ann", limit=3, lease_ms=LONG_MS)
        with pytest.raises(StreamsFull) as info:
            await stores[0].streams.acquire(owner="ann", limit=3, lease_ms=LONG_MS)
        return str(info.value)

    detail = run(with_stores(1, body))
    assert "max_streams=3" in detail and "ann has 3 event streams open" in detail


def test_a_released_lease_gives_its_room_back(redis_client, store):
    async def body(stores):
        token = await stores[0].streams.acquire(owner="ann", limit=1, lease_ms=LONG_MS)
        refused = await try_acquire(stores[0], limit=1)
        await stores[0].streams.release(owner="ann", token=token)
        return refused, await try_acquire(stores[0], limit=1)

    refused, again = run(with_stores(1, body))
    assert refused is None and again is not None


def test_a_lease_its_process_stopped_renewing_lapses_and_the_key_goes(redis_client, store):
    """A SIGKILLed API process releases nothing: its streams stop counting after one lease."""
    key = streams_key(store.keys, "ann")

    async def crashed(stores):
        await stores[0].streams.acquire(owner="ann", limit=1, lease_ms=300)

    run(with_stores(1, crashed))
    assert redis_client.pttl(key) != -1  # gone already, or expiring with its last lease
    assert redis_client.pttl(key) <= 300
    wait_for(
        lambda: run(with_stores(1, lambda s: try_acquire(s[0], limit=1))),
        what="the crashed stream's lease to lapse",
    )
    assert open_streams(redis_client, store.keys, owner="ann") == 1


def test_renewing_extends_the_lease_and_the_keys_life(redis_client, store):
    key = streams_key(store.keys, "ann")

    async def body(stores):
        token = await stores[0].streams.acquire(owner="ann", limit=5, lease_ms=60_000)
        before = redis_client.zscore(key, token)
        await stores[0].streams.renew(owner="ann", token=token, lease_ms=LONG_MS)
        return before, redis_client.zscore(key, token)

    before, after = run(with_stores(1, body))
    assert after >= before + LONG_MS - 100_000  # ms; however slow the machine is
    assert redis_client.pttl(key) > 60_000
