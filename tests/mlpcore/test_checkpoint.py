"""Checkpoints: a resumed group equals an uninterrupted one exactly; files are atomic."""

import os

import pytest
import torch

from mlpcore import checkpoint
from mlpcore.errors import CheckpointError
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from mlpcore.train import train
from tests.support.training import StopAfter

BASE = RunSpec(
    dataset="synthetic", hidden=[16, 8], epochs=4, lr=0.01, step_size=2, gamma=0.5, device="cpu"
)


def run_collecting(specs, **kwargs):
    states: list[dict] = []
    # through bytes, as the worker stores them
    results = train_group(
        specs, on_checkpoint=lambda s: states.append(checkpoint.to_bytes(s)), **kwargs
    )
    return results, [checkpoint.from_bytes(b) for b in states]


def epochs_of(results):
    return [[m.to_dict() | {"seconds": 0} for m in r.epochs] for r in results]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_after_epoch_k_equals_the_uninterrupted_run_exactly(optimizer):
    specs = [
        BASE.model_copy(update={"optimizer": optimizer, "activation": a, "seed": s, "lr": lr})
        for a, s, lr in [("relu", 0, 0.01), ("tanh", 1, 0.003), ("gelu", 2, 0.02)]
    ]
    full, states = run_collecting(specs)
    assert [s["epoch"] for s in states] == [1, 2, 3, 4]
    resumed = train_group(specs, resume=states[1])
    assert epochs_of(resumed) == epochs_of(full)
    assert [r.status for r in resumed] == ["succeeded"] * 3


def test_a_stopped_run_stays_stopped_across_a_resume():
    specs = [BASE.model_copy(update={"seed": s}) for s in range(2)]
    full, states = run_collecting(specs, callbacks=[None, StopAfter(1)])
    assert full[1].status == "cancelled"
    resumed = train_group(specs, resume=states[2])
    assert [r.status for r in resumed] == ["succeeded", "cancelled"]
    assert resumed[1].reason == full[1].reason and resumed[1].result == full[1].result
    assert epochs_of(resumed) == epochs_of(full)


def test_single_run_resume_through_a_file(tmp_path):
    path = tmp_path / "run.ckpt"
    full = train(
        BASE, on_checkpoint=lambda s: checkpoint.save(s, path) if s["epoch"] == 3 else None
    )
    resumed = train(BASE, resume=checkpoint.load(path))
    assert epochs_of([resumed]) == epochs_of([full])
    assert resumed.result["runtime_s"] >= full.epochs[0].seconds


def test_resume_of_other_specs_is_refused():
    _, states = run_collecting([BASE.model_copy(update={"epochs": 1})])
    with pytest.raises(CheckpointError, match="different run specs"):
        train(BASE.model_copy(update={"epochs": 1, "lr": 0.5}), resume=states[0])
    with pytest.raises(CheckpointError, match="different run specs"):
        train_group([BASE.model_copy(update={"epochs": 1})] * 2, resume=states[0])
    with pytest.raises(CheckpointError, match="format"):
        train(BASE, resume={"format": 99})


def test_corrupt_bytes_are_a_checkpoint_error():
    with pytest.raises(CheckpointError):
        checkpoint.from_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="dict"):
        checkpoint.from_bytes(checkpoint.to_bytes([1, 2]))  # type: ignore[arg-type]


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "state.ckpt"
    checkpoint.save({"epoch": 1, "w": torch.ones(3)}, path)

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        checkpoint.save({"epoch": 2, "w": torch.zeros(3)}, path)
    state = checkpoint.load(path)  # the old file, whole
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["state.ckpt"]  # no temp file left behind


def test_load_of_a_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        checkpoint.load(tmp_path / "absent.ckpt")
