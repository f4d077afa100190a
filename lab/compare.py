"""Several sweeps (or runs) side by side: one leaderboard across them, each row naming its
sweep, and the best run of each sweep. Pure over records the caller read. Torch-free."""

from __future__ import annotations

from typing import Any

from lab import ranking
from mlpcore.errors import SpecError

MAX_COMPARED = 10  # sweeps (or runs: 200) one comparison holds: a leaderboard, not a report
MAX_RUNS = 200


def common_metric(sweeps: list[dict[str, Any]]) -> tuple[str, str]:
    """The metric and mode every sweep ranks by; SpecError naming each sweep's otherwise."""
    pairs = {(s["metric"], s["mode"]) for s in sweeps}
    if len(pairs) != 1:
        each = ", ".join(f"{s['id']}: {s['metric']} ({s['mode']})" for s in sweeps)
        raise SpecError(f"sweeps: these rank on different metrics, so one leaderboard would mix "
                        f"them: {each}; compare sweeps with the same metric and mode")  # fmt: skip
    return next(iter(pairs))


def compare_sweeps(
    sweeps: list[dict[str, Any]], runs_by_sweep: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """One leaderboard over every run of the sweeps, by their common metric, and each sweep's
    best run (with its value)."""
    metric, mode = common_metric(sweeps)
    runs = [run for s in sweeps for run in runs_by_sweep[s["id"]]]
    rows = with_sweeps(ranking.leaderboard(runs, metric=metric, mode=mode), runs, sweeps)
    heads = [_sweep_head(s, runs_by_sweep[s["id"]], metric, mode) for s in sweeps]
    return {"metric": metric, "mode": mode, "sweeps": heads, "data": rows, "count": len(rows)}


def compare_runs(runs: list[dict[str, Any]], *, metric: str, mode: str) -> dict[str, Any]:
    """One leaderboard over the given runs (of any sweeps, or none) by `metric`."""
    rows = with_sweeps(ranking.leaderboard(runs, metric=metric, mode=mode), runs, [])
    return {"metric": metric, "mode": mode, "sweeps": [], "data": rows, "count": len(rows)}


def with_sweeps(
    rows: list[dict[str, Any]], runs: list[dict[str, Any]], sweeps: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows, each with its run's sweep id and that sweep's name (None: not known here)."""
    sweep_of = {run["id"]: run.get("sweep_id") for run in runs}
    names = {s["id"]: s.get("name") for s in sweeps}
    for row in rows:
        row["sweep_id"] = sweep_of.get(row["run_id"])
        row["sweep_name"] = names.get(row["sweep_id"] or "")
    return rows


def _sweep_head(
    sweep: dict[str, Any], runs: list[dict[str, Any]], metric: str, mode: str
) -> dict[str, Any]:
    """A sweep's line of the comparison: its name and its best succeeded run."""
    best = ranking.best(runs, metric=metric, mode=mode)
    return {
        "id": sweep["id"],
        "name": sweep.get("name"),
        "best_run_id": best["run_id"] if best else None,
        "value": best["value"] if best else None,
        "n_runs": len(runs),
    }
