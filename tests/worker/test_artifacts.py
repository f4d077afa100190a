"""worker/artifacts.py: a finished run's model into the artifact store, then its record
(the files written and counted before the run's end is recorded; failures lose nothing)."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load

from artifacts import DirectoryStore
from mlpcore.export import build_sequential, model_config
from mlpcore.spec import RunSpec
from mlpcore.train import RunResult
from worker import leases
from worker.reporter import finish

SPEC = RunSpec(dataset="synthetic", hidden=[8], epochs=1, device="cpu")


def weights(seed):
    """A state dict of the synthetic dataset's model (32 -> 8 -> 4)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"fc1.weight": (8, 32), "fc1.bias": (8,), "fc2.weight": (4, 8), "fc2.bias": (4,)}
    return {name: torch.randn(shape, generator=gen) for name, shape in shapes.items()}


def result(status="succeeded", best=False):
    config = model_config(SPEC, num_features=32, num_classes=4, divisor=1.0)
    return RunResult(
        spec=SPEC,
        status=status,
        result={"final_train_loss": 0.5, "runtime_s": 2.0, "best_epoch": 1},
        weights=weights(0),
        best_weights=weights(1) if best else None,
        model_config=config,
    )


@pytest.fixture
def files(tmp_path):
    return DirectoryStore(tmp_path / "artifacts")


@pytest.fixture
def running(store):
    """A run this process holds running, as the runner starts one."""
    run = store.create_run(owner="ann", spec=SPEC.model_dump(mode="json"))
    store.mark_running(run_id=run["id"], worker="w", device="cpu", holder=leases.holder())
    return run["id"]


def test_the_weights_round_trip_and_model_json_names_their_sha256(store, files, running):
    assert finish(store, running, result(best=True), files=files)
    model = store.get_run(running)["model"]
    assert model["state"] == "stored" and set(model["files"]) == {"final", "best"}
    with files.open(running, model["save"], "model.json") as handle:
        info = json.loads(handle.read())
    for which, seed in (("final", 0), ("best", 1)):
        with files.open(running, model["save"], f"{which}.safetensors") as handle:
            data = handle.read()
        assert hashlib.sha256(data).hexdigest() == info["files"][which]["sha256"]
        state = load(data)
        assert all(torch.equal(state[k], v) for k, v in weights(seed).items())
        rebuilt = build_sequential(info["config"], state)
        assert rebuilt(torch.zeros(2, 32)).shape == (2, 4)
    assert store.models.usage(owner="ann")["artifact_bytes"] == model["bytes"]


def test_without_a_val_split_there_is_no_best_file(store, files, running):
    finish(store, running, result(best=False), files=files)
    model = store.get_run(running)["model"]
    assert set(model["files"]) == {"final"}
    assert not (files.root / running / model["save"] / "best.safetensors").exists()


@pytest.mark.parametrize("status", ["cancelled", "diverged"])
def test_runs_that_did_not_succeed_store_nothing(store, files, running, status):
    finish(store, running, result(status=status), files=files)
    assert store.get_run(running)["model"] is None and not files.root.exists()


def test_a_failed_save_records_the_run_with_the_reason(store, tmp_path, running):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the artifact directory should be")
    assert finish(store, running, result(), files=DirectoryStore(blocked))
    record = store.get_run(running)
    assert record["status"] == "succeeded" and record["result"]["final_train_loss"] == 0.5
    assert record["model"]["state"] == "failed"
    assert record["model"]["reason"].startswith("the model was not saved: ")
    assert str(tmp_path) not in record["model"]["reason"]  # no server paths
    assert store.models.usage(owner="ann")["models"] == 0


def test_a_refused_end_removes_its_own_files_and_bytes(store, files, running):
    store.leases.hand_back(holder=leases.holder(), run_ids=[running], reason="test")
    assert not finish(store, running, result(), files=files)
    assert store.get_run(running)["model"] is None
    assert not (files.root / running).exists()
    assert store.models.usage(owner="ann")["models"] == 0


def test_over_the_owners_limit_the_oldest_model_is_evicted_and_its_files_go(store, files):
    ids = []
    for n in range(3):
        run = store.create_run(owner="ann", spec=SPEC.model_dump(mode="json"))
        store.mark_running(run_id=run["id"], worker="w", device="cpu", holder=leases.holder())
        finish(store, run["id"], result(), files=files)
        ids.append(run["id"])
        if n == 0:  # room for two and a half such models: the third evicts the first
            limit = int(2.5 * store.get_run(run["id"])["model"]["bytes"])
            store.models.set_limit(owner="ann", limit=limit)
    models = [store.get_run(i)["model"] for i in ids]
    assert models[0]["state"] == "evicted"
    assert models[0]["reason"] == f"evicted: over max_artifact_bytes ({limit} bytes)"
    assert not (files.root / ids[0]).exists()
    assert [m["state"] for m in models[1:]] == ["stored", "stored"]


def test_a_run_stopped_early_keeps_its_model(store, files, running):
    finish(store, running, result(status="stopped_early"), files=files)
    assert store.get_run(running)["model"]["state"] == "stored"
