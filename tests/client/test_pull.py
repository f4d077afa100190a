"""`mlplab pull` against the real server: a finished run's weights to a file, checked."""

import hashlib
import json

import httpx
import pytest

from tests.support.waiting import wait_for_run

pytestmark = pytest.mark.integration

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 2}


@pytest.fixture
def done_run(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        run_id = http.post("/v1/runs", json={**SPEC, "val_fraction": 0.25}).json()["id"]
        wait_for_run(http, run_id, lambda r: r["status"] == "succeeded")
        info = http.get(f"/v1/runs/{run_id}/model.json").json()
    return run_id, info


def test_pull_writes_the_weights_under_the_servers_name(mlplab, done_run, tmp_path):
    run_id, info = done_run
    done = mlplab("pull", run_id)
    path = tmp_path / f"{run_id}-final.safetensors"
    assert f"wrote {path.name}" in done.stdout
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info["files"]["final"]["sha256"]


def test_pull_best_to_a_chosen_file_as_json(mlplab, done_run, tmp_path):
    run_id, info = done_run
    done = mlplab("pull", run_id, "--which", "best", "-o", "best.st", "--json")
    assert json.loads(done.stdout) == {"path": "best.st", "bytes": info["files"]["best"]["bytes"]}
    digest = hashlib.sha256((tmp_path / "best.st").read_bytes()).hexdigest()
    assert digest == info["files"]["best"]["sha256"]


def test_pull_of_a_run_without_a_model_exits_1_with_the_reason(mlplab, server, tmp_path):
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        run_id = http.post(
            "/v1/runs", json={**SPEC, "train_subset": 1, "val_fraction": 0.5}
        ).json()["id"]
        wait_for_run(http, run_id, lambda r: r["status"] == "failed")
    done = mlplab("pull", run_id, code=1)
    assert "it failed" in done.stderr
    assert not list(tmp_path.glob("*safetensors*"))  # nothing written, not even a part
