"""Asynchronous reads for the API's async routes: record lookups and the SSE stream reads,
and the leases that count each user's open streams (runstore/streams.py).

Writes stay in the synchronous Store (Lua scripts, called from plain `def` routes and the
worker); these reads let a lookup or a blocked XREAD wait without holding a thread. The one
write here is a stream's own lease, taken and dropped by the async stream that holds it.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from runstore.codec import decode_runs, decode_sweep
from runstore.events import TERMINAL, Event, parse_entry
from runstore.keys import Keys
from runstore.replies import decoded
from runstore.streams import StreamLeases


class AsyncStore:
    """Run and sweep lookups and stream reads on a redis.asyncio client."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "mlplab") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.streams = StreamLeases(client, self.keys)  # the owners' open SSE streams

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "mlplab") -> AsyncStore:
        """An async store on a new connection pool for `url`."""
        return cls(aioredis.Redis.from_url(url, decode_responses=True), prefix=prefix)

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run record with its epochs, or None."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.run(run_id))
        pipe.xrange(self.keys.run_events(run_id), min="1-0")
        runs = decode_runs(await pipe.execute(), epochs=True)
        return runs[0] if runs else None

    async def get_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        """The sweep record, or None."""
        raw = decoded(await self.client.hgetall(self.keys.sweep(sweep_id)))
        return decode_sweep(raw) if raw else None

    async def run_done(self, run_id: str) -> bool:
        """True once the run is terminal (its terminal event is then in the stream)."""
        return await self.client.hget(self.keys.run(run_id), "status") in TERMINAL

    async def sweep_done(self, sweep_id: str) -> bool:
        """True once every run of the sweep is terminal."""
        n_runs, n_terminal = await self.client.hmget(
            self.keys.sweep(sweep_id), ["n_runs", "n_terminal"]
        )
        return int(n_terminal or 0) >= int(n_runs or 0)

    async def read(self, key: str, *, after: str, block_ms: int | None) -> list[Event]:
        """Entries after `after`, waiting up to block_ms for one when given.

        A long wait is cut into blocks shorter than the client's socket timeout (redis-py 8
        reads with a 5 s one by default), so an idle stream is never taken for a dead Redis.
        """
        deadline = time.monotonic() + (block_ms or 0) / 1000
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            # None (do not block) exactly when block_ms is None
            block = None if block_ms is None else max(1, min(left_ms, self._max_block_ms()))
            reply: Any = await self.client.xread({key: after}, count=500, block=block)
            if reply:
                return [parse_entry(entry_id, fields) for entry_id, fields in reply[0][1]]
            if block is None or left_ms <= block:
                return []

    def _max_block_ms(self) -> int:
        """The longest XREAD block that ends well before a socket read times out."""
        kwargs = self.client.connection_pool.connection_kwargs
        # a pool built from a URL alone names no timeout and gets redis-py 8's default, 5 s
        timeout = kwargs["socket_timeout"] if "socket_timeout" in kwargs else 5.0
        return 3_600_000 if not timeout else max(100, int(timeout * 1000 * 0.6))

    async def close(self) -> None:
        """Release the connection pool."""
        await self.client.aclose()
