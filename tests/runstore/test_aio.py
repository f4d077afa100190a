"""AsyncStore stream reads against the real Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from runstore import AsyncStore
from tests.support.redis_db import TEST_PREFIX, UNIT_REDIS_URL


def test_a_wait_longer_than_the_socket_timeout_is_not_a_timeout(redis_client) -> None:
    """redis-py 8 reads with a socket timeout: a long XREAD block is cut into shorter ones."""

    async def wait_then_write() -> tuple[list, list]:
        client = aioredis.Redis.from_url(UNIT_REDIS_URL, decode_responses=True, socket_timeout=0.3)
        store = AsyncStore(client, prefix=TEST_PREFIX)
        key = store.keys.run_events("idle")
        try:
            idle = await store.read(key, after="0-0", block_ms=900)  # 3x the socket timeout
            later = asyncio.create_task(store.read(key, after="0-0", block_ms=5000))
            await asyncio.sleep(0.5)
            await client.xadd(key, {"type": "epoch", "data": "{}"}, id="1-0")
            return idle, await later
        finally:
            await store.close()

    idle, woken = asyncio.run(wait_then_write())
    assert idle == []
    assert [e.id for e in woken] == ["1-0"]


def test_a_store_from_a_url_alone_blocks_below_the_default_socket_timeout() -> None:
    store = AsyncStore.from_url(UNIT_REDIS_URL, prefix=TEST_PREFIX)
    assert store._max_block_ms() < 5000
