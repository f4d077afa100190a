"""Server-sent events over the run and sweep streams; fully async, one XREAD per client.

Streams read through a pool of their own (redis_stream_connections), so however many are open
they cannot take the connections ordinary requests need; and each user holds at most
max_streams of them at once, counted by a lease per stream in Redis (runstore/streams.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import anyio
import redis.asyncio as aioredis
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.redact import event_data_for
from api.settings import ApiSettings
from runstore import AsyncStore, Event
from runstore.users import User

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
# A stream's lease lasts this long past its last renewal; it renews at every message once a
# quarter of it has passed (messages come at least every keep-alive), so only a stream whose
# API process died lets its lease lapse, and then it stops counting within one lease.
MIN_LEASE_S = 60.0


def open_async_store(settings: ApiSettings) -> AsyncStore:
    """The app's async store for requests: tokens and record lookups (redis_max_connections)."""
    return _open(settings, max_connections=settings.redis_max_connections)


def open_stream_store(settings: ApiSettings) -> AsyncStore:
    """The async store the SSE streams read through, on a pool of their own.

    redis-py's own pool stops at 100 connections and refuses the 101st at once ("Too many
    connections", a 503); this one holds redis_stream_connections, one per open stream's
    blocked XREAD, and makes a read past them wait (each XREAD blocks at most MAX_BLOCK_MS,
    so one is soon free).
    """
    return _open(settings, max_connections=settings.redis_stream_connections)


def _open(settings: ApiSettings, *, max_connections: int) -> AsyncStore:
    """An async store on a blocking pool: past max_connections a caller waits up to 5 s."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=5,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_s,  # >= 2 s > MAX_BLOCK_MS
        socket_connect_timeout=settings.redis_timeout_s,
    )
    return AsyncStore(aioredis.Redis.from_pool(pool), prefix=settings.key_prefix)


def format_event(*, event_id: str, name: str, data: str) -> str:
    """One SSE message (data is single-line JSON)."""
    return f"id: {event_id}\nevent: {name}\ndata: {data}\n\n"


def run_message(event: Event, *, user: User) -> str:
    """A run stream message: `id:` is the epoch number for epochs, as in the run record."""
    data = event_data_for(user, event.data)
    return format_event(event_id=event.epoch_id(), name=event.type, data=data)


def sweep_message(event: Event, *, user: User) -> str:
    """A sweep stream message: the run's event data plus its run_id, under the stream id."""
    data = json.dumps({"run_id": event.run_id, **json.loads(event_data_for(user, event.data))})
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
    store: AsyncStore, run_id: str, *, after: str, keepalive_s: float, user: User
) -> AsyncIterator[str]:
    """A run's events as this user may see them; ends after its terminal status event."""
    return follow(
        store,
        store.keys.run_events(run_id),
        after=after,
        done=lambda: store.run_done(run_id),
        render=partial(run_message, user=user),
        keepalive_s=keepalive_s,
        end_on_terminal=True,
    )


def sweep_events(
    store: AsyncStore, sweep_id: str, *, after: str, keepalive_s: float, user: User
) -> AsyncIterator[str]:
    """All events of a sweep's runs as this user may see them; ends when every run is
    terminal."""
    return follow(
        store,
        store.keys.sweep_events(sweep_id),
        after=after,
        done=lambda: store.sweep_done(sweep_id),
        render=partial(sweep_message, user=user),
        keepalive_s=keepalive_s,
        end_on_terminal=False,
    )


async def sse_response(
    messages: AsyncIterator[str], *, store: AsyncStore, owner: str, limit: int, keepalive_s: float
) -> StreamingResponse:
    """A text/event-stream response over the messages, holding one of the owner's `limit`
    stream leases while it runs; StreamsFull (429) before anything is sent when all are held."""
    lease_ms = int(max(MIN_LEASE_S, 4 * keepalive_s) * 1000)
    # Taken here, so a refusal is a plain 429; a client gone before the body starts leaves
    # the lease to lapse (the generator that would drop it never runs).
    token = await store.streams.acquire(owner=owner, limit=limit, lease_ms=lease_ms)
    leased = _leased(messages, store=store, owner=owner, token=token, lease_ms=lease_ms)
    return StreamingResponse(leased, media_type="text/event-stream", headers=_HEADERS)


async def _leased(
    messages: AsyncIterator[str], *, store: AsyncStore, owner: str, token: str, lease_ms: int
) -> AsyncIterator[str]:
    """The messages, renewing the stream's lease as they go and dropping it at the end."""
    leases, renewed = store.streams, time.monotonic()
    try:
        async for message in messages:
            yield message
            if time.monotonic() - renewed >= lease_ms / 4000:
                try:
                    await leases.renew(owner=owner, token=token, lease_ms=lease_ms)
                    renewed = time.monotonic()
                except RedisError as exc:  # tried again at the next message, well in time
                    log.warning("SSE: could not renew %s's stream lease: %s", owner, exc)
    finally:
        # Shielded: a client that went away cancels the stream, and the lease must go anyway.
        with anyio.CancelScope(shield=True):
            try:
                await leases.release(owner=owner, token=token)
            except RedisError as exc:  # the lease lapses by itself
                log.warning("SSE: could not release %s's stream lease: %s", owner, exc)
