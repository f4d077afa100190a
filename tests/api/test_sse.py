"""SSE over the real Redis streams: format, end, Last-Event-ID, keep-alives, sweep streams."""

import time

from tests.support.http import parse_sse

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 3}


def epoch(k):
    return {
        "epoch": k,
        "train_loss": 1.0 / k,
        "test_loss": 1.0,
        "test_accuracy": 0.5,
        "lr": 0.001,
        "seconds": 0.01,
        "ts": time.time(),
    }


def finished_run(client, store, epochs=3):
    run_id = client.post("/v1/runs", json=SPEC).json()["id"]
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    for k in range(1, epochs + 1):
        store.append_epoch(run_id=run_id, metrics=epoch(k))
    store.finish_run(run_id=run_id, status="succeeded", result={"final_train_loss": 0.3})
    return run_id


def read_stream(client, path, **headers):
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.iter_lines())


def test_run_stream_replays_everything_and_ends_after_the_terminal_status(client, store):
    run_id = finished_run(client, store)
    messages = read_stream(client, f"/v1/runs/{run_id}/events")
    assert [(m["id"], m["event"]) for m in messages] == [
        ("0-1", "status"),
        ("0-2", "status"),
        ("1", "epoch"),
        ("2", "epoch"),
        ("3", "epoch"),
        ("3-1", "status"),
    ]
    record = client.get(f"/v1/runs/{run_id}").json()
    assert [m["data"] for m in messages if m["event"] == "epoch"] == record["epochs"]
    assert messages[-1]["data"]["status"] == "succeeded"


def test_last_event_id_resumes_after_that_epoch(client, store):
    run_id = finished_run(client, store)
    messages = read_stream(client, f"/v1/runs/{run_id}/events", **{"Last-Event-ID": "2"})
    assert [m["id"] for m in messages] == ["3", "3-1"]
    assert read_stream(client, f"/v1/runs/{run_id}/events", **{"Last-Event-ID": "3-1"}) == []
    bad = client.get(f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": "three"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_event_id"


def test_live_stream_gets_keepalives_then_events_as_they_happen(client, store):
    """Events are written only once a keep-alive has arrived: no sleep to get past one."""
    run_id = client.post("/v1/runs", json=SPEC).json()["id"]
    lines = []
    with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        for line in response.iter_lines():
            lines.append(line)
            if line == ": keep-alive" and lines.count(line) == 1:
                store.mark_running(run_id=run_id, worker="w", device="cpu")
                store.append_epoch(run_id=run_id, metrics=epoch(1))
                store.finish_run(run_id=run_id, status="cancelled")
    assert lines.count(": keep-alive") >= 1
    before_keepalive = parse_sse(lines[: lines.index(": keep-alive")])
    assert [m["data"]["status"] for m in before_keepalive] == ["queued"]
    assert [m["event"] for m in parse_sse(lines)] == ["status", "status", "epoch", "status"]


def test_sweep_stream_carries_run_ids_and_ends_when_all_runs_end(client, store):
    sweep = client.post("/v1/sweeps", json={"base": SPEC, "grid": {"lr": [0.1, 0.01]}}).json()
    first, second = sweep["run_ids"]
    store.mark_running(run_id=first, worker="w", device="cpu")
    store.append_epoch(run_id=first, metrics=epoch(1))
    store.finish_run(run_id=first, status="succeeded", result={"final_train_loss": 0.5})
    client.delete(f"/v1/runs/{second}")
    messages = read_stream(client, f"/v1/sweeps/{sweep['id']}/events")
    assert [(m["data"]["run_id"], m["event"]) for m in messages] == [
        (first, "status"),
        (second, "status"),
        (first, "status"),
        (first, "epoch"),
        (first, "status"),
        (second, "status"),
    ]
    assert messages[3]["data"]["epoch"] == 1
    resumed = read_stream(
        client, f"/v1/sweeps/{sweep['id']}/events", **{"Last-Event-ID": messages[3]["id"]}
    )
    assert [m["id"] for m in resumed] == [m["id"] for m in messages[4:]]
