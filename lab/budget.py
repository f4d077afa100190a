"""What a submission costs against the compute budget (max_param_epochs): parameters x epochs
of each run it creates, from the spec and the dataset's widths alone (mlpcore.catalog)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from mlpcore.axes import axis_values
from mlpcore.catalog import param_epochs
from mlpcore.spec import RunSpec
from mlpcore.staged import stage_field
from mlpcore.sweep import LEARNED, SweepSpec, sweep_size

_COST_FIELDS = ("dataset", "hidden", "epochs")  # the fields a run's cost depends on


def run_cost(spec: RunSpec) -> int:
    """One run's param-epochs."""
    return param_epochs(dataset=spec.dataset, hidden=spec.hidden, epochs=spec.epochs)


def runs_cost(specs: Iterable[RunSpec]) -> int:
    """The param-epochs of these runs together."""
    return sum(run_cost(spec) for spec in specs)


def sweep_cost(sweep: SweepSpec, first: list[RunSpec]) -> int:
    """A sweep's cost: its runs (`first`, as expanded); a staged sweep's first stage plus, for
    every run its later stages (a learned one's later batches) may still create, the
    costliest run they could make."""
    cost = runs_cost(first)
    if sweep.strategy != "staged" and sweep.strategy not in LEARNED:
        return cost
    return cost + (sweep_size(sweep) - len(first)) * _costliest_staged_run(sweep)


def _costliest_staged_run(sweep: SweepSpec) -> int:
    """The most a run of the staged sweep can cost: each of its cost fields comes from the
    base or from some stage's values, so the worst combination of those bounds it."""
    base = RunSpec(**sweep.base)
    options: dict[str, list[object]] = {f: [getattr(base, f)] for f in _COST_FIELDS}
    for stage in sweep.stages:
        field, values = stage_field(stage)
        if field in options:
            options[field] += values
    for field, axis in sweep.space.items():  # a learned sweep: an int range's ends bound it
        if field in options:
            options[field] = axis_values(axis)
    combos = itertools.product(*(options[f] for f in _COST_FIELDS))
    return max(
        run_cost(RunSpec(**{**sweep.base, **dict(zip(_COST_FIELDS, combo, strict=True))}))
        for combo in combos
    )
