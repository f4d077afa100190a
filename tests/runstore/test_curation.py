"""runstore/curation.py against the real Redis: a retried run is requeued exactly once, as a
new attempt, with its sweep's terminal count given back; extends refuse a changed spec."""

import threading

from runstore import curation
from runstore.records import new_run

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
EPOCH = {"train_loss": 0.5, "test_loss": 0.6, "test_accuracy": 0.5, "lr": 0.1, "seconds": 0.1}


def failed_sweep(store):
    """A sweep of two runs: one failed after an epoch, one succeeded."""
    sweep, runs = store.create_sweep(
        owner="ann", spec={"base": SPEC}, metric="final_train_loss", mode="min",
        configs=[({"lr": 0.1}, SPEC), ({"lr": 0.2}, SPEC)],
    )  # fmt: skip
    for run, status in zip(runs, ("failed", "succeeded"), strict=True):
        store.mark_running(run_id=run["id"], worker="w", device="cpu")
        store.append_epoch(run_id=run["id"], metrics={"epoch": 1, **EPOCH})
        store.finish_run(
            run_id=run["id"], status=status, error="boom" if status == "failed" else None
        )
    return sweep, [run["id"] for run in runs]


def test_a_requeued_run_is_a_new_attempt_from_epoch_zero(store):
    sweep, (failed, succeeded) = failed_sweep(store)
    assert store.get_sweep(sweep["id"])["n_terminal"] == 2
    assert curation.requeue_attempt(store, run_id=failed, fused_group=None)
    run = store.get_run(failed)
    assert run["status"] == "queued" and run["epochs"] == [] and run["last_epoch"] == 0
    assert run["error"] is None and run["started_at"] is None and run["checkpoint"] is None
    (attempt,) = run["attempts"]
    assert attempt["status"] == "failed" and attempt["error"] == "boom" and attempt["epochs"] == 1
    assert store.get_sweep(sweep["id"])["n_terminal"] == 1
    assert failed in store.client.smembers(store.keys.owner_active("ann"))
    assert not curation.requeue_attempt(store, run_id=succeeded, fused_group=None)
    assert not curation.requeue_attempt(store, run_id=failed, fused_group=None)  # queued now
    # the new attempt takes epochs from 1 again, and ends like any run
    store.mark_running(run_id=failed, worker="w", device="cpu")
    assert store.append_epoch(run_id=failed, metrics={"epoch": 1, **EPOCH})
    assert store.finish_run(run_id=failed, status="succeeded")
    assert store.get_sweep(sweep["id"])["n_terminal"] == 2


def test_racing_retries_requeue_a_run_once(store):
    _, (failed, _) = failed_sweep(store)
    outcomes = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(
                curation.requeue_attempt(store, run_id=failed, fused_group=None)
            )
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False] * 7 + [True]
    assert len(store.get_run(failed)["attempts"]) == 1


def test_append_runs_refuses_a_sweep_whose_spec_changed(store):
    sweep, _ = failed_sweep(store)
    extra = new_run(owner="ann", spec=SPEC, sweep_id=sweep["id"], varied={"lr": 0.3})
    grown = {**sweep["spec"], "n": 3}
    stale = {**sweep["spec"], "n": 9}
    assert not curation.append_runs(
        store, sweep_id=sweep["id"], runs=[extra], expected=stale, spec=grown
    )
    assert curation.append_runs(
        store, sweep_id=sweep["id"], runs=[extra], expected=sweep["spec"], spec=grown
    )
    record = store.get_sweep(sweep["id"])
    assert record["run_ids"][-1] == extra["id"] and record["n_runs"] == 3
    assert record["spec"] == grown and store.get_run(extra["id"])["status"] == "queued"
    assert curation.sweep_ids(store, owner="ann") == [sweep["id"]]
    assert curation.sweep_ids(store, owner=None) == [sweep["id"]]
