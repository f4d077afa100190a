"""Redis away, in-process: every route that needs Redis answers 503 with a JSON detail and a
Retry-After, whether Redis refuses connections (a closed port) or never answers (a socket that
accepts and stays silent); bad input is still a 422; the same app answers again once a
redis-server listens there."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu.exceptions import OperationalError

from api.outage import open_queue, outage_detail
from tests.support.http import starlette_test_client
from tests.support.servers import free_port

TINY = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
ID = "0123456789abcdef"  # of the id format: a malformed one is a 404 before Redis is asked
ROUTES = [
    ("POST", "/v1/runs", TINY),
    ("GET", "/v1/runs", None),
    ("GET", f"/v1/runs/{ID}", None),
    ("GET", f"/v1/runs/{ID}/events", None),
    ("GET", f"/v1/runs/{ID}/plot.png", None),
    ("DELETE", f"/v1/runs/{ID}", None),
    ("POST", "/v1/sweeps", {"base": TINY, "grid": {"lr": [0.1, 0.01]}}),
    ("GET", f"/v1/sweeps/{ID}", None),
    ("GET", f"/v1/sweeps/{ID}/best", None),
    ("GET", f"/v1/sweeps/{ID}/leaderboard", None),
    ("GET", f"/v1/sweeps/{ID}/events", None),
    ("DELETE", f"/v1/sweeps/{ID}", None),
    ("GET", "/v1/limits", None),
]


def app_on(api_settings, url: str, **update):
    """A TestClient context over an app whose Redis is at url (its clients are lazy)."""
    from api.main import create_app

    settings = api_settings.model_copy(update={"redis_url": url, **update})
    return starlette_test_client()(create_app(settings))


def assert_unavailable(response) -> None:
    assert response.status_code == 503, (response.request.url, response.text)
    body = response.json()
    assert body["code"] == "unavailable"
    assert body["detail"].startswith("the run store (Redis) is unreachable: ")
    assert response.headers["Retry-After"] == "5"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener never accepts: connects succeed (the kernel's backlog), replies
    never come, as from a frozen or blackholed Redis."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def test_every_redis_route_is_503_with_detail_while_redis_refuses(api_settings):
    with app_on(api_settings, f"redis://127.0.0.1:{free_port()}/0") as client:
        for method, path, body in ROUTES:
            assert_unavailable(client.request(method, path, json=body))
        health = client.get("/healthz")
    assert health.status_code == 503 and health.headers["Retry-After"] == "5"
    assert health.json() == {"status": "unavailable", "redis": False, "workers": []}


def test_bad_input_is_still_422_while_redis_is_down(api_settings):
    with app_on(api_settings, f"redis://127.0.0.1:{free_port()}/0") as client:
        response = client.post("/v1/runs", json={**TINY, "epochs": 0})
    assert response.status_code == 422 and "epochs" in response.json()["detail"]


def test_with_auth_on_a_token_check_is_503_not_401(api_settings):
    with app_on(api_settings, f"redis://127.0.0.1:{free_port()}/0", auth=True) as client:
        response = client.get("/v1/runs", headers={"Authorization": "Bearer some-token"})
    assert_unavailable(response)


def test_a_silent_redis_is_a_503_after_the_socket_timeout_not_a_hang(api_settings, silent_port):
    url = f"redis://127.0.0.1:{silent_port}/0"
    with app_on(api_settings, url, redis_timeout_s=2) as client:
        for method, path, body in [ROUTES[0], ROUTES[1], ROUTES[2]]:
            assert_unavailable(client.request(method, path, json=body))
        assert client.get("/healthz").status_code == 503


def test_a_publish_to_a_silent_broker_fails_instead_of_waiting_forever(api_settings, silent_port):
    """kombu's socket timeout is None unless set: this send used to hang for good."""
    settings = api_settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{silent_port}/0", "redis_timeout_s": 2}
    )
    queue = open_queue(settings)
    try:
        with pytest.raises((OperationalError, redis.RedisError)):
            queue.send_token()
    finally:
        queue.close()


def test_workers_never_stop_retrying_the_broker():
    from worker.celery_app import app

    assert app.conf.broker_connection_retry and app.conf.broker_connection_max_retries is None
    assert app.conf.broker_transport_options["socket_timeout"] > 1  # above kombu's BRPOP wait


def test_a_broker_failure_names_the_broker():
    detail = outage_detail(OperationalError("Error 111 connecting to 127.0.0.1:1."))
    assert detail.startswith("the task broker (Redis) is unreachable: Error 111")
    empty = outage_detail(redis.TimeoutError())
    assert empty == "the run store (Redis) is unreachable: TimeoutError; try again later"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_same_app_answers_again_once_redis_is_back(api_settings, tmp_path: Path):
    port = free_port()
    with app_on(api_settings, f"redis://127.0.0.1:{port}/0") as client:
        assert_unavailable(client.get("/v1/runs"))
        server = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_for_ping(port)
            assert client.get("/v1/runs").json() == {"data": [], "count": 0}
            assert client.get("/healthz").json()["redis"] is True
        finally:
            server.terminate()
            server.wait(timeout=30)


def _wait_for_ping(port: int, attempts: int = 600) -> None:
    """Until a redis-server answers on port (a hang bound: 600 tries, 0.1 s apart at most)."""
    client = redis.Redis(port=port, socket_timeout=1)
    for _ in range(attempts):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.1)
    pytest.fail(f"redis-server on port {port} never answered")
