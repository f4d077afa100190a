"""An idle worker that was told to stop does stop, even while its Redis is unreachable.

Celery's warm shutdown can wait on a broker that is gone without any bound: the consumer's
event heartbeat (`Heart`) publishes with retry=True and no retry limit, inside the event loop,
where the SIGTERM flag is never looked at; closing the remote-control queue on a frozen Redis
takes three socket timeouts. None of that has work to save once nothing runs. So after SIGTERM
(or SIGINT) a thread waits until no task is running or reserved (a training group hands its
runs back first, however long that takes), gives Celery EXIT_GRACE_S more to finish on its
own, then ends the process with the warm-shutdown exit code, saying so in the log.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

from celery.signals import worker_shutting_down
from celery.worker import state

log = logging.getLogger(__name__)

EXIT_GRACE_S = 3.0  # a normal idle shutdown takes about a second
POLL_S = 0.2


@worker_shutting_down.connect
def guard_exit(sender: Any = None, exitcode: int = 0, **_: Any) -> None:
    """On Celery's SIGTERM/SIGINT (sender: the hostname), start the guard once."""
    if not any(t.name == "exit-guard" for t in threading.enumerate()):
        args = (str(sender), exitcode)
        guard = threading.Thread(target=_exit_when_idle, args=args, name="exit-guard")
        guard.daemon = True  # a clean exit does not wait for it
        guard.start()


def _exit_when_idle(hostname: str, exitcode: int) -> None:
    """Wait for nothing to run, then EXIT_GRACE_S; if the process is still here, end it."""
    while state.active_requests or state.reserved_requests:
        time.sleep(POLL_S)
    time.sleep(EXIT_GRACE_S)
    log.warning(
        "%s still shutting down %.0f s after SIGTERM with nothing to run (Redis unreachable?): "
        "exiting now",
        hostname,
        EXIT_GRACE_S,
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exitcode)
