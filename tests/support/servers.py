"""Real processes for the integration tests: the API and worker, a private redis-server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from tests.support.paths import ROOT
from tests.support.redis_db import pings
from tests.support.waiting import wait_for


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcesses:
    """`mlplab api` and `mlplab worker` as subprocesses against one Redis DB."""

    def __init__(self, *, redis_url: str, prefix: str, log_dir: Path, auth: bool = False) -> None:
        self.redis_url, self.prefix, self.log_dir, self.auth = redis_url, prefix, log_dir, auth
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = dict(
            os.environ,
            MLPLAB_REDIS_URL=redis_url,
            MLPLAB_KEY_PREFIX=prefix,
            MLPLAB_DEVICE="cpu",
            MLPLAB_TORCH_THREADS="1",
            MLPLAB_HEARTBEAT_S="1",
            MLPLAB_CANCEL_POLL_S="0.05",
            MLPLAB_DATA_DIR=str(log_dir / "data"),
            MLPLAB_MAX_EPOCHS="400",
            MLPLAB_MAX_RUNS_PER_SWEEP="16",
            MLPLAB_SSE_KEEPALIVE_S="1",
            MLPLAB_CHECKPOINT_DIR=str(log_dir / "checkpoints"),
            MLPLAB_CHECKPOINT_EVERY_S="0",  # kill tests need the file of the epoch just done
            MLPLAB_STATE_DIR=str(log_dir / "state"),
        )

    def start(self, part: str) -> None:
        """Start `api` or `worker`, logging to a file in the log dir."""
        argv = [sys.executable, "-m", "mlplab.serve", part, "--port", str(self.port)]
        argv += [] if self.auth else ["--no-auth"]
        with open(self.log_dir / f"{part}.log", "ab") as log:  # the child keeps its own fd
            self.procs[part] = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self, part: str) -> None:
        """SIGTERM a part and wait for it (and the children it supervises) to exit."""
        proc = self.procs.pop(part)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def child_pid(self, part: str) -> int:
        """The process under `mlplab <part>` (the supervisor starts it as its only child)."""
        pid = self.procs[part].pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def kill_api(self) -> None:
        """SIGKILL the API's uvicorn, then stop its supervisor: the port is free once this
        returns (SIGKILLing only the supervisor leaves uvicorn shutting down on the port)."""
        os.kill(self.child_pid("api"), signal.SIGKILL)
        self.stop("api")

    def wait_ready(self, *, worker: bool = True, timeout: float = 90) -> None:
        """Poll /healthz until it answers (and, with worker=True, a worker is alive)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for part, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{part} exited early:\n{self.log_tail(part)}")
            try:
                body = httpx.get(f"{self.base_url}/healthz", timeout=2).json()
                if body["status"] == "ok" or (not worker and body["redis"]):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"server not ready in {timeout}s:\n{self.log_tail('api')}\n{self.log_tail('worker')}"
        )

    def log_tail(self, part: str, lines: int = 40) -> str:
        """The end of a part's log."""
        path = self.log_dir / f"{part}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop everything still running."""
        for part in list(self.procs):
            self.stop(part)


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
