"""The sweep list, labels, retry, extend and compare with token auth on: another user's
sweeps are never listed, patched, retried, extended or compared (404 as if missing)."""

import pytest

from tests.support.http import bearer

BASE = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
RANDOM = {"base": BASE, "strategy": "random", "n": 2, "grid": {"lr": {"loguniform": [1e-3, 1e-1]}}}
MISSING = "ffffffffffffffff"


@pytest.fixture
def two(auth_client, users, store):
    """ann's and bob's random sweeps (bob's with a failed run), and their tokens."""
    tokens = {n: bearer(users.add(name=n, admin=n == "root")[1]) for n in ("ann", "bob", "root")}
    sweeps = {
        n: auth_client.post(
            "/v1/sweeps", json={**RANDOM, "name": f"{n}'s"}, headers=tokens[n]
        ).json()
        for n in ("ann", "bob")
    }
    run_id = sweeps["bob"]["run_ids"][0]
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    store.finish_run(run_id=run_id, status="failed", error="cannot read /srv/data/x.idx")
    return tokens, sweeps


def test_the_list_shows_only_the_callers_sweeps_admins_all(auth_client, two):
    tokens, sweeps = two
    listed = lambda who, **p: [  # noqa: E731
        s["id"] for s in auth_client.get("/v1/sweeps", params=p, headers=tokens[who]).json()["data"]
    ]
    assert listed("ann") == [sweeps["ann"]["id"]] and listed("bob") == [sweeps["bob"]["id"]]
    assert listed("ann", name="bob") == [] and listed("ann", owner="ann") == [sweeps["ann"]["id"]]
    assert listed("root") == [sweeps["bob"]["id"], sweeps["ann"]["id"]]
    assert listed("root", owner="ann") == [sweeps["ann"]["id"]]
    refused = auth_client.get("/v1/sweeps", params={"owner": "bob"}, headers=tokens["ann"])
    assert refused.status_code == 403


def test_anothers_sweep_cannot_be_patched_retried_extended_or_compared(auth_client, two, store):
    tokens, sweeps = two
    bobs = sweeps["bob"]
    calls = [
        ("PATCH", f"/v1/sweeps/{bobs['id']}", {"tags": ["mine"]}),
        ("PATCH", f"/v1/runs/{bobs['run_ids'][0]}", {"name": "mine"}),
        ("POST", f"/v1/sweeps/{bobs['id']}/retry", None),
        ("POST", f"/v1/sweeps/{bobs['id']}/extend", {"n": 1}),
        ("GET", f"/v1/compare?sweeps={sweeps['ann']['id']},{bobs['id']}", None),
        ("GET", f"/v1/compare.png?sweeps={sweeps['ann']['id']},{bobs['id']}", None),
        ("GET", f"/v1/compare?runs={bobs['run_ids'][0]}", None),
    ]
    for method, path, body in calls:
        theirs = auth_client.request(method, path, json=body, headers=tokens["ann"])
        missing = auth_client.request(
            method, path.replace(bobs["id"], MISSING).replace(bobs["run_ids"][0], MISSING),
            json=body, headers=tokens["ann"],
        )  # fmt: skip
        assert theirs.status_code == missing.status_code == 404, (method, path, theirs.text)
    record = store.get_sweep(bobs["id"])
    assert record["tags"] == [] and len(record["run_ids"]) == 2
    assert store.get_run(bobs["run_ids"][0])["status"] == "failed"
    retried = auth_client.post(f"/v1/sweeps/{bobs['id']}/retry", headers=tokens["bob"])
    assert retried.status_code == 202 and retried.json()["run_ids"] == [bobs["run_ids"][0]]
    run = auth_client.get(f"/v1/runs/{bobs['run_ids'][0]}", headers=tokens["bob"]).json()
    assert run["attempts"][0]["error"] == "cannot read <server path>"  # as the error was shown
