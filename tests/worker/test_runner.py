"""The task body with real training on the synthetic dataset and the real Redis."""

from mlpcore.spec import RunSpec
from mlpcore.train import train
from worker.runner import run_group

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "batch_size": 64, "device": "cpu"}


def run(store, settings, spec):
    run_id = store.create_run(owner="ann", spec=spec)["id"]
    outcome = run_group([run_id], store=store, settings=settings, worker="w@test")
    assert outcome == {"runs": {run_id: store.get_run(run_id)["status"]}}
    return store.get_run(run_id)


def test_a_run_trains_and_reports_what_mlpcore_computes(store, settings):
    record = run(store, settings, SPEC)
    assert record["status"] == "succeeded" and record["worker"] == "w@test"
    assert record["device"] == "cpu" and record["error"] is None
    direct = train(RunSpec(**SPEC))
    assert [e["train_loss"] for e in record["epochs"]] == [m.train_loss for m in direct.epochs]
    assert record["result"]["final_test_accuracy"] == direct.result["final_test_accuracy"]
    assert all(e["ts"] >= record["started_at"] for e in record["epochs"])
    statuses = [e for e in store.events(store.keys.run_events(record["id"])) if e.type == "status"]
    assert [e.id for e in statuses] == ["0-1", "0-2", "3-1"]


def test_a_cancelled_queued_run_never_starts(store, settings):
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    store.cancel_run(run_id=run_id)
    assert run_group([run_id], store=store, settings=settings, worker="w") == {
        "runs": {run_id: "cancelled"}
    }
    record = store.get_run(run_id)
    assert record["started_at"] is None and record["worker"] is None
    assert len(store.events(store.keys.run_events(run_id))) == 2  # queued, cancelled


def test_a_running_run_stops_at_the_first_poll_after_a_cancel(store, settings):
    """A cancel requested right after epoch 1 (from the checkpoint hook, so exactly then)
    stops the run at the next poll, 16 batches into epoch 2: no second epoch is recorded."""
    spec = {**SPEC, "epochs": 300, "batch_size": 16}
    run_id = store.create_run(owner="ann", spec=spec)["id"]
    every_poll = settings.model_copy(update={"cancel_poll_s": 1e-9})  # each poll reads Redis

    def cancel_after_epoch_1(path, state):
        if state["epoch"] == 1:
            assert store.cancel_run(run_id=run_id) == "requested"

    run_group([run_id], store=store, settings=every_poll, worker="w", written=cancel_after_epoch_1)

    record = store.get_run(run_id)
    assert record["status"] == "cancelled" and record["error"] == "cancelled during epoch 2"
    assert [e["epoch"] for e in record["epochs"]] == [1]
    assert record["result"]["final_train_loss"] == record["epochs"][-1]["train_loss"]


def test_a_non_finite_loss_is_diverged(store, settings):
    record = run(store, settings, {**SPEC, "optimizer": "sgd", "lr": 1e6})
    assert record["status"] == "diverged" and "non-finite" in record["error"]
    assert record["result"] is None


def test_an_exception_fails_the_run_with_its_reason(store, settings):
    record = run(store, settings, {**SPEC, "dataset": "kmnist"})  # no files, no network
    assert record["status"] == "failed" and record["error"].startswith("DatasetError")
    assert record["finished_at"] is not None


def test_an_absent_device_fails_before_starting(store, settings):
    record = run(store, settings, {**SPEC, "device": "cuda:7"})
    assert record["status"] == "failed" and "cuda:7" in record["error"]
    assert record["started_at"] is None


def test_missing_and_finished_runs_are_skipped(store, settings):
    done = run(store, settings, SPEC)
    assert run_group([done["id"], "nope"], store=store, settings=settings, worker="w") == {
        "runs": {done["id"]: "succeeded"}
    }
    assert store.get_run(done["id"])["finished_at"] == done["finished_at"]
