"""Plain warnings on a sweep's design: a varied field that cannot change a run's outcome
(StepLR's step_size or gamma when the schedule never steps, momentum with adam), so runs
differing only in it train the same model twice. Pure, from the runs' specs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Spec = dict[str, Any]


def _never_steps(spec: Spec) -> bool:
    """StepLR never fires: another scheduler, or its first step at or after the last epoch."""
    return spec.get("scheduler") != "step" or spec["step_size"] >= spec["epochs"]


# field -> (when it cannot matter, why, in words a student acts on)
INERT: dict[str, tuple[Callable[[Spec], bool], str]] = {
    "step_size": (
        _never_steps,
        "the lr never steps in those runs (scheduler is not step, or step_size >= epochs, "
        "so StepLR never fires); use step sizes below epochs",
    ),
    "gamma": (
        _never_steps,
        "gamma only matters when StepLR fires (scheduler step with step_size < epochs)",
    ),
    "momentum": (
        lambda spec: spec.get("optimizer") != "sgd",
        "momentum is used by sgd only; adam and adamw ignore it",
    ),
}


def inert_warnings(runs: list[dict[str, Any]], varied: list[str]) -> list[str]:
    """One warning per varied field whose values make no difference in some runs, with how
    many runs repeat another's configuration because of it."""
    out = []
    for field in varied:
        if field not in INERT:
            continue
        inert, why = INERT[field]
        specs = [run["spec"] for run in runs if run.get("spec") and inert(run["spec"])]
        duplicates = _duplicates(specs, field)
        if duplicates:
            values = ", ".join(str(v) for v in sorted({s[field] for s in specs}))
            out.append(
                f"{field} varies ({values}) but cannot change the outcome: {why}. "
                f"{duplicates} of the sweep's {len(runs)} runs train the same model as another "
                "(a worker trains it once for them when they share a group)"
            )
    return out


def _duplicates(specs: list[Spec], field: str) -> int:
    """Runs beyond the first of each group that differs only in `field`."""
    groups: dict[str, int] = {}
    for spec in specs:
        rest = json.dumps({k: v for k, v in spec.items() if k != field}, sort_keys=True)
        groups[rest] = groups.get(rest, 0) + 1
    return sum(n - 1 for n in groups.values())
