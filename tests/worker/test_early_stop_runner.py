"""Early stopping in the worker's runner: real fused training on synthetic data, real Redis."""

from worker.runner import run_group

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 6, "batch_size": 64, "device": "cpu"}
GOOD = [{"activation": "relu", "lr": 0.05}, {"activation": "tanh", "lr": 0.05}]
BAD = {"activation": "relu", "lr": 1e-7}


def sweep(store, varied, early_stopping):
    """Queued runs of one fused sweep with this early_stopping; their ids."""
    configs = [(v, {**SPEC, **v}) for v in varied]
    spec = {"grid": {"lr": [0.1]}, "early_stopping": early_stopping}
    _, runs = store.create_sweep(
        owner="ann",
        spec=spec,
        metric="final_train_loss",
        mode="min",
        configs=configs,
        groups=["g-es"] * len(configs),
    )
    return [run["id"] for run in runs]


def test_median_stops_the_bad_run_after_the_grace_and_its_mates_finish(store, settings):
    ids = sweep(store, [*GOOD, BAD], {"rule": "median", "grace_epochs": 1})
    statuses = run_group(ids, store=store, settings=settings, worker="w")["runs"]
    assert statuses == {ids[0]: "succeeded", ids[1]: "succeeded", ids[2]: "stopped_early"}
    good, _, bad = store.get_runs(ids)
    assert len(good["epochs"]) == 6 and len(bad["epochs"]) == 2
    assert bad["error"].startswith("median rule: train_loss") and "at epoch 2" in bad["error"]
    assert bad["result"]["final_train_loss"] == bad["epochs"][-1]["train_loss"]
    assert bad["fused_group"] == good["fused_group"] == "g-es"


def test_asha_keeps_the_best_third_at_each_rung(store, settings):
    varied = [*GOOD, BAD, {"activation": "sigmoid", "lr": 1e-6}]
    ids = sweep(store, varied, {"rule": "asha", "grace_epochs": 1, "reduction_factor": 2})
    statuses = run_group(ids, store=store, settings=settings, worker="w")["runs"]
    runs = store.get_runs(ids)
    # rungs 1, 2, 4: 2 of 4 go on at epoch 1, 1 of 2 at epoch 2
    assert sorted(len(r["epochs"]) for r in runs) == [1, 1, 2, 6]
    assert sorted(statuses.values()) == ["stopped_early"] * 3 + ["succeeded"]
    assert all("asha rule" in r["error"] for r in runs if r["status"] == "stopped_early")


def test_runs_of_a_sweep_without_early_stopping_train_to_the_end(store, settings):
    configs = [(v, {**SPEC, **v}) for v in [GOOD[0], BAD]]
    _, runs = store.create_sweep(
        owner="ann",
        spec={"grid": {"lr": [0.1]}},
        metric="m",
        mode="min",
        configs=configs,
        groups=["g"] * 2,
    )
    ids = [r["id"] for r in runs]
    assert set(run_group(ids, store=store, settings=settings, worker="w")["runs"].values()) == {
        "succeeded"
    }
