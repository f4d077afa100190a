"""Fused tasks with real training on the synthetic dataset and the real Redis: groups, the
memory split, checkpoints."""

import logging

import pytest

from mlpcore import checkpoint
from mlpcore.data import load_dataset
from mlpcore.spec import RunSpec
from mlpcore.train import train
from worker.chunks import chunk_groups, split_runs
from worker.runner import Due, run_group
from worker.settings import WorkerSettings, default_checkpoint_dir

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "batch_size": 64, "device": "cpu"}
VARIED = [
    {"activation": "relu", "lr": 0.05},
    {"activation": "tanh", "lr": 0.005},
    {"activation": "sigmoid", "lr": 0.05, "seed": 1},
]
METRICS = ("train_loss", "test_loss", "test_accuracy", "lr")


def sweep(store, varied=VARIED, group="g-test", **spec):
    """Queued runs of one sweep planned as one fused group; their ids."""
    configs = [(v, {**SPEC, **spec, **v}) for v in varied]
    _, runs = store.create_sweep(
        owner="ann",
        spec={"name": "t"},
        metric="final_train_loss",
        mode="min",
        configs=configs,
        groups=[group] * len(configs),
    )
    return [run["id"] for run in runs]


def assert_trained_as_alone(record):
    """The run's record holds exactly what training its spec alone gives (1e-4 relative)."""
    alone = train(RunSpec(**record["spec"]))
    assert record["status"] == "succeeded" and len(record["epochs"]) == len(alone.epochs)
    for got, want in zip(record["epochs"], alone.epochs, strict=True):
        for name in METRICS:
            assert got[name] == pytest.approx(getattr(want, name), rel=1e-4)
    assert record["result"]["final_test_loss"] == pytest.approx(
        alone.result["final_test_loss"], rel=1e-4
    )


def test_a_group_trains_as_one_and_each_run_as_alone(store, settings):
    ids = sweep(store)
    assert run_group(ids, store=store, settings=settings, worker="w") == {
        "runs": dict.fromkeys(ids, "succeeded")
    }
    for record in store.get_runs(ids):
        assert record["fused_group"] == record["checkpoint"] == "g-test"
        assert_trained_as_alone(record)
        statuses = [
            e for e in store.events(store.keys.run_events(record["id"])) if e.type == "status"
        ]
        assert [e.id for e in statuses] == ["0-1", "0-2", "3-1"]
    assert list(settings.checkpoint_dir.iterdir()) == []


def test_split_runs_keeps_to_the_cap_and_the_memory_budget(settings):
    specs = [RunSpec(**{**SPEC, **v}) for v in VARIED]
    data = load_dataset("synthetic")
    assert split_runs(specs, data=data, settings=settings) == [[0, 1, 2]]
    capped = settings.model_copy(update={"max_fused_models": 2})
    assert split_runs(specs, data=data, settings=capped) == [[0, 1], [2]]
    tiny = settings.model_copy(update={"memory_fraction": 1e-12})  # a few bytes: one a chunk
    assert split_runs(specs, data=data, settings=tiny) == [[0], [1], [2]]


def test_chunk_groups_name_the_group_each_chunk_trains_as():
    due = [Due(str(i), RunSpec(), "g-1") for i in range(3)]
    assert chunk_groups(due, [[0, 1, 2]]) == ["g-1"]
    assert chunk_groups(due, [[0, 1], [2]]) == ["g-1.1", None]
    assert chunk_groups(due[:1], [[0]]) == [None]
    unplanned = chunk_groups([Due(str(i), RunSpec(), None) for i in range(2)], [[0, 1]])
    assert unplanned[0] is not None and unplanned[0].startswith("g-")


def test_a_split_group_trains_chunk_after_chunk(store, settings, caplog):
    ids = sweep(store)
    capped = settings.model_copy(update={"max_fused_models": 2})
    with caplog.at_level(logging.INFO, logger="worker"):
        run_group(ids, store=store, settings=capped, worker="w")
    assert "3 models split into 2 chunks" in caplog.text
    first, second, third = store.get_runs(ids)
    assert first["fused_group"] == second["fused_group"] == "g-test.1" == first["checkpoint"]
    assert third["fused_group"] is None and third["checkpoint"] == third["id"]
    assert third["started_at"] >= max(first["finished_at"], second["finished_at"])
    for record in (first, second, third):
        assert_trained_as_alone(record)


def test_the_checkpoint_is_rewritten_every_epoch_then_removed(store, settings, caplog):
    ids = sweep(store, VARIED[:2], epochs=12, batch_size=32)
    on_disk = []

    def written(path, state):  # the hook runs before training goes on: the file is this epoch's
        assert path == settings.checkpoint_dir / "g-test.pt"
        on_disk.append(checkpoint.load(path))

    with caplog.at_level(logging.INFO, logger="worker.runner"):
        run_group(ids, store=store, settings=settings, worker="w", written=written)

    assert [state["epoch"] for state in on_disk] == list(range(1, 13))
    for state in on_disk:
        assert state["run_ids"] == ids and len(state["specs"]) == 2
        assert [len(run["epochs"]) for run in state["runs"]] == [state["epoch"]] * 2
    assert "12 checkpoint(s) written" in caplog.text
    assert list(settings.checkpoint_dir.iterdir()) == []  # no file, no temp file left


def test_a_dataset_that_does_not_load_fails_the_whole_group(store, settings):
    ids = sweep(store, VARIED[:2], dataset="kmnist")  # no files, no network
    run_group(ids, store=store, settings=settings, worker="w")
    for record in store.get_runs(ids, epochs=False):
        assert record["status"] == "failed" and record["error"].startswith("DatasetError")
        assert record["started_at"] is None


def test_the_checkpoint_dir_defaults_to_the_state_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MLPLAB_CHECKPOINT_DIR", raising=False)
    monkeypatch.delenv("MLPLAB_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_checkpoint_dir() == tmp_path / "mlplab" / "checkpoints"
    monkeypatch.setenv("MLPLAB_CHECKPOINT_DIR", str(tmp_path / "ck"))
    assert WorkerSettings().checkpoint_dir == tmp_path / "ck"
