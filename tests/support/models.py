"""Stored models the API tests write themselves: files in the artifact store and the record's
`model`, laid out as worker/artifacts.py writes them (its end-to-end tests train real ones)."""

from __future__ import annotations

import json
from typing import Any

from artifacts import CONFIG_FILE, WEIGHT_FILES, DirectoryStore

SAVE = "5a5e"
CONFUSION = [[3, 1, 0, 0], [0, 4, 0, 0], [1, 0, 2, 1], [0, 0, 0, 4]]


def finished_result() -> dict[str, Any]:
    """A result as the trainer reports it for the synthetic dataset (4 classes)."""
    return {
        "final_train_loss": 0.5,
        "final_test_accuracy": 0.8125,
        "runtime_s": 1.0,
        "best_epoch": 1,
        "confusion": CONFUSION,
        "per_class_accuracy": [0.75, 1.0, 0.5, 1.0],
        "class_names": ["class 0", "class 1", "class 2", "class 3"],
    }


def store_model(
    store, files: DirectoryStore, run_id: str, *, best: bool = False, size: int = 64
) -> dict[str, Any]:
    """Write the run's model files (`size` bytes of weights each) and count them for its
    owner; returns the `model` the run's record is finished with."""
    owner = store.get_run(run_id)["owner"]
    written = {"final": files.put(run_id, SAVE, WEIGHT_FILES["final"], b"f" * size)}
    if best:
        written["best"] = files.put(run_id, SAVE, WEIGHT_FILES["best"], b"b" * size)
    info = {
        "run_id": run_id,
        "config": {"format": 1, "widths": [32, 8, 4]},
        "files": {
            k: {"name": f.name, "bytes": f.bytes, "sha256": f.sha256} for k, f in written.items()
        },
    }
    config = files.put(run_id, SAVE, CONFIG_FILE, json.dumps(info).encode())
    total = config.bytes + sum(f.bytes for f in written.values())
    store.models.add(owner=owner, run_id=run_id, size=total, save=SAVE)
    sizes = {k: f.bytes for k, f in written.items()}
    return {"state": "stored", "save": SAVE, "files": sizes, "bytes": total}


def finish_with_model(store, files: DirectoryStore, run_id: str, *, best: bool = False) -> None:
    """Run the run to its end as a worker records it: one epoch, succeeded, model stored."""
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    epoch = {"epoch": 1, "train_loss": 0.5, "test_loss": 0.5, "test_accuracy": 0.8125}
    store.append_epoch(run_id=run_id, metrics={**epoch, "lr": 0.001, "seconds": 0.01})
    model = store_model(store, files, run_id, best=best)
    store.finish_run(run_id=run_id, status="succeeded", result=finished_result(), model=model)
