"""One user's event streams cannot starve everyone else (a real uvicorn, auth on, its own Redis).

Seen before: one user holding about 1,100 streams took every connection of the API's Redis
pool, and other users' GET /v1/limits waited 5 s and failed 503 "No connection available".
Now each user holds at most max_streams (429 past it, before the stream starts), counted by a
lease per stream in Redis, and streams read through a pool of their own. Here the request
pool is tiny (10 connections) and ann opens twice as many streams as it has connections.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from runstore.users import UserStore
from tests.support.http import bearer
from tests.support.redis_db import TEST_PREFIX, connect
from tests.support.servers import PrivateRedis, ServerProcesses
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

CAP = 20  # ann's max_streams: twice the request pool
SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}


@pytest.fixture
def api(tmp_path: Path):
    """An API (no worker: runs stay queued, their streams open) on a Redis of its own, with
    users ann and bob; yields the server and their tokens."""
    private = PrivateRedis(tmp_path / "redis", appendonly=False)
    private.start()
    procs = ServerProcesses(redis_url=private.url, prefix=TEST_PREFIX, log_dir=tmp_path, auth=True)
    procs.env.update(
        MLPLAB_MAX_STREAMS=str(CAP),
        MLPLAB_REDIS_MAX_CONNECTIONS="10",
        MLPLAB_REDIS_STREAM_CONNECTIONS="100",
        MLPLAB_SSE_KEEPALIVE_S="1",
    )
    users = UserStore(connect(private.url), prefix=TEST_PREFIX)
    tokens = {name: users.add(name=name)[1] for name in ("ann", "bob")}
    procs.start("api")
    try:
        procs.wait_ready(worker=False)
        yield procs, tokens
    finally:
        procs.close()
        private.stop()


async def open_stream(stack: AsyncExitStack, http: httpx.AsyncClient, path: str, token: str):
    """A stream kept open on the stack: its response once the first event has arrived (the
    server holds it and reads Redis for it from then on), or the refusal as it came."""
    response = await stack.enter_async_context(http.stream("GET", path, headers=bearer(token)))
    if response.status_code == 200:
        lines = response.aiter_lines()
        # held by the stack: a line iterator collected as garbage closes its response
        stack.push_async_callback(lines.aclose)
        while not (await anext(lines)).startswith("data:"):
            pass
    else:
        await response.aread()
    return response


async def timed_limits(http: httpx.AsyncClient, token: str, n: int) -> list[tuple[int, float]]:
    """n GET /v1/limits one after another: (status, seconds) each."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = await http.get("/v1/limits", headers=bearer(token))
        out.append((response.status_code, time.perf_counter() - start))
    return out


async def scenario(base_url: str, tokens: dict[str, str]) -> dict:
    ann, bob = tokens["ann"], tokens["bob"]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        run = (await http.post("/v1/runs", json=SPEC, headers=bearer(ann))).json()
        path = f"/v1/runs/{run['id']}/events"
        quiet = await timed_limits(http, bob, 20)
        async with AsyncExitStack() as everything:
            streams = [AsyncExitStack() for _ in range(CAP)]
            for stack in streams:
                await everything.enter_async_context(stack)
            opened = [await open_stream(stack, http, path, ann) for stack in streams]
            busy = await timed_limits(http, bob, 20)  # while ann holds CAP streams
            over = await open_stream(everything, http, path, ann)
            ann_limits = (await http.get("/v1/limits", headers=bearer(ann))).json()
            bob_run = (await http.post("/v1/runs", json=SPEC, headers=bearer(bob))).json()
            bobs = await open_stream(everything, http, f"/v1/runs/{bob_run['id']}/events", bob)
            for stack in streams[:5]:  # ann closes five: their leases go
                await stack.aclose()
            closed = await asyncio.to_thread(
                wait_for,
                lambda: (
                    httpx.get(f"{base_url}/v1/limits", headers=bearer(ann)).json()["usage"][
                        "streams"
                    ]
                    == CAP - 5
                ),
                what="ann's closed streams to stop counting",
            )
            again = await open_stream(everything, http, path, ann)
        return {
            "opened": [r.status_code for r in opened],
            "over": (over.status_code, over.json()),
            "quiet": quiet,
            "busy": busy,
            "ann_limits": ann_limits,
            "bobs": bobs.status_code,
            "closed": closed,
            "again": again.status_code,
        }


def summary(timings: list[tuple[int, float]]) -> str:
    seconds = [s for _, s in timings]
    return f"median {statistics.median(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms"


def test_one_user_over_the_stream_cap_gets_429_and_others_are_still_served(api):
    procs, tokens = api
    got = asyncio.run(scenario(procs.base_url, tokens))
    print(  # the numbers the issue asks for (pytest -s shows them)
        f"\nann: {got['opened'].count(200)} streams open, the next one {got['over'][0]}; "
        f"bob's /v1/limits before: {summary(got['quiet'])}; "
        f"while ann's {CAP} streams are open: {summary(got['busy'])}"
    )
    assert got["opened"] == [200] * CAP
    status, body = got["over"]
    assert status == 429 and body["code"] == "too_many_streams"
    assert f"max_streams={CAP}" in body["detail"] and "ann has 20" in body["detail"]
    assert [status for status, _ in got["busy"]] == [200] * 20  # never a 503
    assert got["ann_limits"]["limits"]["max_streams"] == CAP
    assert got["ann_limits"]["usage"]["streams"] == CAP
    assert got["bobs"] == 200  # the cap is ann's, not everyone's
    assert got["again"] == 200  # closing streams gives their room back
