"""Workers say what they can serve, and the API refuses what none can: a real Celery worker
whose data dir holds no IDX files (so no fashion-mnist) and no GPU, and a real uvicorn."""

from __future__ import annotations

import pytest

from mlpcore.catalog import IDX_FILES, IDX_FOLDERS
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 2}


def advertised(http) -> list[dict]:
    """The live workers as /healthz shows them, once they say what they serve."""
    workers = http.get("/healthz").json()["workers"]
    return workers if workers and all("datasets" in w for w in workers) else []


def test_the_worker_advertises_its_datasets_and_devices(http):
    (worker,) = wait_for(lambda: advertised(http), what="the worker to advertise its datasets")
    assert worker["datasets"] == ["mnist-5k", "digits", "synthetic"]
    assert worker["devices"][0] == "cpu"


def test_a_run_of_a_dataset_no_worker_has_is_refused_naming_it(http):
    wait_for(lambda: advertised(http), what="the worker to advertise its datasets")
    response = http.post("/v1/runs", json={"hidden": [16], "epochs": 2})  # fashion-mnist
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "no live worker has dataset fashion-mnist; workers have: mnist-5k, digits, synthetic"
    )
    sweep = {"base": SPEC, "grid": {"dataset": ["synthetic", "kmnist"]}}
    refused = http.post("/v1/sweeps", json=sweep)
    assert refused.status_code == 422 and "dataset kmnist" in refused.json()["detail"]
    run = http.post("/v1/runs", json=SPEC)
    assert run.status_code == 202


def test_a_device_no_worker_has_is_refused_naming_it(http):
    (worker,) = wait_for(lambda: advertised(http), what="the worker to advertise its datasets")
    device = f"cuda:{len(worker['devices'])}"  # one past the GPUs it has (none here)
    response = http.post("/v1/runs", json={**SPEC, "device": device})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"no live worker has device {device}")


def test_files_put_in_the_data_dir_are_advertised_from_the_next_beat(server, http):
    raw = server.log_dir / "data" / IDX_FOLDERS["mnist"] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    try:
        for name in IDX_FILES:
            (raw / name).write_bytes(b"")
        wait_for(
            lambda: any("mnist" in w["datasets"] for w in advertised(http)),
            what="the worker to advertise mnist",
        )
    finally:
        for name in IDX_FILES:
            (raw / name).unlink()
    wait_for(
        lambda: not any("mnist" in w["datasets"] for w in advertised(http)),
        what="the worker to stop advertising mnist",
    )
