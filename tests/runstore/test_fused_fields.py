"""The fused_group and checkpoint fields of run records, against the real Redis."""

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 3}


def sweep_runs(store, groups):
    configs = [({"seed": i}, {**SPEC, "seed": i}) for i in range(len(groups))]
    _, runs = store.create_sweep(
        owner="ann",
        spec={"name": "s"},
        metric="final_train_loss",
        mode="min",
        configs=configs,
        groups=groups,
    )
    return runs


def test_groups_are_recorded_with_the_queued_runs(store):
    runs = sweep_runs(store, ["g-1", "g-1", None])
    assert [r["fused_group"] for r in runs] == ["g-1", "g-1", None]
    assert [r["fused_group"] for r in store.get_runs([r["id"] for r in runs])] == [
        "g-1",
        "g-1",
        None,
    ]
    assert all(r["checkpoint"] is None and r["status"] == "queued" for r in runs)
    assert store.create_run(owner="ann", spec=SPEC)["fused_group"] is None


def test_starting_with_a_checkpoint_key_records_the_group_it_trains_in(store):
    first, second = (r["id"] for r in sweep_runs(store, ["g-1", "g-1"]))
    assert (
        store.mark_running(
            run_id=first, worker="w", device="cpu", checkpoint="g-1.1", fused_group="g-1.1"
        )
        == "running"
    )
    assert store.mark_running(run_id=second, worker="w", device="cpu") == "running"
    one, two = store.get_runs([first, second], epochs=False)
    assert (one["fused_group"], one["checkpoint"]) == ("g-1.1", "g-1.1")
    assert (two["fused_group"], two["checkpoint"]) == ("g-1", None)  # untouched without a key
