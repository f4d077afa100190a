"""Understanding a sweep of any strategy: each varied field's importance for its metric, and
the parallel-coordinates data (one line per finished run). Torch-free.

Importance is Optuna's PED-ANOVA (PedAnovaImportanceEvaluator): pure numpy, so it runs in the
API process (fANOVA needs scikit-learn's random forests, which the API does not install). It
asks how differently the best runs are spread over a field's range than all finished runs;
the best are the top quarter (at least 2), as Optuna's default 10% is one run in a small sweep.
The axes are the sweep's own: a learned sweep's space, a random sweep's grid of distributions;
a grid or staged sweep's lists of values (numbers as a range, on a log scale when they span
two decades or more).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import PedAnovaImportanceEvaluator

from lab import studies
from lab.configs import metric_value
from mlpcore.axes import Axis, IntRange, LogUniform, Uniform
from mlpcore.staged import stage_field
from mlpcore.status import RunStatus
from mlpcore.sweep import LEARNED, SweepSpec
from runstore import Conflict

MIN_FINISHED = 4  # below this many finished runs an importance says nothing
EVALUATOR = "ped-anova"


@dataclass(frozen=True)
class Finished:
    """A sweep's finished runs (succeeded with a finite metric) and the axes they vary."""

    sweep: dict[str, Any]
    runs: list[dict[str, Any]]
    values: list[float]  # each run's metric
    axes: dict[str, Axis]


def finished(sweep: dict[str, Any], runs: list[dict[str, Any]], *, minimum: int = 1) -> Finished:
    """The finished runs; Conflict (409) naming the count when fewer than `minimum`."""
    scored = [(r, metric_value(r, sweep["metric"], statuses=(RunStatus.succeeded,))) for r in runs]
    kept = [(r, v) for r, v in scored if v is not None]
    if len(kept) < minimum:
        raise Conflict(
            f"sweep {sweep['id']} has {len(kept)} finished run(s) (succeeded with a finite "
            f"{sweep['metric']}); this needs at least {minimum}: wait for more runs to finish"
        )
    spec = SweepSpec(**sweep["spec"])
    return Finished(sweep, [r for r, _ in kept], [v for _, v in kept], _axes(spec, runs))


def _axes(spec: SweepSpec, runs: list[dict[str, Any]]) -> dict[str, Axis]:
    """The sweep's axes (see the module docstring), in the order it names its fields."""
    if spec.strategy in LEARNED:
        return dict(spec.space)
    if spec.strategy == "random":
        return {f: a if not isinstance(a, list) else _list_axis(a) for f, a in spec.grid.items()}
    if spec.strategy == "grid":
        return {f: _list_axis(list(a)) for f, a in spec.grid.items() if isinstance(a, list)}
    values: dict[str, list[Any]] = {}
    for stage in spec.stages:
        field, stage_values = stage_field(stage)
        values.setdefault(field, []).extend(stage_values)
    for field in values:  # a field's base value is in the runs of stages before its own
        values[field] += [r["spec"][field] for r in runs if field in (r.get("spec") or {})]
    return {f: _list_axis(v) for f, v in values.items()}


def _list_axis(values: list[Any]) -> Axis:
    """A list of values as an axis: numbers as their range, anything else as categories."""
    distinct = list(dict.fromkeys(json.dumps(v, sort_keys=True) for v in values))
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) < len(values) or len(distinct) < 2:
        return [json.loads(d) for d in distinct]
    low, high = min(numbers), max(numbers)
    if all(isinstance(v, int) for v in numbers):
        return IntRange(**{"int": (int(low), int(high))})
    if low > 0 and high / low >= 100:
        return LogUniform(loguniform=(float(low), float(high)))
    return Uniform(uniform=(float(low), float(high)))


def importance(sweep: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each varied field's importance (summing to 1, most important first) over the finished
    runs; 409 below MIN_FINISHED."""
    done = finished(sweep, runs, minimum=MIN_FINISHED)
    dists = {f: studies.distribution(a) for f, a in done.axes.items()}
    trials = [  # one trial per run: repeats are evidence too
        trial
        for run in done.runs
        for trial in studies.to_trials(
            [run], done.axes, dists, metric=sweep["metric"], mode=sweep["mode"], params_of="spec"
        )
    ]
    study = studies.study_of(trials, mode=sweep["mode"])
    evaluator = PedAnovaImportanceEvaluator(target_quantile=max(0.25, 2 / len(trials)))
    with studies.quiet():
        found = evaluator.evaluate(study) if len(dists) > 1 else dict.fromkeys(dists, 1.0)
    total = sum(found.values())
    scores = {f: (found.get(f, 0.0) / total if total > 0 else 0.0) for f in dists}
    ranked = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    return {
        "sweep_id": sweep["id"],
        "metric": sweep["metric"],
        "mode": sweep["mode"],
        "evaluator": EVALUATOR,
        "finished": len(trials),
        "importance": ranked,
    }


def parallel(sweep: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Parallel coordinates: an axis per varied field (its range, or its category labels) and
    one line per finished run with its values, its metric and whether it is the best."""
    done = finished(sweep, runs, minimum=1)
    axes = [_axis_view(f, a) for f, a in done.axes.items()]
    sign = -1 if sweep["mode"] == "max" else 1
    best = min(range(len(done.runs)), key=lambda i: (sign * done.values[i], i))
    lines = [
        {
            "run_id": run["id"],
            "values": {a["field"]: _position(run["spec"].get(a["field"]), a) for a in axes},
            "config": {a["field"]: run["spec"].get(a["field"]) for a in axes},
            "metric": value,
            "best": i == best,
        }
        for i, (run, value) in enumerate(zip(done.runs, done.values, strict=True))
    ]
    return {"sweep_id": sweep["id"], "metric": sweep["metric"], "mode": sweep["mode"],
            "axes": axes, "runs": lines, "importance_needs": MIN_FINISHED}  # fmt: skip


def _axis_view(field: str, axis: Axis) -> dict[str, Any]:
    """An axis as the plots draw it: categorical with labels, or numeric with its range."""
    dist = studies.distribution(axis)
    if isinstance(dist, CategoricalDistribution):
        labels = [c if isinstance(c, str) else json.dumps(c) for c in dist.choices]
        return {"field": field, "kind": "categorical", "labels": labels, "choices": dist.choices}
    assert isinstance(dist, FloatDistribution | IntDistribution)
    return {"field": field, "kind": "numeric", "low": dist.low, "high": dist.high,
            "log": bool(dist.log)}  # fmt: skip


def _position(value: Any, axis: dict[str, Any]) -> float | None:
    """Where a value sits on its axis, 0 .. 1 (None: not on it)."""
    if axis["kind"] == "categorical":
        choices = axis["choices"]
        held = value if value in choices else json.dumps(value)
        if held not in choices:
            return None
        return choices.index(held) / max(len(choices) - 1, 1)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    low, high = axis["low"], axis["high"]
    if axis["log"]:
        value, low, high = math.log(value), math.log(low), math.log(high)
    return 0.5 if high == low else (value - low) / (high - low)
