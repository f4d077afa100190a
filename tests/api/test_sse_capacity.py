"""Room for many SSE streams: each holds a Redis connection in a blocked XREAD (real Redis)."""

import asyncio

from api.sse import open_stream_store


def blocked_reads(api_settings, *, pool: int, reads: int, block_ms: int) -> list:
    """What `reads` concurrent blocked XREADs on idle streams return, through a pool of `pool`."""
    settings = api_settings.model_copy(update={"redis_stream_connections": pool})

    async def read_all() -> list:
        store = open_stream_store(settings)
        try:
            keys = [store.keys.run_events(f"idle{i}") for i in range(reads)]
            return await asyncio.gather(
                *(store.read(k, after="0-0", block_ms=block_ms) for k in keys)
            )
        finally:
            await store.close()

    return asyncio.run(read_all())


def test_more_blocked_reads_than_redis_pys_default_pool_all_get_a_connection(
    api_settings, redis_client
):
    """redis-py's default pool refuses its 101st connection at once (a 503 for the request)."""
    assert blocked_reads(api_settings, pool=150, reads=120, block_ms=300) == [[]] * 120


def test_past_the_pool_a_request_waits_for_a_connection(api_settings, redis_client):
    assert blocked_reads(api_settings, pool=10, reads=25, block_ms=200) == [[]] * 25
