"""The Python client against a real uvicorn and a real Celery worker."""

import pytest

from mlplab.client import BadRequest, Client, Conflict, ConnectionFailed, NotFound

pytestmark = pytest.mark.integration

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 3}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def mlp(server, monkeypatch, tmp_path):
    """A Client on the test server, with no token or config file from the environment."""
    monkeypatch.delenv("MLPLAB_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with Client(server.base_url) as client:
        yield client


@pytest.fixture(scope="module")
def finished_sweep(server):
    """A two-run sweep followed to its end with wait(sweep=True), and the epochs seen."""
    with Client(server.base_url) as client:
        sweep = client.submit_sweep(
            {"name": "e2e", "base": BASE, "grid": {"activation": ["relu", "tanh"]}}
        )
        seen = []
        final = client.wait(sweep["id"], on_epoch=seen.append, sweep=True)
        return {"sweep": sweep, "final": final, "seen": seen}


def test_submit_run_wait_and_resume_the_stream(mlp):
    run = mlp.submit_run(BASE, lr=0.01)
    assert run["status"] == "queued" and run["spec"]["lr"] == 0.01
    seen = []
    final = mlp.wait(run["id"], on_epoch=seen.append)
    assert final["status"] == "succeeded" and [e["epoch"] for e in seen] == [1, 2, 3]
    assert final["result"]["final_train_loss"] == seen[-1]["train_loss"]
    rest = list(mlp.stream(run["id"], last_event_id="2"))
    assert [(e.event, e.id) for e in rest][0] == ("epoch", "3")
    assert rest[-1].event == "status" and rest[-1].data["status"] == "succeeded"
    assert mlp.resolve(run["id"])[0] == "run"
    assert mlp.plot(run["id"]).startswith(PNG)


def test_a_sweep_is_followed_ranked_and_framed(mlp, finished_sweep):
    sweep, final, seen = finished_sweep["sweep"], finished_sweep["final"], finished_sweep["seen"]
    assert final["done"] and final["counts"] == {"succeeded": 2}
    assert len(seen) == 6 and {e["run_id"] for e in seen} == set(sweep["run_ids"])
    board = mlp.leaderboard(sweep["id"])
    best = mlp.best(sweep["id"])
    assert [row["rank"] for row in board] == [1, 2] and board[0]["run_id"] == best["run_id"]
    frame = mlp.to_dataframe(sweep["id"])
    assert list(frame["run_id"]) == [row["run_id"] for row in board]
    assert {"activation", "final_train_loss", "final_test_accuracy", "status"} <= set(frame)
    assert frame["epochs_done"].tolist() == [3, 3]
    assert mlp.resolve(sweep["id"]) == ("sweep", mlp.sweep(sweep["id"]))
    assert mlp.plot(sweep["id"], sweep=True).startswith(PNG)


def test_errors_are_typed_and_carry_the_server_detail(mlp, finished_sweep):
    with pytest.raises(NotFound, match="nope"):
        mlp.run("nope")
    with pytest.raises(NotFound, match="no run or sweep"):
        mlp.resolve("nope")
    with pytest.raises(BadRequest, match="lr") as info:
        mlp.submit_run(BASE, lr=-1)
    assert info.value.status_code == 422
    with pytest.raises(Conflict, match="nothing to cancel"):
        mlp.cancel_sweep(finished_sweep["sweep"]["id"])
    with Client("http://127.0.0.1:9") as down, pytest.raises(ConnectionFailed):
        down.runs()
