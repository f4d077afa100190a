"""The supervisor behind `mlplab up` on real processes: crashed children come back, slower when
they keep crashing; and a worker stops soon after SIGTERM even with its Redis gone."""

import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from mlplab.serve import worker_command
from mlplab.supervisor import Supervisor, restart_delay
from tests.support.paths import ROOT
from tests.support.servers import PrivateRedis
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def test_the_backoff_doubles_up_to_its_cap():
    assert [restart_delay(n, first_s=1, cap_s=30) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_keeps_crashing_is_restarted_each_time_later(caplog):
    """A child that exits at once is started again and again, each wait longer, up to the cap."""
    caplog.set_level("INFO", logger="mlplab.serve")
    supervisor = Supervisor(first_delay_s=0.05, max_delay_s=0.4, stable_s=3600)
    supervisor.start("crasher", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    child = supervisor.children[0]

    def restarted_five_times() -> bool:
        supervisor.tend(time.monotonic())
        return len(child.history) > 5

    try:
        wait_for(restarted_five_times, what="five restarts", timeout=120, every=0.01)
    finally:
        supervisor.stop()
    assert len(set(child.history)) == 6  # a new process each time
    crashes = [r for r in caplog.records if "restarting it in" in r.getMessage()]
    assert [r.args[3] for r in crashes[:5]] == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert all("crasher" in r.getMessage() and "code 3" in r.getMessage() for r in crashes)


@pytest.mark.parametrize("away", ["stopped", "frozen"])
def test_an_idle_worker_stops_soon_after_sigterm_while_its_redis_is_away(tmp_path, away):
    """Redis stopped (the consumer retrying to connect) or frozen (every call timing out, and
    Celery's event heartbeat retrying without end): SIGTERM still ends an idle worker. The
    time it took is printed; the bound is a hang bound only."""
    private = PrivateRedis(tmp_path / "redis", appendonly=False)
    private.start()
    env = dict(
        os.environ,
        MLPLAB_REDIS_URL=private.url,
        MLPLAB_KEY_PREFIX="idletest",
        MLPLAB_DEVICE="cpu",
        MLPLAB_TORCH_THREADS="1",
        MLPLAB_HEARTBEAT_S="1",
        MLPLAB_STATE_DIR=str(tmp_path / "state"),
    )
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            worker_command(name="idle"), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        client = redis.Redis.from_url(private.url)
        wait_for(lambda: client.keys("idletest:worker:*"), what="the worker's heartbeat")
        client.close()
        if away == "stopped":
            private.stop()
            wait_for(lambda: "Trying again" in log.read_text(), what="the consumer to retry")
        else:
            private.freeze()
            wait_for(lambda: "heartbeat failed" in log.read_text(), what="a call to time out")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)  # a hang bound only
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        private.stop()
    print(f"\nidle worker exited {took:.2f} s after SIGTERM with its Redis {away} (code {code})")
    text = log.read_text()
    assert code == 0, text
    assert "idle@" in text and "shutting down" in text, text
