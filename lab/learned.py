"""Learned search (strategies tpe, gp, cmaes, qmc): Optuna's samplers asked a batch at a time.

A learned sweep is a staged sweep whose stages are field-less batches (runstore/stages.py
records them, lab/stages.py moves them on: one mechanism, each move one transaction, exactly
once). The first batch is asked at submission; when a batch's last run ends, whoever ended it
(the worker, a cancel, the repair pass) asks the next one from an Optuna study rebuilt from
all of the sweep's runs (lab/studies.py), seeded by the sweep's seed and the batch number.

Where each sampler runs: tpe, cmaes and qmc are torch-free and ask wherever the batch ended
(the API at submission, after a cancel or in its repair pass; the worker after training).
gp asks its random startup anywhere (GPSampler touches torch only once startup_trials
are told, checked by tests/lab/test_learned.py in a fresh interpreter); past it, a process
that may not import torch (the API) raises NeedsWorker and lab/stages.py hands the move to a
worker with an `advance_sweep` task.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lab import fusion, studies
from mlpcore.spec import RunSpec
from mlpcore.status import TERMINAL
from mlpcore.sweep import LEARNED, SweepSpec, expand_sweep, sweep_size
from runstore import Store, stages
from runstore.stages import StagePlan

TORCH_SAMPLERS = frozenset({"gp"})


class NeedsWorker(Exception):
    """The next batch needs a sampler that imports torch, and this process may not."""


def batch_sizes(n: int, batch: int) -> list[int]:
    """Configurations per batch: `batch` each, the last one what is left of n."""
    return [min(batch, n - start) for start in range(0, n, batch)]


def first_points(sweep: SweepSpec, *, batch: int) -> list[dict[str, Any]]:
    """The first batch's suggestions (no trials yet: every sampler samples independently,
    torch-free)."""
    return suggest(sweep, [], count=batch, number=1, mode=sweep.resolved_mode(), torch_ok=False)


def suggest(
    sweep: SweepSpec,
    runs: list[dict[str, Any]],
    *,
    count: int,
    number: int,
    mode: str,
    torch_ok: bool,
) -> list[dict[str, Any]]:
    """Batch `number`'s `count` suggestions from a study of the sweep's runs."""
    dists = {f: studies.distribution(a) for f, a in sweep.space.items()}
    trials = studies.to_trials(runs, sweep.space, dists, metric=sweep.metric, mode=mode)
    past_startup = studies.told(trials) >= studies.startup_trials(sweep.n or 0)
    if sweep.strategy in TORCH_SAMPLERS and not torch_ok and past_startup:
        raise NeedsWorker(f"batch {number} of a {sweep.strategy} sweep is asked by a worker")
    # one sequence for QMC (its points follow the trial count), a fresh stream per batch else
    seed = studies.batch_seed(sweep.seed, 1 if sweep.strategy == "qmc" else number)
    sampler = studies.make_sampler(sweep.strategy, seed, n=sweep.n or 0)
    study = studies.study_of(trials, mode=mode, sampler=sampler)
    return studies.ask(study, dists, sweep.space, count)


def space_specs(sweep: SweepSpec) -> Iterator[tuple[str, RunSpec]]:
    """("space.FIELD value V: ", base + V) for both ends of every axis (each value of a list),
    so the limits and the live workers are checked before any run."""
    from mlpcore.axes import axis_values

    for field, axis in sweep.space.items():
        for value in axis_values(axis):
            yield f"space.{field} value {value!r}: ", RunSpec(**{**sweep.base, field: value})


def start(
    *, sweep: SweepSpec, record: dict[str, Any], runs: list[dict[str, Any]], store: Store
) -> None:
    """Record the batches of a learned sweep whose first batch's runs were just created; the
    later batches' runs are promised to the owner's quota like later stages."""
    batch = len(runs) // sweep.repeats
    sizes = batch_sizes(sweep.n or 0, batch)
    stages.start(
        store,
        sweep_id=record["id"],
        owner=record["owner"],
        run_ids=[run["id"] for run in runs],
        stages=[(None, []) for _ in sizes],  # type: ignore[misc]  # field-less: a batch
        bounds=[size * sweep.repeats for size in sizes],
    )


def plan_batch(
    sweep: dict[str, Any],
    record: dict[str, Any],
    runs: list[dict[str, Any]],
    *,
    store: Store,
    max_models: int,
    torch_ok: bool,
) -> StagePlan:
    """The next batch's runs, cut into fused groups, once the current batch has ended (none
    after the last batch: the sweep is finished)."""
    spec = SweepSpec(**sweep["spec"])
    number = record["current"] + 2  # 1-based number of the batch asked now
    if number > len(record["stages"]):
        return StagePlan([])
    count = record["bounds"][number - 1] // spec.repeats
    every = store.get_runs(sweep["run_ids"], epochs=False)
    points = suggest(spec, every, count=count, number=number, mode=sweep["mode"], torch_ok=torch_ok)
    configs = expand_sweep(spec, max_runs=sweep_size(spec), points=points)
    planned = fusion.plan([c.spec for c in configs], fuse=spec.fuse, max_models=max_models)
    return StagePlan(
        [],
        configs=[(c.varied, c.spec.model_dump(mode="json")) for c in configs],
        parents=[None] * len(configs),  # type: ignore[list-item]  # batches have no parents
        groups=planned.groups,
        chunks=planned.chunks,
        repeats=[c.repeat for c in configs],
    )


def is_learned(strategy: str | None) -> bool:
    """Whether the strategy is one of Optuna's samplers."""
    return strategy in LEARNED


def view(
    *, sweep: dict[str, Any], record: dict[str, Any], runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """`search` for the sweep view: the sampler, batches done, trials by state, what is next."""
    spec = sweep.get("spec") or {}
    batches = record["stages"]
    done = sum(b["status"] == "finished" for b in batches)
    current = batches[record["current"]]
    going = [r for r in runs if r["id"] in set(current["run_ids"]) and r["status"] not in TERMINAL]
    return {
        "sampler": spec.get("strategy"),
        "n": spec.get("n"),
        "batches": len(batches),
        "batches_done": done,
        "trials": _trial_counts(runs),
        "next": _next(spec, record, going),
        "asked_in": "worker" if spec.get("strategy") in TORCH_SAMPLERS else "api or worker",
    }


def _trial_counts(runs: list[dict[str, Any]]) -> dict[str, int]:
    """Runs by the state the sampler is told: complete, pruned, failed, running."""
    names = {"succeeded": "complete", "stopped_early": "pruned"}
    counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0}
    for run in runs:
        status = str(run["status"])
        key = names.get(status, "failed" if status in TERMINAL else "running")
        counts[key] += 1
    return counts


def _next(spec: dict[str, Any], record: dict[str, Any], going: list[dict[str, Any]]) -> str | None:
    """In words: what the search does next, None once it has stopped."""
    if record["status"] != "running":
        return None
    number, total = record["current"] + 1, len(record["stages"])
    if number == total:
        return f"batch {number} of {total} (the last) is training: {len(going)} run(s) to go"
    size = record["bounds"][number] // int(spec.get("repeats") or 1)
    return (
        f"batch {number} of {total} is training ({len(going)} run(s) to go); then "
        f"{spec.get('strategy')} suggests batch {number + 1}: {size} configuration(s)"
    )
