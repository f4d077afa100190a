"""The API's side of staged sweeps and early stopping: start the stage record, show it, stop it.

The next stages are created by the worker that ends a stage's last run (worker/stages.py),
or here when a cancel of a queued run ends a stage (no worker may ever see that run).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from api.queue import TaskQueue
from api.settings import ApiSettings
from mlpcore.spec import RunSpec
from mlpcore.staged import stage_field
from mlpcore.sweep import SweepSpec, stage_bounds, varied_fields
from runstore import TERMINAL, Store, stages
from worker.stages import advance_sweeps

CANCELLED = "the sweep was cancelled; later stages were not created"


def start(
    *, sweep: SweepSpec, record: dict[str, Any], runs: list[dict[str, Any]], store: Store
) -> None:
    """Record the stages of a staged sweep whose first stage's runs were just created."""
    if sweep.strategy != "staged":
        return
    stages.start(
        store,
        sweep_id=record["id"],
        owner=record["owner"],
        run_ids=[run["id"] for run in runs],
        stages=[stage_field(stage) for stage in sweep.stages],
        bounds=stage_bounds(sweep),
    )
    record["varied"] = varied_fields(sweep)


def stage_specs(sweep: SweepSpec) -> Iterator[tuple[str, RunSpec]]:
    """("stage N (field) value V: ", base + that value) for every value of every stage."""
    if sweep.strategy != "staged":
        return
    for number, stage in enumerate(sweep.stages, start=1):
        field, values = stage_field(stage)
        for value in values:
            yield (
                f"stage {number} ({field}) value {value!r}: ",
                RunSpec(**{**sweep.base, field: value}),
            )


def view(*, sweep: dict[str, Any], store: Store, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """stages, end_reason and epochs_saved for the sweep view; `staging` while stages remain."""
    record = stages.get(store, sweep["id"])
    fields: dict[str, Any] = {
        "stages": None,
        "end_reason": None,
        "staging": False,
        "epochs_saved": epochs_saved(runs),
    }
    if record is not None:
        fields.update(
            stages=stages.public_stages(record),
            end_reason=record["reason"],
            staging=record["status"] == "running",
        )
    return fields


def epochs_saved(runs: list[dict[str, Any]]) -> int:
    """Epochs the early-stopped runs did not train: their spec's epochs minus those done."""
    return sum(
        run["spec"]["epochs"] - run.get("last_epoch", 0)
        for run in runs
        if run["status"] == "stopped_early"
    )


def cancel(*, sweep: dict[str, Any], store: Store) -> bool:
    """Create no further stage of the sweep; True if stages were still to come."""
    return stages.stop(store, sweep["id"], status="cancelled", reason=CANCELLED)


def after_cancel(
    *, run: dict[str, Any], store: Store, queue: TaskQueue, settings: ApiSettings
) -> None:
    """Move the run's staged sweep on if cancelling it ended its stage."""
    if run.get("sweep_id") and run["status"] in TERMINAL:
        advance_sweeps([run], store=store, queue=queue, max_models=settings.max_fused_models)
