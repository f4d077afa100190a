"""Room for many SSE streams: each holds a Redis connection in a blocked XREAD (real Redis)."""

import asyncio

from api.sse import open_async_store


def test_more_blocked_reads_than_redis_pys_default_pool_all_get_a_connection(
    api_settings, redis_client
):
    """redis-py's default pool refuses its 101st connection at once (a 503 for the request)."""
    settings = api_settings.model_copy(update={"redis_max_connections": 150})

    async def read_many() -> list:
        store = open_async_store(settings)
        try:
            keys = [store.keys.run_events(f"idle{i}") for i in range(120)]
            return await asyncio.gather(*(store.read(k, after="0-0", block_ms=300) for k in keys))
        finally:
            await store.close()

    assert asyncio.run(read_many()) == [[]] * 120


def test_past_the_pool_a_request_waits_for_a_connection(api_settings, redis_client):
    settings = api_settings.model_copy(update={"redis_max_connections": 10})

    async def read_more_than_room() -> list:
        store = open_async_store(settings)
        try:
            keys = [store.keys.run_events(f"idle{i}") for i in range(25)]
            return await asyncio.gather(*(store.read(k, after="0-0", block_ms=200) for k in keys))
        finally:
            await store.close()

    assert asyncio.run(read_more_than_room()) == [[]] * 25
