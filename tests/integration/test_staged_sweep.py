"""Staged sweeps and early stopping end to end: a real uvicorn, a real Celery worker."""

import httpx
import pytest

from tests.support.http import sse

pytestmark = pytest.mark.integration

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "batch_size": 64}
STAGED = {
    "strategy": "staged",
    "base": BASE,
    "keep_top": 2,
    "stages": [{"activation": ["relu", "tanh", "sigmoid"]}, {"lr": [0.05, 0.005]}],
}


def follow(http, body):
    """Submit a sweep and read its stream to the end; the 202 body, messages, final view."""
    response = http.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    record = response.json()
    messages = sse(http, f"/v1/sweeps/{record['id']}/events")
    return record, messages, http.get(f"/v1/sweeps/{record['id']}").json()


def loss(run):
    return run["result"]["final_train_loss"]


@pytest.fixture(scope="module")
def staged(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        record, messages, view = follow(http, STAGED)
        runs = {
            r["id"]: r
            for r in http.get("/v1/runs", params={"sweep_id": record["id"], "limit": 100}).json()[
                "data"
            ]
        }
        return {"record": record, "messages": messages, "view": view, "runs": runs}


def test_submission_answers_the_first_stage_and_the_plan(staged):
    record = staged["record"]
    assert record["varied"] == ["activation", "lr"] and not record["done"]
    assert [(s["field"], s["status"], len(s["run_ids"])) for s in record["stages"]] == [
        ("activation", "running", 3),
        ("lr", "pending", 0),
    ]
    assert record["run_ids"] == record["stages"][0]["run_ids"]


def test_each_stage_carries_its_top_two_into_the_next(staged):
    view, runs = staged["view"], staged["runs"]
    first, second = view["stages"]
    assert view["done"] and view["end_reason"] is None and view["counts"] == {"succeeded": 7}
    assert first["status"] == second["status"] == "finished"
    ranked = sorted(first["run_ids"], key=lambda r: loss(runs[r]))
    assert first["winners"] == ranked[:2]
    assert [runs[r]["varied"] for r in second["run_ids"]] == [
        {"activation": runs[w]["varied"]["activation"], "lr": lr}
        for w in first["winners"]
        for lr in (0.05, 0.005)
    ]
    assert (
        sorted(second["winners"], key=lambda r: loss(runs[r]))
        == sorted(second["run_ids"], key=lambda r: loss(runs[r]))[:2]
    )
    assert view["run_ids"] == first["run_ids"] + second["run_ids"] and len(runs) == 7


def test_the_next_stage_is_queued_once_and_fused(staged):
    second = staged["view"]["stages"][1]["run_ids"]
    runs, messages = staged["runs"], staged["messages"]
    assert len({runs[r]["fused_group"] for r in second}) == 1
    for run_id in second:
        mine = [m["data"].get("status") for m in messages if m["data"].get("run_id") == run_id]
        assert [s for s in mine if s] == ["queued", "running", "succeeded"]
    stage_events = [m["data"] for m in messages if m["event"] == "stage"]
    assert [e["current"] for e in stage_events] == [1, 1]
    assert [e["status"] for e in stage_events] == ["running", "finished"]


def test_best_and_leaderboard_span_every_stage(http, staged):
    sweep_id, runs = staged["record"]["id"], staged["runs"]
    best_id = min(runs, key=lambda r: (loss(runs[r]), staged["view"]["run_ids"].index(r)))
    assert staged["view"]["best"]["run_id"] == best_id
    assert http.get(f"/v1/sweeps/{sweep_id}/best").json()["run_id"] == best_id
    board = http.get(f"/v1/sweeps/{sweep_id}/leaderboard").json()
    assert board["count"] == 7 and board["data"][0]["run_id"] == best_id


def test_early_stopping_stops_the_bad_runs_and_their_mates_finish(http):
    body = {
        "base": {**BASE, "epochs": 8},
        "grid": {"lr": [0.05, 1e-7], "activation": ["relu", "tanh"]},
        "early_stopping": {"rule": "median", "grace_epochs": 1},
    }
    _, _, view = follow(http, body)
    runs = [http.get(f"/v1/runs/{r}").json() for r in view["run_ids"]]
    good = [r for r in runs if r["spec"]["lr"] == 0.05]
    bad = [r for r in runs if r["spec"]["lr"] == 1e-7]
    assert {(r["status"], len(r["epochs"])) for r in good} == {("succeeded", 8)}
    assert {(r["status"], len(r["epochs"])) for r in bad} == {("stopped_early", 2)}
    assert all(r["error"].startswith("median rule") for r in bad)
    assert len({r["fused_group"] for r in runs}) == 1
    assert view["done"] and view["epochs_saved"] == 12
    board = http.get(f"/v1/sweeps/{view['id']}/leaderboard").json()["data"]
    assert [row["status"] for row in board] == ["succeeded"] * 2 + ["stopped_early"] * 2
    assert view["best"]["run_id"] in {r["id"] for r in good}
