"""Continued runs in the worker (real training on the synthetic dataset, the real Redis): a
succeeded run stores its final state, a continuation trains on from it, and a state that
cannot be read costs only time: the run trains from epoch 1 to the same numbers, said in its
events."""

import json

from artifacts import DirectoryStore
from runstore import curation
from worker.runner import run_group

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "batch_size": 64, "device": "cpu"}
NUMBERS = ("epoch", "train_loss", "test_loss", "test_accuracy", "lr")


def ended_runs(store, settings, epochs):
    """Two runs of one sweep trained to `epochs` in one group; their records."""
    configs = [({"lr": lr}, {**SPEC, "epochs": epochs, "lr": lr}) for lr in (0.05, 0.005)]
    _, runs = store.create_sweep(owner="ann", spec={"name": "t"}, metric="final_train_loss",
                                 mode="min", configs=configs, groups=["g"] * 2)  # fmt: skip
    ids = [run["id"] for run in runs]
    run_group(ids, store=store, settings=settings, worker="w")
    return store.get_runs(ids)


def continue_to(store, runs, epochs):
    for run in runs:
        spec = {**run["spec"], "epochs": epochs}
        assert curation.requeue_continuation(
            store, run_id=run["id"], spec=spec, model=run["model"], fused_group="g2"
        )


def numbers(run):
    return [{k: e[k] for k in NUMBERS} for e in run["epochs"]]


def test_a_continued_group_trains_on_from_its_states(store, settings, caplog):
    short = ended_runs(store, settings, 2)
    whole = ended_runs(store, settings, 4)
    assert all(r["model"]["resume_epoch"] == 2 for r in short)
    continue_to(store, short, 4)
    with caplog.at_level("INFO", logger="worker"):
        run_group([r["id"] for r in short], store=store, settings=settings, worker="w")
    assert "continuing from epoch 2 of their stored states" in caplog.text
    for got, want in zip(store.get_runs([r["id"] for r in short]), whole, strict=True):
        assert got["status"] == "succeeded" and numbers(got) == numbers(want)
        assert got["model"]["resume_epoch"] == 4 and got["fused_group"] == "g2"


def test_an_unreadable_state_trains_the_run_again_from_epoch_1(store, settings):
    short = ended_runs(store, settings, 2)
    whole = ended_runs(store, settings, 3)
    DirectoryStore(settings.artifact_dir).remove(short[0]["id"])  # its files are gone
    continue_to(store, short, 3)
    run_group([r["id"] for r in short], store=store, settings=settings, worker="w")
    for got, want in zip(store.get_runs([r["id"] for r in short]), whole, strict=True):
        assert got["status"] == "succeeded" and numbers(got) == numbers(want)
        statuses = [json.loads(e.data) for e in store.events(store.keys.run_events(got["id"]))
                    if e.type == "status"]  # fmt: skip
        notes = [s["reason"] for s in statuses if s.get("restart")]
        assert len(notes) == 1 and "training again from epoch 1" in notes[0]
        assert f"run {short[0]['id']}'s stored state" in notes[0]
