"""The task body's recovery paths, in-process on the real Redis: group files (atomic, bounded,
removed at the end), resuming one, and giving up on a run that keeps killing its worker."""

from __future__ import annotations

import pytest

from mlpcore.fused import Callback, EpochMetrics, train_group
from mlpcore.spec import RunSpec
from worker.checkpoints import GroupCheckpoint, checkpoint_path
from worker.runner import run_group

SPEC = {"dataset": "synthetic", "hidden": [64, 32], "epochs": 4, "batch_size": 64, "device": "cpu"}


def n_params(widths: list[int]) -> int:
    return sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))


class FileSizes(Callback):
    """Records the group file's size at each epoch end (the previous epoch's state)."""

    def __init__(self, path) -> None:
        self.path, self.sizes = path, []

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        if self.path.exists():
            self.sizes.append(self.path.stat().st_size)


@pytest.mark.parametrize("models", [1, 3])
def test_a_group_file_is_bounded_per_run_and_left_no_temp_files(tmp_path, models: int) -> None:
    specs = [RunSpec(**{**SPEC, "lr": 1e-3 * (k + 1)}) for k in range(models)]
    path = checkpoint_path(tmp_path, "g-1")
    saver, sizes = GroupCheckpoint(path, [f"r{k}" for k in range(models)]), FileSizes(path)
    train_group(specs, callbacks=[sizes] + [None] * (models - 1), on_checkpoint=saver)

    # weights + Adam's two moments, float32, plus a little for specs and per-epoch history
    bound = models * (3 * 4 * n_params([32, 64, 32, 4]) + 16_384)
    assert sizes.sizes and max(sizes.sizes) <= bound
    assert saver.writes == SPEC["epochs"]
    assert [p.name for p in tmp_path.iterdir()] == ["g-1.pt"]  # atomic: no temp file left
    saver.remove()
    assert not path.exists()


def test_a_run_resumes_from_its_group_file_and_removes_it(store, settings) -> None:
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    # an earlier attempt got through 2 epochs and wrote them, then its worker died
    partial = RunSpec(**{**SPEC, "device": "cpu"})
    path = checkpoint_path(settings.checkpoint_dir, run_id)
    states = []
    train_group([partial], on_checkpoint=states.append)
    GroupCheckpoint(path, [run_id])(states[1])

    run_group([run_id], store=store, settings=settings, worker="w@test")

    record = store.get_run(run_id)
    reference = train_group([partial])[0]
    assert record["status"] == "succeeded"
    # only epochs 3 and 4 were trained here (the earlier attempt recorded 1 and 2 itself),
    # each exactly as in an uninterrupted run
    assert [e["epoch"] for e in record["epochs"]] == [3, 4]
    assert [e["train_loss"] for e in record["epochs"]] == [
        m.train_loss for m in reference.epochs[2:]
    ]
    assert not path.exists()


def test_a_group_resumes_without_a_mate_that_ended_meanwhile(store, settings) -> None:
    specs = [{**SPEC, "lr": 1e-3}, {**SPEC, "lr": 3e-3}]
    kept, gone = (store.create_run(owner="ann", spec=s)["id"] for s in specs)
    full = [RunSpec(**s) for s in specs]
    path = checkpoint_path(settings.checkpoint_dir, "g-1")
    states = []
    train_group(full, on_checkpoint=states.append)
    GroupCheckpoint(path, [kept, gone])(states[1])  # 2 epochs of both, then the worker died
    store.client.hset(store.keys.run(kept), mapping={"fused_group": "g-1", "checkpoint": "g-1"})
    store.cancel_run(run_id=gone)  # while the group waited in the queue

    run_group([kept], store=store, settings=settings, worker="w@test")

    record = store.get_run(kept)
    reference = train_group(full)[0]
    assert record["status"] == "succeeded" and record["fused_group"] is None
    assert [e["epoch"] for e in record["epochs"]] == [3, 4]
    assert [e["train_loss"] for e in record["epochs"]] == [
        m.train_loss for m in reference.epochs[2:]
    ]
    assert store.get_run(gone)["epochs"] == [] and not path.exists()


def test_a_run_whose_worker_keeps_vanishing_fails_with_the_reason(store, settings) -> None:
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    store.client.hset(store.keys.run(run_id), "reaped", settings.max_reaped)

    run_group([run_id], store=store, settings=settings, worker="w@test")

    record = store.get_run(run_id)
    assert record["status"] == "failed" and record["epochs"] == []
    assert "vanished 3 times" in record["error"]
