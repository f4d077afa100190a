"""A learned sweep end to end (real uvicorn, real Celery worker): its batches follow each
other through the worker, then the client, the CLI and the PNG routes explain it."""

import json

import pytest

from mlplab.client import Client

pytestmark = pytest.mark.integration

BASE = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
SWEEP = {
    "name": "learned e2e",
    "strategy": "tpe",
    "base": BASE,
    "space": {"lr": {"loguniform": [1e-3, 0.3]}, "activation": ["relu", "tanh"]},
    "n": 6,
    "batch": 3,
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def searched(server):
    with Client(server.base_url) as client:
        sweep = client.submit_sweep(SWEEP)
        client.wait(sweep["id"], sweep=True)
        return {"submitted": sweep, "final": client.sweep(sweep["id"])}


def test_the_worker_asks_the_second_batch_and_the_search_ends(searched):
    submitted, final = searched["submitted"], searched["final"]
    assert len(submitted["run_ids"]) == 3 and submitted["search"]["batches_done"] == 0
    assert final["done"] and final["counts"] == {"succeeded": 6}
    assert final["run_ids"][:3] == submitted["run_ids"]
    assert final["search"]["batches_done"] == 2 and final["search"]["next"] is None
    assert final["best"] is not None


def test_client_importance_as_a_dict_and_a_frame(server, searched):
    pytest.importorskip("pandas")
    with Client(server.base_url) as client:
        scores = client.importance(searched["final"]["id"])
        frame = client.importance_frame(searched["final"]["id"])
    assert set(scores) == {"lr", "activation"} and abs(sum(scores.values()) - 1) < 1e-9
    assert list(frame.columns) == ["field", "importance"]
    assert frame["field"].tolist() == list(scores)


def test_the_cli_prints_the_importances(mlplab, searched):
    done = mlplab("importance", searched["final"]["id"])
    assert "lr" in done.stdout and "activation" in done.stdout
    data = json.loads(mlplab("importance", searched["final"]["id"], "--json").stdout)
    assert set(data) == {"lr", "activation"}


def test_both_plots_answer(server, searched):
    import httpx

    for path in ("importance.png", "parallel.png"):
        got = httpx.get(f"{server.base_url}/v1/sweeps/{searched['final']['id']}/{path}")
        assert got.status_code == 200 and got.content.startswith(PNG), got.text
