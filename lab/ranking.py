"""Ranking a sweep's runs by its metric: leaderboard rows and the best run. Pure, no I/O.

Succeeded runs rank first; early-stopped runs rank after all of them, by the value of their
last epoch (it is not a final value, so never beats a finished run, and is never `best`);
runs with no value (queued, running, failed, cancelled, diverged) come last, unranked.
A staged sweep's winners are chosen by the same function, among succeeded runs only.

A sweep with repeats > 1 ranks configurations instead (lab/configs.py): one row per
configuration with the mean, std and n of its runs, and `best` is the best configuration.
"""

from __future__ import annotations

from typing import Any, Literal

from lab.configs import Configuration, configurations, metric_value
from mlpcore.status import RANKED, RunStatus

__all__ = ["metric_value"]  # the one metric function, defined with the configurations
By = Literal["run", "config"]


def grouped(sweep: dict[str, Any]) -> bool:
    """Whether the sweep ranks configurations: it runs each one several times."""
    return int((sweep.get("spec") or {}).get("repeats") or 1) > 1


def sweep_leaderboard(
    sweep: dict[str, Any], runs: list[dict[str, Any]], *, by: By | None = None
) -> list[dict[str, Any]]:
    """The sweep's leaderboard, by run or by configuration (default: by configuration when
    the sweep has repeats)."""
    metric, mode = sweep["metric"], sweep["mode"]
    if (by or ("config" if grouped(sweep) else "run")) == "config":
        return config_leaderboard(runs, metric=metric, mode=mode)
    return leaderboard(runs, metric=metric, mode=mode)


def sweep_best(sweep: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The sweep's `best`: its best run, or with repeats its best configuration."""
    if grouped(sweep):
        return config_best(runs, metric=sweep["metric"], mode=sweep["mode"])
    return best(runs, metric=sweep["metric"], mode=sweep["mode"])


def leaderboard(runs: list[dict[str, Any]], *, metric: str, mode: str) -> list[dict[str, Any]]:
    """Rows best first; runs without a value keep sweep order after them."""
    scored = [(metric_value(run, metric), i, run) for i, run in enumerate(runs)]
    sign = 1.0 if mode == "min" else -1.0
    ranked = sorted(
        ((value, i, run) for value, i, run in scored if value is not None),
        key=lambda s: (RANKED.index(s[2]["status"]), sign * s[0], s[1]),
    )
    rest = [s for s in scored if s[0] is None]
    return [
        {
            "rank": rank + 1 if value is not None else None,
            "run_id": run["id"],
            "status": run["status"],
            "value": value,
            "varied": run.get("varied") or {},
        }
        for rank, (value, _, run) in enumerate([*ranked, *rest])
    ]


def best(runs: list[dict[str, Any]], *, metric: str, mode: str) -> dict[str, Any] | None:
    """The best succeeded run as the `best` answer, or None while none has finished."""
    rows = leaderboard(runs, metric=metric, mode=mode)
    if not rows or rows[0]["value"] is None or rows[0]["status"] != RunStatus.succeeded:
        return None
    run = next(r for r in runs if r["id"] == rows[0]["run_id"])
    return {
        "run_id": run["id"],
        "metric": metric,
        "mode": mode,
        "value": rows[0]["value"],
        "config": {"varied": run.get("varied") or {}, "spec": run["spec"]},
    }


def config_leaderboard(
    runs: list[dict[str, Any]], *, metric: str, mode: str
) -> list[dict[str, Any]]:
    """One row per configuration, best first by mean: a run row's fields (run_id: its best
    run, value: the mean) plus mean, std, n and run_ids."""
    return [
        _config_row(c, rank + 1 if c.tier is not None else None)
        for rank, c in enumerate(configurations(runs, metric=metric, mode=mode))
    ]


def _config_row(config: Configuration, rank: int | None) -> dict[str, Any]:
    return {
        "rank": rank,
        "run_id": config.best_run["id"],
        "status": config.best_run["status"],
        "value": config.mean,
        "varied": config.varied,
        "mean": config.mean,
        "std": config.std,
        "n": config.n,
        "run_ids": config.run_ids,
    }


def config_best(runs: list[dict[str, Any]], *, metric: str, mode: str) -> dict[str, Any] | None:
    """The best configuration with succeeded runs as the `best` answer (run_id: its best run,
    value: its mean, runs: all its run ids), or None while none has."""
    ranked = configurations(runs, metric=metric, mode=mode)
    if not ranked or ranked[0].tier != RANKED.index(RunStatus.succeeded):
        return None
    top = ranked[0]
    return {
        "run_id": top.best_run["id"],
        "metric": metric,
        "mode": mode,
        "value": top.mean,
        "config": {"varied": top.varied, "spec": top.best_run["spec"]},
        "runs": top.run_ids,
        "mean": top.mean,
        "std": top.std,
        "n": top.n,
    }


def status_counts(runs: list[dict[str, Any]]) -> dict[str, int]:
    """How many runs are in each status (only statuses present)."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    return counts
