"""End to end: a real uvicorn and a real Celery worker training on the synthetic dataset."""

import httpx
import pytest

from tests.support.http import sse
from tests.support.redis_db import prefix_keys
from tests.support.waiting import wait_for_run

pytestmark = pytest.mark.integration

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "batch_size": 64}
SWEEP = {"name": "it", "base": BASE, "grid": {"lr": [0.05, 0.005], "activation": ["relu", "tanh"]}}


@pytest.fixture(scope="module")
def sweep(server):
    """A 4-run sweep submitted over HTTP, followed on its SSE stream to the end."""
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.post("/v1/sweeps", json=SWEEP)
        assert response.status_code == 202, response.text
        record = response.json()
        messages = sse(http, f"/v1/sweeps/{record['id']}/events")
        return {"record": record, "messages": messages}


def test_sweep_runs_to_the_end_and_streams_every_event(http, sweep):
    record, messages = sweep["record"], sweep["messages"]
    view = http.get(f"/v1/sweeps/{record['id']}").json()
    assert view["done"] and view["counts"] == {"succeeded": 4}
    for run_id in record["run_ids"]:
        mine = [m for m in messages if m["data"]["run_id"] == run_id]
        assert [m["data"].get("status") or m["data"]["epoch"] for m in mine] == [
            "queued",
            "running",
            1,
            2,
            3,
            "succeeded",
        ]


def test_best_and_leaderboard_follow_the_metric(http, sweep):
    sweep_id, run_ids = sweep["record"]["id"], sweep["record"]["run_ids"]
    runs = {r["id"]: r for r in http.get("/v1/runs", params={"sweep_id": sweep_id}).json()["data"]}
    assert set(runs) == set(run_ids)
    expected = sorted(run_ids, key=lambda r: runs[r]["result"]["final_train_loss"])
    board = http.get(f"/v1/sweeps/{sweep_id}/leaderboard").json()
    assert [row["run_id"] for row in board["data"]] == expected
    assert [row["rank"] for row in board["data"]] == [1, 2, 3, 4]
    best = http.get(f"/v1/sweeps/{sweep_id}/best").json()
    assert best["run_id"] == expected[0]
    assert best["value"] == runs[expected[0]]["result"]["final_train_loss"]
    assert best["config"]["varied"] == runs[expected[0]]["varied"]
    assert best["config"]["spec"] == runs[expected[0]]["spec"]


def test_run_stream_matches_the_record_and_resumes(http, sweep):
    run_id = sweep["record"]["run_ids"][0]
    messages = sse(http, f"/v1/runs/{run_id}/events")
    record = http.get(f"/v1/runs/{run_id}").json()
    epochs = [m for m in messages if m["event"] == "epoch"]
    assert [m["id"] for m in epochs] == ["1", "2", "3"]
    assert [m["data"] for m in epochs] == record["epochs"]
    assert messages[-1]["event"] == "status" and messages[-1]["data"]["status"] == "succeeded"
    assert messages[-1]["data"]["result"] == record["result"]
    resumed = sse(http, f"/v1/runs/{run_id}/events", **{"Last-Event-ID": "1"})
    assert [m["id"] for m in resumed] == ["2", "3", messages[-1]["id"]]
    assert [m["data"] for m in resumed[:2]] == record["epochs"][1:]


def test_cancel_a_queued_run_and_a_running_run(http):
    long = http.post("/v1/runs", json={**BASE, "epochs": 400, "batch_size": 16}).json()
    queued = http.post("/v1/runs", json=BASE).json()
    response = http.delete(f"/v1/runs/{queued['id']}")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    wait_for_run(http, long["id"], lambda r: len(r["epochs"]) >= 1)
    response = http.delete(f"/v1/runs/{long['id']}")
    assert response.status_code == 202 and response.json()["cancel_requested"]
    # Stopped by the cancel, not by running out of epochs: how soon depends on the machine's
    # load, so the bound is only against a hang; the epochs left untrained are the evidence.
    stopped = wait_for_run(http, long["id"], lambda r: r["status"] != "running")
    assert stopped["status"] == "cancelled" and len(stopped["epochs"]) < 400
    # a later run succeeding proves the worker has consumed the cancelled run's task too
    later = http.post("/v1/runs", json=BASE).json()
    wait_for_run(http, later["id"], lambda r: r["status"] == "succeeded")
    never = http.get(f"/v1/runs/{queued['id']}").json()
    assert never["status"] == "cancelled" and never["started_at"] is None
    statuses = [m["data"]["status"] for m in sse(http, f"/v1/runs/{queued['id']}/events")]
    assert statuses == ["queued", "cancelled"]
    assert http.delete(f"/v1/runs/{queued['id']}").status_code == 409


OVER_1_MIB = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "needle"),
    [
        ("POST", "/v1/runs", {"content": b'{"lr": ', "headers": JSON}, 422, "malformed JSON"),
        ("POST", "/v1/runs", {"json": {"epochs": [3]}}, 422, "epochs"),
        ("POST", "/v1/runs", {"json": {"lr": 0.1, "colour": "red"}}, 422, "colour: unknown field"),
        ("POST", "/v1/runs", {"json": {"lr": -0.1}}, 422, "lr"),
        ("POST", "/v1/runs", {"content": b'{"lr": NaN}', "headers": JSON}, 422, "lr"),
        ("POST", "/v1/runs", {"content": b'{"lr": Infinity}', "headers": JSON}, 422, "finite"),
        ("POST", "/v1/runs", {"json": {**BASE, "epochs": 401}}, 422, "max_epochs=400"),
        ("POST", "/v1/runs", {"json": {**BASE, "hidden": [5000]}}, 422, "max_hidden_width=4096"),
        (
            "POST",
            "/v1/sweeps",
            {"json": {"base": BASE, "grid": {"seed": list(range(17))}}},
            422,
            "max_runs_per_sweep=16",
        ),
        ("GET", "/v1/runs/0123456789abcdef", {}, 404, "0123456789abcdef"),
        ("DELETE", "/v1/sweeps/0123456789abcdef", {}, 404, "0123456789abcdef"),
        ("POST", "/v1/runs", {"content": OVER_1_MIB, "headers": JSON}, 413, "max_body_bytes"),
        (
            "POST",
            "/v1/runs",
            {"content": iter([OVER_1_MIB[:600_000], OVER_1_MIB[600_000:]]), "headers": JSON},
            413,
            "max_body_bytes",
        ),
    ],
)
def test_bad_input_gets_a_json_detail_and_writes_nothing(
    http, server_redis, sweep, method, path, kwargs, status, needle
):
    before = prefix_keys(server_redis)
    queue_length = server_redis.llen("celery")
    response = http.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert needle in response.json()["detail"] and response.json()["code"]
    assert prefix_keys(server_redis) == before
    assert server_redis.llen("celery") == queue_length


def test_cancelling_a_finished_run_is_409(http, server_redis, sweep):
    run_id = sweep["record"]["run_ids"][1]
    before = prefix_keys(server_redis)
    response = http.delete(f"/v1/runs/{run_id}")
    assert response.status_code == 409 and "succeeded" in response.json()["detail"]
    assert prefix_keys(server_redis) == before


def test_an_api_restart_loses_nothing(server, sweep):
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        runs = http.get("/v1/runs", params={"limit": 500}).json()
        sweep_view = http.get(f"/v1/sweeps/{sweep['record']['id']}").json()
    server.stop("api")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base_url}/healthz", timeout=2)
    server.start("api")
    server.wait_ready()
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.get("/v1/runs", params={"limit": 500}).json() == runs
        assert http.get(f"/v1/sweeps/{sweep['record']['id']}").json() == sweep_view
        for run in runs["data"]:
            assert http.get(f"/v1/runs/{run['id']}").json() == run
