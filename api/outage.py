"""Redis outages: clients that fail fast, and the 503 a request gets while Redis is away.

Redis is both the run store and the Celery broker. While it is down, frozen or still loading
its AOF, every request that needs it answers 503 with a JSON `detail` and a `Retry-After`
header, within about `redis_timeout_s` (the sockets' connect and read timeout), and nothing
has to be restarted when it comes back: redis-py and kombu open new connections on the next
request.

What a submission leaves behind when Redis goes away under it:
- refused or timed out before its run was recorded: nothing; resubmit.
- recorded, but queueing failed: `lab.queue.send_group` records the runs as failed with
  the reason ("could not be queued: ...") when Redis still takes that write, and the answer
  is 503; resubmit.
- a write that timed out may still have been applied (a frozen Redis runs it when it thaws):
  a 503 after a timeout is "unknown", so look at GET /v1/runs before resubmitting.
"""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.settings import ApiSettings
from lab.queue import TaskQueue, create_celery
from runstore import Store

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
# redis-py's asyncio client raises these same classes; BusyLoadingError (Redis still loading
# its AOF after a restart) is a ConnectionError; kombu wraps a failed publish in BrokerError.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, BrokerError)


def outage_detail(exc: Exception) -> str:
    """The 503's detail: which part is unreachable and why."""
    part = "the task broker (Redis)" if isinstance(exc, BrokerError) else "the run store (Redis)"
    return f"{part} is unreachable: {str(exc) or type(exc).__name__}; try again later"


def outage_response(exc: Exception) -> JSONResponse:
    """503 {"detail", "code": "unavailable"} with Retry-After."""
    return JSONResponse(
        {"detail": outage_detail(exc), "code": "unavailable"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install(app: FastAPI) -> None:
    """Answer every Redis or broker outage with a 503 (after api.errors.install)."""

    async def on_outage(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: 503, Redis unreachable: %s", request.method, request.url.path, exc)
        return outage_response(exc)

    for cls in OUTAGE_ERRORS:
        app.add_exception_handler(cls, on_outage)


def open_store(settings: ApiSettings) -> Store:
    """The API's run store, on sockets that give up after redis_timeout_s."""
    client = redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
    return Store(client, prefix=settings.key_prefix)


def open_queue(settings: ApiSettings) -> TaskQueue:
    """The broker handle, whose publishes give up after a few redis_timeout_s."""
    celery = create_celery(
        settings.redis_url,
        visibility_timeout_s=settings.visibility_timeout_s,
        redis_timeout_s=settings.redis_timeout_s,
    )
    return TaskQueue(celery)
