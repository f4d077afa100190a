"""Checkpoint cadence: a group's state is copied each epoch but written at most every
`checkpoint_every_s` from a background thread (one write in flight, the newest state
replacing a pending one); a resume from an older file retrains the epochs after it without
recording any epoch twice. On the real Redis, in-process."""

from __future__ import annotations

import logging
import threading

import pytest

from mlpcore import checkpoint
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from tests.support.waiting import wait_for
from worker.checkpoints import GroupCheckpoint, checkpoint_path
from worker.runner import run_group
from worker.settings import WorkerSettings

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 5, "batch_size": 64, "device": "cpu"}


@pytest.fixture(scope="module")
def states() -> list[dict]:
    """Every epoch's state of a 2-model group, as train_group offers them."""
    offered: list[dict] = []
    specs = [RunSpec(**{**SPEC, "lr": lr}) for lr in (1e-3, 3e-3)]
    train_group(specs, on_checkpoint=offered.append)
    return offered


def test_a_timed_saver_writes_nothing_before_it_is_due_and_flush_writes_the_newest(
    tmp_path, states
) -> None:
    path = checkpoint_path(tmp_path, "g")
    saver = GroupCheckpoint(path, ["a", "b"], every_s=3600, background=True)
    for state in states:
        saver(state)
    assert saver.writes == 0 and not path.exists()
    saver.flush()  # a hand-back: the newest epoch is kept
    assert saver.writes == 1 and checkpoint.load(path)["epoch"] == len(states)
    saver.remove()
    assert list(tmp_path.iterdir()) == []


class Gate:
    """A `written` hook that holds the writer's thread inside its first write until opened;
    counts writes in flight at once."""

    def __init__(self) -> None:
        self.entered, self.open = threading.Event(), threading.Event()
        self.epochs: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, path, state) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.epochs.append(state["epoch"])
        self.entered.set()
        assert self.open.wait(60)
        with self.lock:
            self.in_flight -= 1


def test_one_write_in_flight_and_a_newer_state_replaces_a_pending_one(tmp_path, states):
    path = checkpoint_path(tmp_path, "g")
    gate = Gate()
    saver = GroupCheckpoint(path, ["a", "b"], every_s=0, background=True, written=gate)
    saver(states[0])
    assert gate.entered.wait(60)  # epoch 1 is being written; training went on meanwhile
    for state in states[1:]:
        saver(state)  # each replaces the last as the pending state
    gate.open.set()
    saver.flush()
    assert gate.epochs == [1, len(states)] and saver.writes == 2
    assert gate.most_in_flight == 1
    assert checkpoint.load(path)["epoch"] == len(states)
    saver.close()


def test_remove_waits_for_the_write_in_flight_and_drops_the_pending_one(tmp_path, states):
    path = checkpoint_path(tmp_path, "g")
    gate = Gate()
    saver = GroupCheckpoint(path, ["a", "b"], every_s=0, background=True, written=gate)
    saver(states[0])
    assert gate.entered.wait(60)
    saver(states[1])
    threading.Timer(0.05, gate.open.set).start()  # remove() must wait however long it takes
    saver.remove()
    assert gate.epochs == [1] and list(tmp_path.iterdir()) == []


def test_the_settings_read_the_cadence_and_the_batched_path(monkeypatch) -> None:
    assert WorkerSettings().checkpoint_every_s == 30.0
    assert WorkerSettings().batched_matmul is False
    monkeypatch.setenv("MLPLAB_CHECKPOINT_EVERY_S", "2.5")
    monkeypatch.setenv("MLPLAB_BATCHED_MATMUL", "1")
    assert WorkerSettings().checkpoint_every_s == 2.5 and WorkerSettings().batched_matmul


def test_a_timed_group_trains_batched_writes_in_the_background_and_leaves_no_file(
    store, settings, caplog
) -> None:
    settings = settings.model_copy(update={"checkpoint_every_s": 3600.0, "batched_matmul": True})
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    with caplog.at_level(logging.INFO, logger="worker.runner"):
        run_group([run_id], store=store, settings=settings, worker="w")
    record = store.get_run(run_id)
    assert record["status"] == "succeeded"
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3, 4, 5]
    assert "0 checkpoint(s) written" in caplog.text
    assert not settings.checkpoint_dir.exists() or list(settings.checkpoint_dir.iterdir()) == []


def stream_epochs(store, run_id) -> list[int]:
    events = store.events(store.keys.run_events(run_id))
    return [int(e.id.split("-")[0]) for e in events if e.type == "epoch"]


def test_a_resume_from_an_older_file_retrains_without_recording_an_epoch_twice(
    store, settings, caplog
) -> None:
    """Epochs 1-3 recorded, the last file written at epoch 1 (as a timed cadence leaves it),
    then the worker stalled and was reaped: the next attempt resumes from epoch 1, trains
    2 and 3 again (the store refuses them as recorded) and records 4 and 5, each epoch once
    and exactly as an uninterrupted run."""
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    path = checkpoint_path(settings.checkpoint_dir, run_id)
    first_file: list[bytes] = []

    def hook(written_path, state) -> None:
        if state["epoch"] == 1:
            first_file.append(written_path.read_bytes())
        if state["epoch"] == 3:  # stalled past its lease: the reaper requeues the run
            store.client.zadd(store.keys.leases(), {run_id: 0})
            assert store.leases.reap().run_ids == (run_id,)

    run_group([run_id], store=store, settings=settings, worker="w", written=hook)
    assert [e["epoch"] for e in store.get_run(run_id)["epochs"]] == [1, 2, 3]
    path.write_bytes(first_file[0])

    with caplog.at_level(logging.INFO, logger="worker.checkpoints"):
        run_group([run_id], store=store, settings=settings, worker="w")

    assert "resuming from epoch 1" in caplog.text
    wait_for(lambda: store.get_run(run_id)["status"] == "succeeded", what="the resumed run")
    record = store.get_run(run_id)
    alone = train_group([RunSpec(**SPEC)])[0]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3, 4, 5] == stream_epochs(store, run_id)
    assert [e["train_loss"] for e in record["epochs"]] == [m.train_loss for m in alone.epochs]
    assert record["result"]["final_train_loss"] == alone.epochs[-1].train_loss
    assert not path.exists()
