"""The children of `mlplab up`: started together, restarted when they crash, stopped together.

A child that exits while no stop was asked for is started again after a backoff that doubles
with each crash in a row (1 s, 2 s, 4 s ... at most 30 s); one that ran for a minute before it
crashed starts again after 1 s. Only SIGTERM or SIGINT stops the whole set. Every child is
tied to this process (Linux: PR_SET_PDEATHSIG), so a SIGKILLed supervisor leaves no orphan
behind: each child gets SIGTERM, the same as a clean stop sends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("mlplab.serve")

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def restart_delay(crashes: int, *, first_s: float = 1.0, cap_s: float = 30.0) -> float:
    """Seconds to wait before restarting a child that crashed `crashes` times in a row."""
    return min(cap_s, first_s * 2 ** max(0, crashes - 1))


def _die_with(parent: int) -> Callable[[], None] | None:
    """A preexec_fn that asks the kernel for SIGTERM when `parent` dies (None off Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the prctl: nobody will signal us
            os._exit(1)

    return preexec


@dataclass
class Child:
    """One supervised process and what is needed to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    started_at: float
    crashes: int = 0  # exits in a row, each within stable_s of its start
    restart_at: float | None = None  # when it is due to start again, while it is down
    history: list[int] = field(default_factory=list)  # every pid it had, in order


class Supervisor:
    """Child processes started together, restarted with backoff, stopped together on a signal."""

    def __init__(
        self,
        *,
        stop_timeout_s: float = 10.0,
        first_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
        stable_s: float = 60.0,
    ) -> None:
        self.children: list[Child] = []
        self.stop_timeout_s = stop_timeout_s
        self.first_delay_s, self.max_delay_s, self.stable_s = first_delay_s, max_delay_s, stable_s

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a child in its own session (a terminal's Ctrl-C reaches only us), tied to us."""
        child = Child(name, argv, env, self._spawn(name, argv, env), time.monotonic())
        child.history.append(child.proc.pid)
        self.children.append(child)
        return child.proc

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Popen the child; log its pid."""
        proc = subprocess.Popen(
            argv, env=env, start_new_session=True, preexec_fn=_die_with(os.getpid())
        )
        log.info("started %s (pid %d): %s", name, proc.pid, " ".join(argv[1:]))
        return proc

    def wait(self, stopping: list[bool]) -> int:
        """Tend the children (restart the crashed ones) until a stop is requested; 0."""
        while not stopping:
            self.tend(time.monotonic())
            time.sleep(0.2)
        return 0

    def tend(self, now: float) -> None:
        """Note children that exited and schedule their restart; restart the ones due."""
        for child in self.children:
            if child.restart_at is None and child.proc.poll() is not None:
                self._schedule(child, now)
            elif child.restart_at is not None and now >= child.restart_at:
                child.proc = self._spawn(child.name, child.argv, child.env)
                child.history.append(child.proc.pid)
                child.started_at, child.restart_at = time.monotonic(), None
                log.warning("restarted %s (pid %d)", child.name, child.proc.pid)

    def _schedule(self, child: Child, now: float) -> None:
        """Count the crash (a child that ran stable_s starts the count again); log the wait."""
        child.crashes = 1 if now - child.started_at >= self.stable_s else child.crashes + 1
        delay = restart_delay(child.crashes, first_s=self.first_delay_s, cap_s=self.max_delay_s)
        child.restart_at = now + delay
        log.error(
            "%s (pid %d) exited with %s; restarting it in %.1f s (crash %d in a row)",
            child.name,
            child.proc.pid,
            _exit_text(child.proc.returncode),
            delay,
            child.crashes,
        )

    def stop(self) -> None:
        """Terminate the API and workers, then Redis (a worker hands its runs back through
        it), each wave killed if it outlives the timeout."""
        running = [c for c in reversed(self.children) if c.restart_at is None]
        self._stop_wave([c for c in running if c.name != "redis-server"])
        self._stop_wave([c for c in running if c.name == "redis-server"])
        log.info("all processes stopped")

    def _stop_wave(self, children: list[Child]) -> None:
        """SIGTERM these children together and wait for them; SIGKILL the late ones."""
        for child in children:
            if child.proc.poll() is None:
                child.proc.terminate()
        deadline = time.monotonic() + self.stop_timeout_s
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s did not stop within %.0f s; killing it", child.name, self.stop_timeout_s
                )
                child.proc.kill()
                child.proc.wait()


def _exit_text(code: int | None) -> str:
    """'code 3' or 'SIGKILL' for a Popen return code."""
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
