"""With auth on, a real uvicorn and one real Celery worker: fair share across users, and the
`mlplab users` commands as subprocesses against the server's Redis."""

import os
import subprocess
import sys
from datetime import datetime

import httpx
import pytest

from tests.support.http import bearer
from tests.support.paths import ROOT
from tests.support.redis_db import connect
from tests.support.waiting import wait_for_run

pytestmark = pytest.mark.integration

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "train_subset": 512}


def users_cli(server, *args):
    """`mlplab users ...` as a subprocess; its stdout lines (it must succeed)."""
    env = dict(os.environ, MLPLAB_REDIS_URL=server.redis_url, MLPLAB_KEY_PREFIX=server.prefix)
    done = subprocess.run(
        [sys.executable, "-m", "mlplab.cli", "users", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def when(text):
    """A record's ISO timestamp as a datetime."""
    return datetime.fromisoformat(text)


def test_users_cli_round_trip_over_http(auth_server):
    with httpx.Client(base_url=auth_server.base_url, timeout=30) as http:
        token = users_cli(auth_server, "add", "carol")[-1]
        assert http.get("/v1/limits", headers=bearer(token)).json()["user"] == "carol"
        new = users_cli(auth_server, "token", "carol")[-1]
        assert http.get("/v1/limits", headers=bearer(token)).status_code == 401
        assert http.get("/v1/limits", headers=bearer(new)).status_code == 200
        users_cli(auth_server, "revoke", "carol")
        response = http.get("/v1/runs", headers=bearer(new))
        assert response.status_code == 401 and response.headers["www-authenticate"]
        [row] = [line for line in users_cli(auth_server, "list") if line.startswith("carol")]
        assert "revoked" in row


def test_a_second_user_is_not_starved_by_a_long_queue(auth_server):
    from runstore.users import UserStore

    users = UserStore(connect(auth_server.redis_url), prefix=auth_server.prefix)
    ann, bob = (bearer(users.add(name=name)[1]) for name in ("ann", "bob"))
    sweep = {"base": SPEC, "grid": {"seed": list(range(30))}, "fuse": False}
    with httpx.Client(base_url=auth_server.base_url, timeout=30) as http:
        queued = http.post("/v1/sweeps", json=sweep, headers=ann)
        assert queued.status_code == 202, queued.text
        submitted = http.post("/v1/runs", json=SPEC, headers=bob).json()
        # None: a worker already took it between the write and the position read
        assert submitted["queue_position"] is None or submitted["queue_position"] <= 1
        theirs = wait_for_run(
            http, submitted["id"], lambda r: r["status"] == "succeeded", headers=bob, timeout=60
        )
        http.delete(f"/v1/sweeps/{queued.json()['id']}", headers=ann)
        runs = http.get("/v1/runs", params={"limit": 100}, headers=ann).json()["data"]
    started = sorted(when(r["started_at"]) for r in runs if r["started_at"])
    submitted_at, started_at = when(theirs["created_at"]), when(theirs["started_at"])
    meanwhile = [t for t in started if submitted_at < t < started_at]
    assert len(meanwhile) <= 1, (meanwhile, theirs)
    assert len(started) < 30  # ann's queue was still long when bob's run started
    assert theirs["worker"].startswith("cpu1@") and theirs["device"] == "cpu"
