"""What a sweep looks like to its owner: status counts, done, the best run (or configuration)
so far, plain warnings about its metric, the verdict on its winner, stages."""

from __future__ import annotations

from typing import Any

from lab import ranking, stages
from lab.configs import configurations
from lab.sweep_warnings import inert_warnings
from lab.verdict import verdict
from mlpcore.status import TERMINAL
from mlpcore.sweep import metric_warnings
from runstore import Store


def sweep_runs(*, sweep: dict[str, Any], store: Store) -> list[dict[str, Any]]:
    """The sweep's runs without their epochs, in sweep order."""
    return store.get_runs(sweep["run_ids"], epochs=False)


def sweep_view(
    *, sweep: dict[str, Any], store: Store, runs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The sweep record with status counts, done, the best so far, warnings and verdict."""
    runs = runs if runs is not None else sweep_runs(sweep=sweep, store=store)
    extra = stages.view(sweep=sweep, store=store, runs=runs)
    done = all(run["status"] in TERMINAL for run in runs) and not extra.pop("staging")
    warnings = metric_warnings(sweep["metric"]) + inert_warnings(runs, sweep.get("varied") or [])
    return {
        **sweep,
        "counts": ranking.status_counts(runs),
        "done": done,
        "best": ranking.sweep_best(sweep, runs),
        "repeats": int((sweep.get("spec") or {}).get("repeats") or 1),
        "warnings": warnings,
        "verdict": sweep_verdict(sweep, runs),
        **extra,
    }


def best_view(*, sweep: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The `best` answer with the sweep's warnings and verdict, or None while none finished."""
    best = ranking.sweep_best(sweep, runs)
    if best is None:
        return None
    warnings = metric_warnings(sweep["metric"])
    return {**best, "warnings": warnings, "verdict": sweep_verdict(sweep, runs)}


def sweep_verdict(sweep: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Whether the best configuration of these runs beats the runner-up beyond seed noise."""
    configs = configurations(runs, metric=sweep["metric"], mode=sweep["mode"])
    return verdict(configs, metric=sweep["metric"])
