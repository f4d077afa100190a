"""What a sweep looks like to its owner: status counts, done, the best run so far, stages."""

from __future__ import annotations

from typing import Any

from lab import ranking, stages
from mlpcore.status import TERMINAL
from runstore import Store


def sweep_runs(*, sweep: dict[str, Any], store: Store) -> list[dict[str, Any]]:
    """The sweep's runs without their epochs, in sweep order."""
    return store.get_runs(sweep["run_ids"], epochs=False)


def sweep_view(
    *, sweep: dict[str, Any], store: Store, runs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The sweep record with status counts, done and the best run so far."""
    runs = runs if runs is not None else sweep_runs(sweep=sweep, store=store)
    best = ranking.best(runs, metric=sweep["metric"], mode=sweep["mode"])
    extra = stages.view(sweep=sweep, store=store, runs=runs)
    done = all(run["status"] in TERMINAL for run in runs) and not extra.pop("staging")
    return {**sweep, "counts": ranking.status_counts(runs), "done": done, "best": best, **extra}
