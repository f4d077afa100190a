"""Server-sent events over the run and sweep streams; fully async, one XREAD per client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import StreamingResponse

from runstore import AsyncStore, Event

_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = ": keep-alive\n\n"


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
    """Messages after `after` until the source is done and drained; keep-alives while idle."""
    while True:
        # Checked before reading: once done, every remaining event is already in the stream.
        finished = await done()
        block = None if finished else int(keepalive_s * 1000)
        batch = await store.read(key, after=after, block_ms=block)
        for event in batch:
            yield render(event)
            after = event.id
            if end_on_terminal and event.terminal:
                return
        if not batch:
            if finished:
                return
            yield KEEPALIVE


def run_events(
    store: AsyncStore, run_id: str, *, after: str, keepalive_s: float
) -> AsyncIterator[str]:
    """A run's events; ends after its terminal status event."""
    return follow(
        store, store.keys.run_events(run_id), after=after,
        done=lambda: store.run_done(run_id), render=run_message,
        keepalive_s=keepalive_s, end_on_terminal=True,
    )


def sweep_events(
    store: AsyncStore, sweep_id: str, *, after: str, keepalive_s: float
) -> AsyncIterator[str]:
    """All events of a sweep's runs; ends when every run is terminal."""
    return follow(
        store, store.keys.sweep_events(sweep_id), after=after,
        done=lambda: store.sweep_done(sweep_id), render=sweep_message,
        keepalive_s=keepalive_s, end_on_terminal=False,
    )


def sse_response(messages: AsyncIterator[str]) -> StreamingResponse:
    """A text/event-stream response over the messages."""
    return StreamingResponse(messages, media_type="text/event-stream", headers=_HEADERS)
