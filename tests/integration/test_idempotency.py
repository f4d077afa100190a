"""A submission cut off mid-request, retried with its Idempotency-Key: the Python client
through a TCP proxy that drops the first connection once the server has done its work (as an
API killed after writing does), against a real uvicorn and a real Celery worker; and an API
SIGKILLed while it queues a sweep, restarted, and retried: exactly one sweep, every run
accounted for."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlpcore.status import TERMINAL
from mlplab.client import Client
from runstore import Store
from runstore.strays import STRAY_REASON
from tests.support.redis_db import TEST_PREFIX
from tests.support.servers import PrivateRedis, ServerProcesses, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "device": "cpu"}


class DroppingProxy:
    """A TCP proxy in front of the API. Its first connection carries the request on, waits
    until `ready()` says the server has done its part (default: its answer begins), calls
    `before_drop`, then closes both sides without passing a byte back: to the client, a
    dropped connection. Later connections are passed through both ways."""

    def __init__(
        self,
        upstream_port: int,
        *,
        ready: Callable[[], object] | None = None,
        before_drop: Callable[[], None] | None = None,
    ) -> None:
        self.upstream_port, self.ready, self.before_drop = upstream_port, ready, before_drop
        self.port = free_port()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            first = self.connections == 1
            target = self._drop if first else self._pass
            threading.Thread(target=target, args=(client,), daemon=True).start()

    def _upstream(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.upstream_port))

    def _drop(self, client: socket.socket) -> None:
        upstream = self._upstream()
        threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
        if self.ready is None:
            upstream.recv(1)  # the answer begins: the server finished the submission
        else:
            wait_for(self.ready, what="the server to do its part")
        if self.before_drop is not None:
            self.before_drop()
        for sock in (client, upstream):
            _close(sock)

    def _pass(self, client: socket.socket) -> None:
        upstream = self._upstream()
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes one way until either side closes."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def owner_sweeps(store: Store, owner: str = "local") -> list[str]:
    return list(store.client.zrange(store.keys.owner_sweeps(owner), 0, -1))


def test_a_retry_after_a_dropped_answer_returns_the_first_submission(server, monkeypatch):
    monkeypatch.delenv("MLPLAB_TOKEN", raising=False)
    store = Store.from_url(server.redis_url, prefix=TEST_PREFIX)
    before = set(owner_sweeps(store))
    proxy = DroppingProxy(server.port)
    try:
        with Client(proxy.url, retry_backoff_s=0.1) as client:
            sweep = client.submit_sweep({"name": "dropped", "base": BASE, "grid": {"seed": [1, 2]}})
    finally:
        proxy.close()
    assert proxy.connections == 2  # the first was dropped after the server answered it
    assert set(owner_sweeps(store)) - before == {sweep["id"]}  # one sweep, the first one
    with Client(server.base_url) as client:
        done = client.wait(sweep["id"], sweep=True)
    assert done["counts"] == {"succeeded": 2}
    store.client.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ServerProcesses, Store]]:
    """An API that fails strays after 1 s and a worker, on a Redis of the test's own."""
    redis_server = PrivateRedis(tmp_path / "redis", appendonly=False)
    redis_server.start()
    (tmp_path / "logs").mkdir()
    procs = ServerProcesses(redis_url=redis_server.url, prefix="idem", log_dir=tmp_path / "logs")
    procs.env.update(
        MLPLAB_REPAIR_INTERVAL_S="0.3", MLPLAB_STRAY_AFTER_S="1", MLPLAB_REAP_INTERVAL_S="0.3"
    )
    procs.start("api")
    procs.start("worker")
    procs.wait_ready()
    store = Store.from_url(redis_server.url, prefix="idem")
    yield procs, store
    store.client.close()
    procs.close()
    redis_server.stop()


def test_an_api_killed_mid_sweep_post_then_retried_makes_exactly_one_sweep(stack, monkeypatch):
    """The API is SIGKILLed once the sweep's records are written and its key names it, while
    it queues the runs; restarted, the client's retry with the same key gets that sweep."""
    procs, store = stack
    monkeypatch.delenv("MLPLAB_TOKEN", raising=False)

    def claimed() -> bool:
        for name in store.client.scan_iter(f"{store.keys.prefix}:idem:*"):
            if json.loads(store.client.get(name) or "{}").get("id"):
                return True
        return False

    def kill_and_restart() -> None:
        procs.kill_api()
        procs.start("api")
        procs.wait_ready()

    proxy = DroppingProxy(procs.port, ready=claimed, before_drop=kill_and_restart)
    body = {"name": "killed", "base": BASE, "fuse": False, "grid": {"seed": list(range(16))}}
    try:
        with Client(proxy.url, retry_backoff_s=0.1) as client:
            sweep = client.submit_sweep(body)
    finally:
        proxy.close()
    assert proxy.connections == 2
    assert owner_sweeps(store) == [sweep["id"]]  # exactly one sweep
    assert sorted(store.owner_run_ids(owner="local")) == sorted(sweep["run_ids"])
    assert len(sweep["run_ids"]) == 16

    def settled() -> list[dict] | None:
        runs = store.get_runs(sweep["run_ids"], epochs=False)
        return runs if all(run["status"] in TERMINAL for run in runs) else None

    runs = wait_for(settled, what="every run of the sweep to end", timeout=300)
    assert isinstance(runs, list)
    for run in runs:  # trained, or failed saying it was cut off: none lost, none twice
        assert run["status"] == "succeeded" or run["error"] == STRAY_REASON, run
    assert owner_sweeps(store) == [sweep["id"]]
