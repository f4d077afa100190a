"""Early stopping on a val metric: the rule reads val_loss from the epochs (real Redis), and
with the trainer's val split a fused group stops its bad run on val_loss (real training)."""

import pytest

from mlpcore.callbacks import EpochMetrics
from worker.early_stop import EarlyStopper, with_early_stopping
from worker.runner import run_group

SPEC = {
    "dataset": "synthetic",
    "hidden": [16],
    "epochs": 6,
    "batch_size": 64,
    "device": "cpu",
    "val_fraction": 0.2,
}
GOOD = [{"activation": "relu", "lr": 0.05}, {"activation": "tanh", "lr": 0.05}]
BAD = {"activation": "relu", "lr": 1e-7}
MEDIAN = {"rule": "median", "grace_epochs": 1}


def sweep(store, varied, *, metric="best_val_loss"):
    """Queued runs of one fused sweep ranked on `metric` that stops early; their ids."""
    configs = [(v, {**SPEC, **v}) for v in varied]
    spec = {"grid": {"lr": [0.1]}, "metric": metric, "early_stopping": MEDIAN}
    _, runs = store.create_sweep(
        owner="ann", spec=spec, metric=metric, mode="min", configs=configs, groups=["g-v"] * 3
    )
    return [run["id"] for run in runs]


class Quiet:
    """A reporter that records nothing (the peers' epochs are in Redis already)."""

    def __init__(self, run_id):
        self.run_id = run_id

    def on_epoch_end(self, metrics):
        pass

    def should_stop(self):
        return False

    def on_end(self, result):
        pass


def epoch(number, val_loss):
    return EpochMetrics(
        epoch=number,
        train_loss=0.1,  # the same for all: only val_loss can tell the runs apart
        test_loss=0.1,
        test_accuracy=0.5,
        lr=0.05,
        seconds=0.01,
        val_loss=val_loss,
        val_accuracy=0.5,
    )


@pytest.mark.parametrize("metric", ["best_val_loss", "final_val_loss"])
def test_the_rule_compares_val_loss_from_the_peers_epochs(store, metric):
    ids = sweep(store, [*GOOD, BAD], metric=metric)
    for run_id, val_loss in zip(ids[:2], (0.2, 0.3), strict=True):
        store.mark_running(run_id=run_id, worker="w", device="cpu")
        for number in (1, 2):
            store.append_epoch(run_id=run_id, metrics=epoch(number, val_loss).to_dict())
    wrapped = with_early_stopping([Quiet(run_id) for run_id in ids], store=store)
    bad = wrapped[2]
    assert isinstance(bad, EarlyStopper) and bad.judge.name == "val_loss"
    reason = bad.judge.reason(store, epoch(2, 0.9))
    assert reason == (
        "median rule: val_loss 0.9 at epoch 2 is worse than the median 0.25 of the 2 other "
        "runs that reached it"
    )
    assert bad.judge.reason(store, epoch(2, 0.1)) is None
    bad.on_epoch_end(epoch(2, 0.9))
    assert bad.should_stop() and bad.reason == reason


def test_a_fused_group_stops_its_bad_run_on_val_loss(store, settings):
    ids = sweep(store, [*GOOD, BAD])
    statuses = run_group(ids, store=store, settings=settings, worker="w")["runs"]
    assert statuses == {ids[0]: "succeeded", ids[1]: "succeeded", ids[2]: "stopped_early"}
    good, _, bad = store.get_runs(ids)
    assert all(e["val_loss"] is not None for e in good["epochs"])
    assert bad["error"].startswith("median rule: val_loss") and len(bad["epochs"]) == 2
    assert good["result"]["best_val_loss"] == min(e["val_loss"] for e in good["epochs"])
