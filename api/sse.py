"""Server-sent events over the run and sweep streams; fully async, one XREAD per client."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis
from fastapi.responses import StreamingResponse
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.settings import ApiSettings
from runstore import AsyncStore, Event

log = logging.getLogger(__name__)
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = ": keep-alive\n\n"
# One XREAD blocks at most this long, far below redis-py's default 5 s socket timeout (which a
# pool built from a URL alone applies without naming it), whatever the keep-alive period.
MAX_BLOCK_MS = 1000
# A busy API process (its threadpool holding the GIL) can still stall the event loop for
# seconds, so a reply Redis sent in time is read after the socket timeout. The position read
# from is unchanged by a timeout: reading again loses and repeats nothing.
MAX_READ_TIMEOUTS = 5


def open_async_store(settings: ApiSettings) -> AsyncStore:
    """The app's async store, on a pool with room for every open stream's blocked XREAD.

    redis-py's own pool stops at 100 connections and refuses the 101st at once ("Too many
    connections", a 503); this one holds redis_max_connections and makes a request past them
    wait (each XREAD blocks at most MAX_BLOCK_MS, so one is soon free).
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=5,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_s,  # >= 2 s > MAX_BLOCK_MS
        socket_connect_timeout=settings.redis_timeout_s,
    )
    return AsyncStore(aioredis.Redis.from_pool(pool), prefix=settings.key_prefix)


def format_event(*, event_id: str, name: str, data: str) -> str:
    """One SSE message (data is single-line JSON)."""
    return f"id: {event_id}\nevent: {name}\ndata: {data}\n\n"


def run_message(event: Event) -> str:
    """A run stream message: `id:` is the epoch number for epochs, as in the run record."""
    return format_event(event_id=event.epoch_id(), name=event.type, data=event.data)


def sweep_message(event: Event) -> str:
    """A sweep stream message: the run's event data plus its run_id, under the stream id."""
    data = json.dumps({"run_id": event.run_id, **json.loads(event.data)})
    return format_event(event_id=event.id, name=event.type, data=data)


async def follow(
    store: AsyncStore,
    key: str,
    *,
    after: str,
    done: Callable[[], Awaitable[bool]],
    render: Callable[[Event], str],
    keepalive_s: float,
    end_on_terminal: bool,
) -> AsyncIterator[str]:
    """Messages after `after` until the source is done and drained; a keep-alive whenever
    keepalive_s pass without a message."""
    block = min(int(keepalive_s * 1000), MAX_BLOCK_MS)
    last_sent, timeouts = time.monotonic(), 0
    while True:
        try:
            # Checked before reading: once done, every remaining event is already in the stream.
            finished = await done()
            batch = await store.read(key, after=after, block_ms=None if finished else block)
            timeouts = 0
        except RedisTimeoutError:
            timeouts += 1
            if timeouts > MAX_READ_TIMEOUTS:
                raise
            log.warning("SSE %s: Redis read timed out (%d in a row); reading again", key, timeouts)
            batch, finished = [], False
        for event in batch:
            yield render(event)
            after, last_sent = event.id, time.monotonic()
            if end_on_terminal and event.terminal:
                return
        if not batch and finished:
            return
        if time.monotonic() - last_sent >= keepalive_s:
            yield KEEPALIVE
            last_sent = time.monotonic()


def run_events(
    store: AsyncStore, run_id: str, *, after: str, keepalive_s: float
) -> AsyncIterator[str]:
    """A run's events; ends after its terminal status event."""
    return follow(
        store,
        store.keys.run_events(run_id),
        after=after,
        done=lambda: store.run_done(run_id),
        render=run_message,
        keepalive_s=keepalive_s,
        end_on_terminal=True,
    )


def sweep_events(
    store: AsyncStore, sweep_id: str, *, after: str, keepalive_s: float
) -> AsyncIterator[str]:
    """All events of a sweep's runs; ends when every run is terminal."""
    return follow(
        store,
        store.keys.sweep_events(sweep_id),
        after=after,
        done=lambda: store.sweep_done(sweep_id),
        render=sweep_message,
        keepalive_s=keepalive_s,
        end_on_terminal=False,
    )


def sse_response(messages: AsyncIterator[str]) -> StreamingResponse:
    """A text/event-stream response over the messages."""
    return StreamingResponse(messages, media_type="text/event-stream", headers=_HEADERS)
