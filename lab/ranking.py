"""Ranking a sweep's runs by its metric: leaderboard rows and the best run. Pure, no I/O.

Succeeded runs rank first; early-stopped runs rank after all of them, by the value of their
last epoch (it is not a final value, so never beats a finished run, and is never `best`);
runs with no value (queued, running, failed, cancelled, diverged) come last, unranked.
A staged sweep's winners are chosen by the same function, among succeeded runs only.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from mlpcore.status import RANKED, RunStatus


def metric_value(
    run: dict[str, Any], metric: str, *, statuses: Collection[str] = RANKED
) -> float | None:
    """The run's metric when its status is one of `statuses` and the value is finite, else
    None (unranked; never a stage winner)."""
    value = (run.get("result") or {}).get(metric)
    if run["status"] not in statuses or value is None or not math.isfinite(value):
        return None
    return float(value)


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


def status_counts(runs: list[dict[str, Any]]) -> dict[str, int]:
    """How many runs are in each status (only statuses present)."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    return counts
