"""A sweep's configurations: its runs grouped by the values they vary, with the metric's mean,
sample standard deviation and n over the configuration's repeats. Pure, no I/O.

The repeats of one configuration share its `varied` (the seed shift is not in it), so runs
group by `varied`: two draws of a random sweep that happen to be the same configuration are
one configuration. A configuration's values come from its succeeded runs (tier 0); one with
none of those but early-stopped runs ranks after every tier-0 one on their last values
(tier 1, never `best`); one without either is unranked. Configurations rank best first by
mean, the earlier in the sweep first on a tie.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from mlpcore.status import RANKED
from mlpcore.stopping import badness


def metric_value(
    run: dict[str, Any], metric: str, *, statuses: Collection[str] = RANKED
) -> float | None:
    """The run's metric when its status is one of `statuses` and the value is finite, else
    None (unranked; never a stage winner)."""
    value = (run.get("result") or {}).get(metric)
    if run["status"] not in statuses or value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class Configuration:
    """One configuration of a sweep and how its runs scored."""

    varied: dict[str, Any]
    runs: list[dict[str, Any]]  # in sweep order
    values: list[float]  # the metric of the runs of its tier
    tier: int | None  # index into RANKED of the runs its values come from; None: no value
    best_run: dict[str, Any]  # the run with the best value, else its first run

    @property
    def n(self) -> int:
        """How many runs have a value."""
        return len(self.values)

    @property
    def mean(self) -> float | None:
        """The mean of the values, None without any."""
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """The sample standard deviation (ddof=1), None with fewer than two values."""
        return statistics.stdev(self.values) if self.n >= 2 else None

    @property
    def run_ids(self) -> list[str]:
        """The ids of all its runs, in sweep order."""
        return [run["id"] for run in self.runs]


def config_key(run: dict[str, Any]) -> str:
    """What the repeats of a configuration share: their varied values, as canonical JSON."""
    return json.dumps(run.get("varied") or {}, sort_keys=True, default=str)


def group_runs(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The runs cut into configurations, in order of each configuration's first run."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(config_key(run), []).append(run)
    return list(groups.values())


def configuration(runs: list[dict[str, Any]], *, metric: str, mode: str) -> Configuration:
    """A configuration from its runs (see the module docstring for its tier and values)."""
    for tier, status in enumerate(RANKED):
        values_of = ((metric_value(r, metric, statuses=(status,)), r) for r in runs)
        scored = [(v, r) for v, r in values_of if v is not None]
        if scored:
            best = min(scored, key=lambda s: badness(s[0], mode))[1]
            values = [v for v, _ in scored]
            return Configuration(runs[0].get("varied") or {}, runs, values, tier, best)
    return Configuration(runs[0].get("varied") or {}, runs, [], None, runs[0])


def configurations(runs: list[dict[str, Any]], *, metric: str, mode: str) -> list[Configuration]:
    """The runs' configurations ranked best first: tier, then mean in the mode, then sweep
    order; unranked ones last, in sweep order."""
    configs = [configuration(g, metric=metric, mode=mode) for g in group_runs(runs)]
    order = sorted(
        (
            (c.tier, badness(c.mean, mode), i, c)
            for i, c in enumerate(configs)
            if c.tier is not None
        ),
        key=lambda s: s[:3],
    )
    return [s[3] for s in order] + [c for c in configs if c.tier is None]
