"""Auth and isolation with token auth on (in-process app, real Redis).

The matrix walks the app's own OpenAPI paths, so an endpoint added later is covered too: every
/v1 endpoint refuses a request without a valid token, and every endpoint taking a run or
sweep id answers another user's id exactly as a missing one, while its owner and an admin
get through.
"""

import re

import pytest

from artifacts import DirectoryStore
from mlpcore.status import RunStatus
from tests.support.http import bearer
from tests.support.models import finish_with_model
from tests.support.redis_db import TEST_PREFIX, prefix_keys

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
SWEEP = {"base": SPEC, "grid": {"lr": [0.1, 0.01]}}
MISSING = "ffffffffffffffff"
# a valid body for the routes that need one (PATCH: labels; extend: more epochs)
BODY = {
    "/v1/runs/{run_id}": {"tags": ["ok"]},
    "/v1/sweeps/{sweep_id}": {"tags": ["ok"]},
    "/v1/sweeps/{sweep_id}/extend": {"epochs": 5},
}
EPOCH = {"train_loss": 0.5, "test_loss": 0.6, "test_accuracy": 0.5, "lr": 0.1, "seconds": 0.1}


def v1_routes(app):
    """(method, path template) of every /v1 endpoint, from the app's OpenAPI schema."""
    return [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in item
    ]


def fill(path, ids):
    """The path with its {params} replaced from ids (anything else: a dummy)."""
    return re.sub(r"{(\w+)}", lambda m: ids.get(m[1], "x"), path)


@pytest.fixture
def world(auth_client, users, store, api_settings):
    """ann's finished sweep and run (the run with a stored model), and tokens for ann, bob and
    the admin root."""
    tokens = {
        name: users.add(name=name, admin=name == "root")[1] for name in ("ann", "bob", "root")
    }
    sweep = auth_client.post("/v1/sweeps", json=SWEEP, headers=bearer(tokens["ann"])).json()
    run = auth_client.post("/v1/runs", json=SPEC, headers=bearer(tokens["ann"])).json()
    for run_id in sweep["run_ids"]:
        store.mark_running(run_id=run_id, worker="w", device="cpu")
        store.append_epoch(run_id=run_id, metrics={"epoch": 1, **EPOCH})
        store.finish_run(
            run_id=run_id, status="succeeded", result={"final_train_loss": 0.5, "runtime_s": 1.0}
        )
    finish_with_model(store, DirectoryStore(api_settings.artifact_dir), run["id"])
    return {"tokens": tokens, "ids": {"run_id": run["id"], "sweep_id": sweep["id"]}}


def test_every_v1_endpoint_needs_a_valid_token(auth_client, users, redis_client):
    routes = v1_routes(auth_client.app)
    assert len(routes) >= 14
    _, token = users.add(name="ann")
    users.revoke("ann")
    before = prefix_keys(redis_client, TEST_PREFIX)
    for method, path in routes:
        url = fill(path, {})
        for headers in ({}, bearer("mlp_wrong"), bearer(token), {"Authorization": token}):
            response = auth_client.request(method, url, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["code"] == "auth_required"
            assert response.headers["www-authenticate"] == 'Bearer realm="mlplab"'
    assert prefix_keys(redis_client, TEST_PREFIX) == before  # nothing written


def test_a_token_in_the_url_is_refused_even_a_valid_one(auth_client, users):
    _, token = users.add(name="ann")
    for name in ("token", "access_token"):
        response = auth_client.get("/v1/runs", params={name: token})
        assert response.status_code == 401 and "Authorization: Bearer" in response.json()["detail"]


def test_open_endpoints_need_no_token(auth_client):
    for path in ("/healthz", "/", "/static/dashboard.js", "/openapi.json"):
        assert auth_client.get(path).status_code == 200, path


def test_others_ids_answer_exactly_like_missing_ones(auth_client, world):
    routes = [(m, p) for m, p in v1_routes(auth_client.app) if "{run_id}" in p or "{sweep_id}" in p]
    assert len(routes) >= 10
    ids, bob = world["ids"], bearer(world["tokens"]["bob"])
    routes.append(("GET", "/v1/runs?sweep_id={sweep_id}"))
    routes.sort(key=lambda route: route[0] == "DELETE")  # reads first: DELETE .../model deletes
    for method, path in routes:
        theirs = auth_client.request(method, fill(path, ids), headers=bob)
        missing = auth_client.request(method, fill(path, dict.fromkeys(ids, MISSING)), headers=bob)
        assert theirs.status_code == missing.status_code == 404, (method, path)
        masked = theirs.text.replace(ids["run_id"], MISSING).replace(ids["sweep_id"], MISSING)
        assert masked == missing.text and theirs.headers == missing.headers, (method, path)
        for owner in ("ann", "root"):  # the owner and an admin get through
            response = auth_client.request(
                method, fill(path, ids), headers=bearer(world["tokens"][owner]), json=BODY.get(path)
            )
            ok = (200, 202, 204, 409)
            assert response.status_code in ok, (owner, method, path, response.text)


def test_lists_show_own_runs_admins_all_or_one_owners(auth_client, world):
    tokens = {name: bearer(token) for name, token in world["tokens"].items()}
    count = lambda who, **params: auth_client.get(  # noqa: E731
        "/v1/runs", params=params, headers=tokens[who]
    ).json()["count"]
    assert count("ann") == 3 and count("bob") == 0 and count("bob", owner="bob") == 0
    assert count("root") == 3 and count("root", owner="ann") == 3 and count("root", owner="x") == 0
    refused = auth_client.get("/v1/runs", params={"owner": "ann"}, headers=tokens["bob"])
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def finish_all(store, run_ids):
    """End the runs as a worker records them: one epoch, succeeded."""
    for run_id in run_ids:
        store.mark_running(run_id=run_id, worker="w", device="cpu")
        store.append_epoch(run_id=run_id, metrics={"epoch": 1, **EPOCH})
        store.finish_run(
            run_id=run_id, status="succeeded", result={"final_train_loss": 0.5, "runtime_s": 1.0}
        )


@pytest.fixture
def both(auth_client, world, store):
    """world plus bob's own work: a finished sweep of two runs and a queued run."""
    bob, ann = bearer(world["tokens"]["bob"]), bearer(world["tokens"]["ann"])
    sweep = auth_client.post("/v1/sweeps", json=SWEEP, headers=bob).json()
    finish_all(store, sweep["run_ids"])
    queued = auth_client.post("/v1/runs", json=SPEC, headers=bob).json()["id"]
    anns = {r["id"] for r in auth_client.get("/v1/runs", headers=ann).json()["data"]}
    assert len(anns) == 3  # ann's sweep of two and her run, all succeeded
    return {
        **world,
        "anns": anns,
        "bob_sweep": sweep["id"],
        "bob_done": set(sweep["run_ids"]),
        "bob_runs": {*sweep["run_ids"], queued},
    }


def listed(auth_client, token, **params):
    """GET /v1/runs with the params: the status code and the ids it shows (every page)."""
    ids, offset = [], 0
    while True:
        response = auth_client.get(
            "/v1/runs", params={**params, "limit": 2, "offset": offset}, headers=bearer(token)
        )
        if response.status_code != 200:
            return response.status_code, set(ids)
        page = response.json()["data"]
        ids += [r["id"] for r in page]
        offset += 2
        if not page or offset >= response.json()["count"]:
            return 200, set(ids)


def test_the_sweep_filter_never_shows_anothers_sweep(auth_client, both):
    tokens, ann_sweep = both["tokens"], both["ids"]["sweep_id"]
    for extra in ({}, {"status": "succeeded"}, {"owner": "bob"}, {"owner": "ann"}):
        theirs = auth_client.get(
            "/v1/runs", params={"sweep_id": ann_sweep, **extra}, headers=bearer(tokens["bob"])
        )
        missing = auth_client.get(
            "/v1/runs", params={"sweep_id": MISSING, **extra}, headers=bearer(tokens["bob"])
        )
        assert theirs.status_code == missing.status_code == 404, extra
        assert theirs.text.replace(ann_sweep, MISSING) == missing.text, extra
    code, mine = listed(auth_client, tokens["bob"], sweep_id=both["bob_sweep"])
    assert code == 200 and len(mine) == 2 and mine <= both["bob_runs"]
    code, anns = listed(auth_client, tokens["ann"], sweep_id=both["bob_sweep"])
    assert code == 404 and not anns
    assert listed(auth_client, tokens["root"], sweep_id=ann_sweep)[1] < both["anns"]


def test_the_status_filter_never_shows_anothers_runs(auth_client, both):
    tokens = both["tokens"]
    for status in RunStatus:
        code, bobs = listed(auth_client, tokens["bob"], status=status.value)
        assert code == 200 and bobs <= both["bob_runs"], status
        code, anns = listed(auth_client, tokens["ann"], status=status.value)
        assert code == 200 and anns <= both["anns"], status
    assert listed(auth_client, tokens["bob"], status="succeeded") == (200, both["bob_done"])
    assert listed(auth_client, tokens["ann"], status="queued") == (200, set())
    assert listed(auth_client, tokens["root"], status="succeeded") == (
        200,
        both["anns"] | both["bob_done"],
    )


def test_the_owner_filter_never_shows_anothers_runs(auth_client, both):
    tokens = both["tokens"]
    refusals = set()
    for owner in ("ann", "root", "nobody", "ann ", "ANN"):
        for extra in ({}, {"status": "succeeded"}):
            response = auth_client.get(
                "/v1/runs", params={"owner": owner, **extra}, headers=bearer(tokens["bob"])
            )
            assert response.status_code == 403, (owner, extra)
            refusals.add(response.text)
    assert len(refusals) == 1  # the same answer for any name: it tells nobody who exists
    assert listed(auth_client, tokens["bob"], owner="bob") == (200, both["bob_runs"])
    assert listed(auth_client, tokens["ann"], owner="ann") == (200, both["anns"])
    assert listed(auth_client, tokens["root"], owner="bob") == (200, both["bob_runs"])
    assert listed(auth_client, tokens["root"], owner="ann") == (200, both["anns"])


def test_an_admin_cancels_anyones_work(auth_client, users):
    tokens = {name: users.add(name=name, admin=name == "root")[1] for name in ("ann", "root")}
    run = auth_client.post("/v1/runs", json=SPEC, headers=bearer(tokens["ann"])).json()
    sweep = auth_client.post("/v1/sweeps", json=SWEEP, headers=bearer(tokens["ann"])).json()
    root = bearer(tokens["root"])
    assert auth_client.delete(f"/v1/runs/{run['id']}", headers=root).json()["status"] == "cancelled"
    cancelled = auth_client.delete(f"/v1/sweeps/{sweep['id']}", headers=root)
    assert cancelled.status_code == 202 and cancelled.json()["counts"] == {"cancelled": 2}
    assert cancelled.json()["owner"] == "ann"


def test_revoke_and_rotate_answer_401_on_the_next_request(auth_client, users):
    _, token = users.add(name="ann")
    assert auth_client.get("/v1/limits", headers=bearer(token)).status_code == 200
    _, new = users.rotate("ann")
    assert auth_client.get("/v1/limits", headers=bearer(token)).status_code == 401
    assert auth_client.get("/v1/limits", headers=bearer(new)).json()["user"] == "ann"
    users.revoke("ann")
    response = auth_client.get("/v1/limits", headers=bearer(new))
    assert response.status_code == 401 and response.json()["detail"] == "invalid or revoked token"
