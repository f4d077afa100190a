"""How a sweep would train, before it is submitted: its fused groups, its cost in model-epochs
and parameter-samples, and how long the live workers would take at the speed they measured
on the groups they trained (worker/speed.py; None until one has trained a group)."""

from __future__ import annotations

from typing import Any

from lab.fusion import Plan
from mlpcore.catalog import parameter_count, train_samples
from mlpcore.schedule import trained_epochs
from mlpcore.spec import RunSpec
from mlpcore.sweep import SweepConfig, SweepSpec, sweep_size

GROUP_FIELDS = ("dataset", "hidden", "batch_size", "optimizer", "val_fraction")


def describe(
    sweep: SweepSpec, configs: list[SweepConfig], plan: Plan, workers: list[dict[str, Any]]
) -> dict[str, Any]:
    """The dry run's answer: groups, costs and the time estimate."""
    specs = [c.spec for c in configs]
    # per run, the epochs its group trains for it: runs that differ only in their lr schedule
    # train the epochs where their lrs agree once (mlpcore.schedule)
    trained = [0] * len(specs)
    for chunk in plan.chunks:
        for i, epochs in zip(chunk, trained_epochs([specs[i] for i in chunk]), strict=True):
            trained[i] = epochs
    cost = sum(_cost(spec, epochs) for spec, epochs in zip(specs, trained, strict=True))
    answer: dict[str, Any] = {
        "dry_run": True,
        "runs": len(specs),
        "runs_at_most": sweep_size(sweep),
        "groups": [_group(chunk, configs) for chunk in plan.chunks],
        "model_epochs": sum(spec.epochs for spec in specs),
        "trained_model_epochs": sum(trained),
        "param_samples": cost,
    }
    if sweep.strategy == "staged":
        answer["note"] = "a staged sweep's first stage; later stages are planned as it goes"
    return {**answer, **_estimate(cost, len(plan.chunks), workers)}


def _cost(spec: RunSpec, epochs: int) -> int:
    """Parameters times samples times epochs: the unit the workers measure speed in."""
    samples = train_samples(
        dataset=spec.dataset, train_subset=spec.train_subset, val_fraction=spec.val_fraction
    )
    return parameter_count(dataset=spec.dataset, hidden=spec.hidden) * samples * epochs


def _group(chunk: list[int], configs: list[SweepConfig]) -> dict[str, Any]:
    first = configs[chunk[0]].spec.model_dump(mode="json")
    return {
        "runs": len(chunk),
        "fused": len(chunk) > 1,
        "shape": {field: first[field] for field in GROUP_FIELDS},
        "configurations": [configs[i].varied for i in chunk],
    }


def _estimate(cost: int, groups: int, workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds on the fastest measured worker, and with every measured worker in parallel
    (groups spread over workers; no faster than one group per worker)."""
    speeds = sorted(
        (max((info.get("speed") or {}).values(), default=0.0) for info in workers), reverse=True
    )
    speeds = [s for s in speeds if s > 0]
    if not speeds:
        reason = "no live worker has measured its speed yet (it does on each group it trains)"
        return {"estimate_s": None, "estimate_reason": reason}
    parallel = speeds[: max(1, groups)]
    return {
        "estimate_s": seconds(cost / speeds[0]),
        "estimate_parallel_s": seconds(cost / sum(parallel)),
        "workers_measured": len(speeds),
        "speed": speeds[0],
    }


def seconds(value: float) -> float:
    """Three significant digits: a tiny sweep's estimate stays above 0."""
    return float(f"{value:.3g}")
