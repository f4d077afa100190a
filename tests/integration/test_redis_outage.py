"""Redis goes away and comes back: a real API and a real Celery worker (`python -m mlplab.serve`)
on a private redis-server with AOF on, which the tests freeze (SIGSTOP), stop (SIGTERM) or kill
(SIGKILL) and start again on the same port and directory.

While Redis is away every endpoint that needs it answers 503 with a JSON detail (a client
timeout bounds each request, so a hang fails the test) and /healthz says Redis is unreachable;
once it is back the same API and the same worker carry on: nothing submitted or finished is
lost, queued work trains, new submissions train. Timeouts are generous hang bounds only.

To keep a run queued through the outage the worker is told to stop consuming (Celery's
cancel_consumer) and, afterwards, to start again: the worker process stays the same and is
idle while Redis is away (a run training through an outage is the lease code's business).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from celery.app.control import Control
from kombu.exceptions import OperationalError

from lab.queue import create_celery
from tests.support.servers import PrivateRedis, ServerProcesses
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PREFIX = "outage"
TINY = {"dataset": "synthetic", "hidden": [8], "epochs": 3, "device": "cpu", "seed": 1}
HTTP_TIMEOUT_S = 60.0  # far above the API's 5 s Redis socket timeouts: a hang, not slowness


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def start_stack(server: PrivateRedis, log_dir: Path) -> ServerProcesses:
    """`mlplab api` and `mlplab worker` (auth off) on the private Redis, ready."""
    log_dir.mkdir()
    procs = ServerProcesses(redis_url=server.url, prefix=PREFIX, log_dir=log_dir)
    procs.start("api")
    procs.start("worker")
    try:
        procs.wait_ready(timeout=180)
    except BaseException:
        procs.close()
        raise
    return procs


def run(http: httpx.Client, run_id: str) -> dict:
    reply = http.get(f"/v1/runs/{run_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def submit(http: httpx.Client, spec: dict) -> str:
    reply = http.post("/v1/runs", json=spec)
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


def wait_status(http: httpx.Client, run_id: str, status: str) -> dict:
    wait_for(lambda: run(http, run_id)["status"] == status, what=f"run {run_id} {status}")
    return run(http, run_id)


def assert_unavailable(reply: httpx.Response) -> None:
    """A 503 whose JSON detail names Redis, with a Retry-After."""
    assert reply.status_code == 503, reply.text
    assert "Redis" in reply.json()["detail"] and reply.json()["code"] == "unavailable"
    assert int(reply.headers["Retry-After"]) > 0


def assert_health_unavailable(http: httpx.Client) -> None:
    reply = http.get("/healthz")
    assert reply.status_code == 503
    assert reply.json()["status"] == "unavailable" and reply.json()["redis"] is False


def assert_epochs_exact(record: dict, epochs: int) -> None:
    assert [e["epoch"] for e in record["epochs"]] == list(range(1, epochs + 1)), record


def follow_in_background(base_url: str, run_id: str) -> tuple[threading.Thread, list[str]]:
    """Open a run's SSE stream and read it in a thread; `ended` gets how it ended."""
    ended: list[str] = []
    connected = threading.Event()

    def read() -> None:
        timeout = httpx.Timeout(10, read=HTTP_TIMEOUT_S)
        try:
            with httpx.stream(
                "GET", f"{base_url}/v1/runs/{run_id}/events", timeout=timeout
            ) as reply:
                assert reply.status_code == 200
                connected.set()
                for _ in reply.iter_lines():
                    pass
            ended.append("closed")
        except httpx.HTTPError as exc:  # the server broke the stream off
            ended.append(type(exc).__name__)
        finally:
            connected.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    assert connected.wait(HTTP_TIMEOUT_S) and not ended, ended
    return thread, ended


def consume_again(control: Control, hostname: str) -> bool:
    """Tell the worker to take tasks again; False until it (and our broker link) is back."""
    try:
        return bool(control.add_consumer("celery", destination=[hostname], reply=True, timeout=5))
    except (redis.RedisError, OperationalError):
        return False


def test_api_and_worker_ride_out_a_frozen_then_restarted_redis(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    procs = start_stack(private_redis, tmp_path / "logs")
    control = create_celery(private_redis.url, visibility_timeout_s=3600).control
    try:
        with httpx.Client(base_url=procs.base_url, timeout=HTTP_TIMEOUT_S) as http:
            worker = http.get("/healthz").json()["workers"][0]
            done = submit(http, TINY)
            before = wait_status(http, done, "succeeded")
            # the worker stays up but takes nothing: the next run waits through the outage
            assert control.cancel_consumer(
                "celery", destination=[worker["hostname"]], reply=True, timeout=HTTP_TIMEOUT_S
            )
            queued = submit(http, TINY)
            stream, ended = follow_in_background(procs.base_url, queued)

            private_redis.freeze()  # a Redis that accepts connections and never answers
            try:
                assert_unavailable(http.get(f"/v1/runs/{done}"))
                assert_unavailable(http.get("/v1/runs"))
                assert_health_unavailable(http)
            finally:
                private_redis.thaw()

            private_redis.stop(signal.SIGTERM)
            assert_unavailable(http.get(f"/v1/runs/{done}"))
            assert_unavailable(http.get("/v1/runs"))
            assert_unavailable(http.post("/v1/runs", json=TINY))
            assert_unavailable(http.get(f"/v1/runs/{queued}/events"))
            assert_unavailable(http.delete(f"/v1/runs/{queued}"))
            assert_health_unavailable(http)
            assert http.post("/v1/runs", json={**TINY, "epochs": 0}).status_code == 422
            stream.join(timeout=2 * HTTP_TIMEOUT_S)
            assert ended, "the SSE stream did not end while Redis was down"

            private_redis.start()  # same port, same directory: the AOF is loaded
            wait_for(
                lambda: http.get("/healthz").json()["status"] == "ok",
                what="/healthz ok again (the worker's heartbeat is back)",
            )
            assert run(http, done) == before
            assert run(http, queued)["status"] == "queued"
            listed = http.get("/v1/runs", params={"limit": 500}).json()
            assert {r["id"] for r in listed["data"]} == {done, queued}  # the 503 POST: no run

            wait_for(
                lambda: consume_again(control, worker["hostname"]),
                what="the worker to answer its broker again",
            )
            assert_epochs_exact(wait_status(http, queued, "succeeded"), TINY["epochs"])
            assert_epochs_exact(wait_status(http, submit(http, TINY), "succeeded"), 3)
            assert http.get("/healthz").json()["workers"][0]["pid"] == worker["pid"]
            assert procs.procs["worker"].poll() is None and procs.procs["api"].poll() is None
    finally:
        control.app.close()
        procs.close()


def test_a_killed_redis_with_appendfsync_always_keeps_every_acknowledged_run(
    tmp_path: Path,
) -> None:
    server = PrivateRedis(tmp_path / "redis", appendfsync="always")
    server.start()
    procs = None
    try:
        procs = start_stack(server, tmp_path / "logs")
        with httpx.Client(base_url=procs.base_url, timeout=HTTP_TIMEOUT_S) as http:
            done = submit(http, TINY)
            before = wait_status(http, done, "succeeded")
            procs.stop("worker")
            queued = submit(http, TINY)  # acknowledged, then Redis dies at once

            server.stop(signal.SIGKILL)
            assert_unavailable(http.get(f"/v1/runs/{queued}"))
            server.start()

            assert run(http, done) == before
            assert run(http, queued)["status"] == "queued"
            procs.start("worker")  # its token survived in the broker's list too
            assert_epochs_exact(wait_status(http, queued, "succeeded"), TINY["epochs"])
    finally:
        if procs is not None:
            procs.close()
        server.stop(signal.SIGKILL)
