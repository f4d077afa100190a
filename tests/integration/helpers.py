"""Helpers the integration tests share: a private redis-server, polling with a hang bound."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port


class PrivateRedis:
    """A redis-server of a test's own (AOF on unless asked not to) in its own directory, on a
    port that stays the same across restarts."""

    def __init__(
        self, directory: Path, *, appendfsync: str = "everysec", appendonly: bool = True
    ) -> None:
        self.directory, self.appendfsync, self.appendonly = directory, appendfsync, appendonly
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        """Start it (loading the AOF already in the directory) and wait until it answers."""
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
            "--dir",
            str(self.directory),
        ]
        with open(self.directory / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        wait_for(lambda: pings(client), what="redis-server to answer", timeout=60)
        client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM (Redis writes out its AOF and exits) or SIGKILL; wait until it is gone."""
        if self.proc is None:
            return
        if sig == signal.SIGTERM:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server cannot shut down
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, nothing is ever answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after freeze."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def pings(client: redis.Redis) -> bool:
    """True when the server answers PING."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def wait_for(ok: Callable[[], object], *, what: str, timeout: float = 240) -> None:
    """Poll until ok() is truthy; fail naming what never happened (a hang bound only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")
