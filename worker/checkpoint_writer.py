"""A background thread that writes a group's checkpoints, so training never waits on a disk.

At most one write is in flight; a state handed in while one is written waits as the pending
one, and a newer state replaces it (only the newest is worth writing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
State = dict[str, Any]


class BackgroundWriter:
    """Runs `write(state)` on its own thread for the newest state submitted."""

    def __init__(self, write: Callable[[State], None], *, name: str) -> None:
        self._write, self._name = write, name
        self._cond = threading.Condition()
        self._pending: State | None = None
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, state: State) -> None:
        """Write `state` soon, replacing a pending state not yet begun."""
        with self._cond:
            if self._closed:
                return
            self._pending = state
            if self._thread is None:  # started on first use: most groups never write
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until the pending state (if any) and the one in flight are written."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is None and not self._busy)

    def close(self) -> None:
        """Drop the pending state, wait for the write in flight, stop the thread."""
        with self._cond:
            self._closed, self._pending = True, None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:  # closed
                    return
                state, self._pending, self._busy = self._pending, None, True
            try:
                self._write(state)
            except Exception:  # the thread must live on, or drain() would wait forever
                log.exception("%s: checkpoint write failed", self._name)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
