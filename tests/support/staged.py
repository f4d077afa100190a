"""Staged sweeps the tests write into the store themselves, as the API and workers write them."""

from __future__ import annotations

from typing import Any

from mlpcore.staged import stage_sizes

SPEC: dict[str, Any] = {
    "strategy": "staged",
    "base": {"dataset": "synthetic", "epochs": 2},
    "stages": [{"activation": ["relu", "tanh", "sigmoid"]}, {"lr": [0.1, 0.01]}],
    "keep_top": 2,
}


def new_staged_sweep(store, spec=SPEC, owner="u"):
    """A staged sweep with its first stage's runs recorded (not queued), as the API records
    it; the sweep record and the first stage's run ids."""
    from runstore import stages

    field, values = next(iter(spec["stages"][0].items()))
    configs = [({field: v}, {**spec["base"], field: v}) for v in values]
    fields = [next(iter(s.items())) for s in spec["stages"]]
    record, runs = store.create_sweep(
        owner=owner,
        spec=spec,
        metric="final_train_loss",
        mode="min",
        configs=configs,
        varied=list(dict.fromkeys(f for f, _ in fields)),
    )
    stages.start(
        store,
        sweep_id=record["id"],
        owner=owner,
        run_ids=[r["id"] for r in runs],
        stages=fields,
        bounds=stage_sizes([len(v) for _, v in fields], keep_top=spec["keep_top"]),
    )
    return record, [r["id"] for r in runs]


def finish(store, run_ids, losses):
    """End the runs as a worker records them: succeeded with the loss, or failed for None."""
    for run_id, loss in zip(run_ids, losses, strict=True):
        if loss is None:
            store.finish_run(run_id=run_id, status="failed", error="boom")
        else:
            store.finish_run(run_id=run_id, status="succeeded", result={"final_train_loss": loss})


def promised(store, owner="u"):
    """The owner's quota promise to the later stages of their running staged sweeps."""
    return int(store.client.get(store.keys.owner_promised(owner)) or 0)
