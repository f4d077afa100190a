"""A sweep's runs as an Optuna study, rebuilt on every call: nothing lives in a process.

Each configuration (a run with repeat 0 and the repeats after it) is one trial: COMPLETE with
the mean of its succeeded runs, PRUNED when only early-stopped runs scored (the sweep's early
stopping; their last value as the intermediate value), RUNNING while a run is unfinished,
FAIL otherwise. Parameters are the runs' values of the searched fields; a value Optuna's
categoricals cannot hold (a list such as `hidden`) is its JSON text.

Torch-free for every sampler but a GP past its random startup (startup_trials told trials):
GPSampler imports torch only to fit its Gaussian process (lab/learned.py asks those in a
worker).
"""

from __future__ import annotations

import json
import logging
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState, create_trial

from lab.configs import configuration
from mlpcore.axes import Axis, Choice, IntRange, LogUniform, Uniform
from mlpcore.status import RANKED, TERMINAL, RunStatus


def startup_trials(n: int) -> int:
    """Told trials before TPE or GP model anything (random until then): a third of the
    budget, at most Optuna's default 10, so a small batched search is not all random."""
    return max(2, min(10, n // 3))


_PRIMITIVE = (str, int, float, bool, type(None))


@contextmanager
def quiet() -> Iterator[None]:
    """Optuna without its INFO lines and experimental-feature warnings (QMC, constant_liar)."""
    optuna.logging.set_verbosity(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's log1p(-1) in TPE's tails
        yield


def distribution(axis: Axis) -> BaseDistribution:
    """The Optuna distribution of one axis of a space (or of a random sweep's grid)."""
    if isinstance(axis, list | Choice):
        values = axis if isinstance(axis, list) else axis.choice
        return CategoricalDistribution(_encoded_choices(values))
    if isinstance(axis, IntRange):
        return IntDistribution(*axis.bounds)
    if isinstance(axis, LogUniform):
        return FloatDistribution(*axis.loguniform, log=True)
    assert isinstance(axis, Uniform)
    return FloatDistribution(float(axis.uniform[0]), float(axis.uniform[1]))


def _encoded_choices(values: list[Any]) -> list[Any]:
    """The choices as Optuna holds them: as they are if all are scalars, else JSON texts."""
    if all(isinstance(v, _PRIMITIVE) for v in values):
        return list(dict.fromkeys(values))
    return list(dict.fromkeys(json.dumps(v) for v in values))


def _as_json(axis: Axis) -> bool:
    """Whether a categorical axis's choices are held as JSON texts (one is not a scalar)."""
    values = axis if isinstance(axis, list) else getattr(axis, "choice", [])
    return not all(isinstance(v, _PRIMITIVE) for v in values)


def encode(value: Any, axis: Axis, dist: BaseDistribution) -> Any:
    """A run's value as the distribution's parameter (None if it holds no such value)."""
    if isinstance(dist, CategoricalDistribution):
        param = json.dumps(value) if _as_json(axis) else value
        return param if param in dist.choices else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if dist._contains(dist.to_internal_repr(value)) else None


def decode(param: Any, axis: Axis) -> Any:
    """A suggested parameter as the run spec's value."""
    return json.loads(param) if isinstance(axis, list | Choice) and _as_json(axis) else param


def trial_groups(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The runs cut into configurations: a new one at each repeat 0 (runs are created
    configuration by configuration), so two equal suggestions stay two trials."""
    groups: list[list[dict[str, Any]]] = []
    for run in runs:
        if not groups or not int(run.get("repeat") or 0):
            groups.append([])
        groups[-1].append(run)
    return groups


def to_trials(
    runs: list[dict[str, Any]],
    axes: dict[str, Axis],
    dists: dict[str, BaseDistribution],
    *,
    metric: str,
    mode: str,
    params_of: str = "varied",
) -> list[FrozenTrial]:
    """The runs' trials (see the module docstring); a configuration whose values the
    distributions do not hold is left out. `params_of`: take values from `varied` or `spec`."""
    trials = []
    for group in trial_groups(runs):
        values = group[0].get(params_of) or {}
        params = {f: encode(values.get(f), axes[f], d) for f, d in dists.items()}
        if any(p is None for p in params.values()):
            continue
        trials.append(_trial(group, params, dists, metric=metric, mode=mode))
    return trials


def _trial(
    group: list[dict[str, Any]],
    params: dict[str, Any],
    dists: dict[str, BaseDistribution],
    *,
    metric: str,
    mode: str,
) -> FrozenTrial:
    """One configuration's trial: its state and value."""
    config = configuration(group, metric=metric, mode=mode)
    if any(run["status"] not in TERMINAL for run in group):
        return create_trial(state=TrialState.RUNNING, params=params, distributions=dists)
    if config.tier == RANKED.index(RunStatus.succeeded):
        return create_trial(value=config.mean, params=params, distributions=dists)
    if config.tier is not None and config.mean is not None:  # early-stopped only: pruned
        step = max(int(r.get("last_epoch") or 0) for r in group)
        return create_trial(
            state=TrialState.PRUNED,
            params=params,
            distributions=dists,
            intermediate_values={step: config.mean},
        )
    return create_trial(state=TrialState.FAIL, params=params, distributions=dists)


def study_of(trials: list[FrozenTrial], *, mode: str, sampler: Any = None) -> optuna.Study:
    """An in-memory study holding the trials."""
    direction: Literal["minimize", "maximize"] = "maximize" if mode == "max" else "minimize"
    with quiet():
        study = optuna.create_study(direction=direction, sampler=sampler)
        study.add_trials(trials)
    return study


def batch_seed(seed: int, batch: int) -> int:
    """The sampler's seed for one batch: fixed by the sweep's seed and the batch number, so
    the same finished runs ask the same suggestions, and batches do not repeat each other."""
    return random.Random(f"mlplab:{seed}:{batch}").randrange(2**32)


def make_sampler(strategy: str, seed: int, *, n: int) -> optuna.samplers.BaseSampler:
    """Optuna's sampler for a learned strategy; TPE lies constant for running trials, so the
    suggestions of one batch spread out instead of piling onto one point."""
    with quiet():
        if strategy == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, constant_liar=True, n_startup_trials=startup_trials(n)
            )
        if strategy == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(n))
        if strategy == "cmaes":
            # categorical axes are sampled at random, as CMA-ES has no categoricals (said once
            # in the docs, not on every ask)
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if strategy == "qmc":
            return optuna.samplers.QMCSampler(seed=seed)
    raise ValueError(f"not a learned strategy: {strategy}")


def ask(
    study: optuna.Study, dists: dict[str, BaseDistribution], axes: dict[str, Axis], count: int
) -> list[dict[str, Any]]:
    """`count` suggestions asked one after another (each left running, so the next sees it)."""
    points = []
    with quiet():
        for _ in range(count):
            trial = study.ask(dists)
            points.append({f: decode(trial.params[f], axes[f]) for f in dists})
    return points


def told(trials: list[FrozenTrial]) -> int:
    """How many trials are complete (what a GP needs before it models anything)."""
    return sum(t.state == TrialState.COMPLETE for t in trials)
