"""A lab of three test hosts (tests/support/netns.py): A runs Redis (AOF, a password) and the
API, B and C one `mlplab worker` each, reaching Redis only over their own link to A.

Processes start through the project's own entry point (`python -m mlplab.serve api|worker`),
as on real boxes; each worker names itself `cpu1@<its host's hostname>`. The checkpoint
directory is one temp dir for all hosts (an NFS mount, as it were) unless a host is given a
private one; so is the artifact directory (the workers write models, the API serves them).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.support.netns import Fabric, Host
from tests.support.paths import ROOT
from tests.support.waiting import wait_for

REDIS_PORT, API_PORT = 6379, 8000  # inside A's namespace: nothing else listens there
PREFIX = "multihost"


class Lab:
    """The fabric, the processes on it, and the driver's view of them (HTTP and Redis)."""

    def __init__(self, tmp: Path, *, private_checkpoints: tuple[str, ...] = ()) -> None:
        self.tmp, self.fabric = tmp, Fabric()
        self.password = secrets.token_hex(16)
        self.shared = tmp / "shared-checkpoints"
        self.checkpoints = {
            h: tmp / f"{h}-private-checkpoints" if h in private_checkpoints else self.shared
            for h in ("b", "c")
        }
        self.api_url = f"http://{self.fabric.a_seen_from('driver')}:{API_PORT}"
        self.redis = redis.Redis(
            host=self.fabric.a_seen_from("driver"),
            port=REDIS_PORT,
            password=self.password,
            decode_responses=True,
            socket_timeout=10,
        )
        self.api: subprocess.Popen[bytes] | None = None
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def hosts(self) -> dict[str, Host]:
        return self.fabric.hosts

    def redis_url(self, host: str) -> str:
        """The URL host uses for Redis: A's address on host's link (loopback on A itself)."""
        addr = "127.0.0.1" if host == "a" else self.fabric.a_seen_from(host)
        return f"redis://:{self.password}@{addr}:{REDIS_PORT}/0"

    def env(self, host: str) -> dict[str, str]:
        """The MLPLAB_* settings of a process on host."""
        state = self.tmp / f"{host}-state"
        return dict(
            os.environ,
            MLPLAB_REDIS_URL=self.redis_url(host),
            MLPLAB_KEY_PREFIX=PREFIX,
            MLPLAB_DEVICE="cpu",
            MLPLAB_TORCH_THREADS="1",
            MLPLAB_HEARTBEAT_S="0.5",  # a lease lasts 1.5 s
            MLPLAB_REAP_INTERVAL_S="0.3",
            MLPLAB_CANCEL_POLL_S="0.05",
            MLPLAB_MAX_EPOCHS="400",
            MLPLAB_MAX_RUNS_PER_SWEEP="16",
            MLPLAB_SSE_KEEPALIVE_S="1",
            MLPLAB_DATA_DIR=str(self.tmp / "data"),
            MLPLAB_STATE_DIR=str(state),
            MLPLAB_CHECKPOINT_DIR=str(self.checkpoints.get(host, self.shared)),
            MLPLAB_ARTIFACT_DIR=str(self.tmp / "shared-artifacts"),  # written by B, C; read by A
            MLPLAB_CHECKPOINT_EVERY_S="0",  # a lost host's group resumes from its last epoch
        )

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def log_text(self, name: str) -> str:
        path = self.log(name)
        return path.read_text(errors="replace") if path.exists() else ""

    # -- starting and stopping -----------------------------------------------------------

    def start_redis(self) -> None:
        """redis-server on A with AOF (fsync always: a restart loses nothing) and a password."""
        data = self.tmp / "redis"
        data.mkdir(exist_ok=True)
        argv = ["redis-server", "--port", str(REDIS_PORT), "--bind", "0.0.0.0", "--dir", str(data)]
        argv += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        argv += ["--requirepass", self.password]
        self.redis_proc = self.hosts["a"].spawn(argv, env=dict(os.environ), log=self.log("redis"))
        wait_for(self._pings, what="Redis on A to answer the driver", timeout=60)

    def stop_redis(self) -> None:
        """SIGTERM Redis (it writes out its AOF) and wait for it."""
        assert self.redis_proc is not None
        self.redis_proc.send_signal(signal.SIGTERM)
        self.redis_proc.wait(timeout=60)
        self.hosts["a"].procs.remove(self.redis_proc)

    def _pings(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def start_api(self) -> None:
        """`mlplab api` on A, listening on every address of A."""
        argv = [sys.executable, "-m", "mlplab.serve", "api", "--host", "0.0.0.0"]
        argv += ["--port", str(API_PORT), "--no-auth"]
        self.api = self.hosts["a"].spawn(argv, env=self.env("a"), log=self.log("api"), cwd=ROOT)
        wait_for(self._api_up, what=lambda: f"the API on A:\n{self.log_text('api')[-3000:]}")

    def _api_up(self) -> bool:
        assert self.api is not None
        if self.api.poll() is not None:
            raise RuntimeError(f"the API exited:\n{self.log_text('api')[-3000:]}")
        try:
            return httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_api(self) -> None:
        """SIGTERM the API and wait for it."""
        assert self.api is not None
        self.api.send_signal(signal.SIGTERM)
        self.api.wait(timeout=60)
        self.hosts["a"].procs.remove(self.api)
        self.api = None

    def start_workers(self, *hosts: str) -> None:
        """`mlplab worker` (one CPU worker) on each host; returns once their heartbeats are seen."""
        argv = [sys.executable, "-m", "mlplab.serve", "worker", "--workers", "1", "--no-auth"]
        for host in hosts:
            log = self.log(f"worker-{host}")
            self.workers[host] = self.hosts[host].spawn(argv, env=self.env(host), log=log, cwd=ROOT)
        self.until(
            lambda: {self.worker_name(h) for h in hosts} <= set(self.live_workers()),
            f"the workers on {', '.join(hosts)} to beat",
        )

    def tails(self, lines: int = 25) -> str:
        """The end of every process's log, for a failure message."""
        names = ["api", "worker-b", "worker-c"]
        return "\n".join(
            f"--- {n}.log\n" + "\n".join(self.log_text(n).splitlines()[-lines:]) for n in names
        )

    def until(self, ok: Callable[[], object], what: str, timeout: float = 300) -> float:
        """wait_for, failing with the processes' log tails; the monotonic time it held."""
        wait_for(ok, what=lambda: f"{what}\n{self.tails()}", timeout=timeout, every=0.05)
        return time.monotonic()

    def worker_name(self, host: str) -> str:
        """The Celery name the worker on host gives itself."""
        return f"cpu1@{self.hosts[host].name}"

    def host_of(self, worker: str) -> str:
        """Which host ("b", "c") a worker name belongs to."""
        return next(h for h in ("b", "c") if worker == self.worker_name(h))

    def close(self) -> None:
        self.redis.close()
        self.fabric.close()

    # -- looking -------------------------------------------------------------------------

    def live_workers(self) -> dict[str, dict[str, Any]]:
        """The workers whose heartbeat is live, by name (read from Redis)."""
        try:
            names = self.redis.zrange(f"{PREFIX}:workers", 0, -1)
            return {n: {} for n in names if self.redis.exists(f"{PREFIX}:worker:{n}")}
        except redis.RedisError:
            return {}

    def run(self, run_id: str) -> dict[str, Any]:
        """The run record, through the API (waiting out a 503 while Redis restarts)."""
        replies: list[httpx.Response] = []

        def answered() -> bool:
            replies[:] = [httpx.get(f"{self.api_url}/v1/runs/{run_id}", timeout=30)]
            return replies[0].status_code != 503

        wait_for(answered, what=lambda: f"the API to answer: {replies[0].text}", timeout=120)
        assert replies[0].status_code == 200, replies[0].text
        return replies[0].json()

    def runs(self, run_ids: list[str]) -> list[dict[str, Any]]:
        return [self.run(r) for r in run_ids]

    def submit_sweep(self, base: dict[str, Any], grid: dict[str, list[Any]]) -> dict[str, Any]:
        """POST a grid sweep; its record."""
        reply = httpx.post(
            f"{self.api_url}/v1/sweeps", json={"base": base, "grid": grid}, timeout=60
        )
        assert reply.status_code == 202, reply.text
        return reply.json()

    def stream(self, run_id: str) -> list[tuple[str, dict[str, str]]]:
        """The run's event stream, read from Redis."""
        return self.redis.xrange(f"{PREFIX}:run:{run_id}:events")

    def block_until_epoch(self, run_id: str, epoch: int) -> float:
        """Wake on the run's epoch event itself (XREAD BLOCK); the monotonic time it came."""
        stream, last = f"{PREFIX}:run:{run_id}:events", "0-0"
        deadline = time.monotonic() + 300  # a hang bound only
        while time.monotonic() < deadline:
            for _, entries in self.redis.xread({stream: last}, block=2000) or []:
                for entry_id, fields in entries:
                    last = entry_id
                    if fields["type"] == "epoch" and int(entry_id.split("-")[0]) >= epoch:
                        return time.monotonic()
        raise AssertionError(f"run {run_id} never recorded epoch {epoch}\n{self.tails()}")
