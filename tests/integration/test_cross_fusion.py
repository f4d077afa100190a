"""Fusion across users through a real server and worker: single runs of two users that share
a shape train as one group, in fair-share order, each with its own record and exactly the
losses of its solo run."""

import httpx
import pytest

from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from runstore.users import UserStore
from tests.support.http import bearer
from tests.support.redis_db import connect
from tests.support.waiting import wait_for_run

pytestmark = pytest.mark.integration

SHAPE = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "train_subset": 512, "device": "cpu"}
OTHER = {**SHAPE, "hidden": [24]}
BLOCKER = {**SHAPE, "hidden": [40], "epochs": 400}  # keeps the one worker busy until cancelled


def test_single_runs_of_two_users_fuse_in_fair_order_with_solo_losses(auth_server):
    users = UserStore(connect(auth_server.redis_url), prefix=auth_server.prefix)
    ann, bob = (bearer(users.add(name=name)[1]) for name in ("xann", "xbob"))
    done = lambda r: r["status"] in ("succeeded", "failed", "cancelled")  # noqa: E731
    with httpx.Client(base_url=auth_server.base_url, timeout=30) as http:

        def post(spec, who):
            response = http.post("/v1/runs", json=spec, headers=who)
            assert response.status_code == 202, response.text
            return response.json()

        blocker = post(BLOCKER, ann)
        wait_for_run(http, blocker["id"], lambda r: r["status"] == "running", headers=ann)
        # queued behind the blocker, in this order; fair order then serves bob's first run
        # (ann's virtual time is ahead by the blocker), ann's first (same shape: it joins),
        # then bob's other-shaped run, which stops the group, then ann's second
        b1, a1 = post({**SHAPE, "lr": 0.01}, bob), post({**SHAPE, "lr": 0.03, "seed": 1}, ann)
        b2, a2 = post(OTHER, bob), post({**SHAPE, "seed": 2}, ann)
        http.delete(f"/v1/runs/{blocker['id']}", headers=ann)
        ends = {
            run["id"]: wait_for_run(http, run["id"], done, headers=who, timeout=180)
            for run, who in ((b1, bob), (a1, ann), (b2, bob), (a2, ann))
        }
    b1, a1, b2, a2 = (ends[r["id"]] for r in (b1, a1, b2, a2))
    assert all(r["status"] == "succeeded" for r in (b1, a1, b2, a2))
    assert b1["fused_group"] is not None and b1["fused_group"] == a1["fused_group"]
    assert (b1["owner"], a1["owner"]) == ("xbob", "xann")
    assert b2["fused_group"] is None and a2["fused_group"] is None  # each trained alone
    assert b2["started_at"] <= a2["started_at"]  # nobody jumped bob's other-shaped run
    for record in (b1, a1, a2):
        (solo,) = train_group([RunSpec(**record["spec"])])
        assert [e["train_loss"] for e in record["epochs"]] == [m.train_loss for m in solo.epochs]
        assert [e["test_loss"] for e in record["epochs"]] == [m.test_loss for m in solo.epochs]
