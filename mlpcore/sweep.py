"""Sweeps: a base spec plus a search (grid, random or staged), expanded into validated run specs.

Torch-free, like spec.py: the API expands and validates a whole sweep before queuing anything.
A staged sweep expands to its first stage; later stages are planned (mlpcore.staged) when the
stage before them has ended. With `repeats` k each configuration runs k times, with seeds
seed .. seed+k-1 (its own seed, base or varied); a run keeps its configuration's `varied`
and its `repeat` index, and the seed is no part of the fusion key, so repeats train fused.
"""

from __future__ import annotations

import itertools
import math
import random
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlpcore.axes import Axis, Choice, IntRange, axis_values, sample
from mlpcore.errors import SpecError
from mlpcore.spec import RUN_FIELDS, NoBool, PositiveInt, RunSpec, format_validation_error
from mlpcore.staged import Carry, check_stage_values, stage_field, stage_sizes
from mlpcore.stopping import EarlyStopping

Metric = Literal[
    "final_train_loss",
    "final_test_loss",
    "final_test_accuracy",
    "final_val_loss",
    "final_val_accuracy",
    "best_val_loss",
    "best_val_accuracy",
]
VAL_METRICS = frozenset(m for m in get_args(Metric) if "_val_" in m)
TEST_METRICS = frozenset(m for m in get_args(Metric) if "_test_" in m)
TEST_SET_WARNING = (
    "the winner is chosen on the test set ({metric}): its score is optimistic and the test set "
    "no longer measures it fairly; hold out a validation split (val_fraction, e.g. 0.1) and "
    "rank on a val metric (best_val_loss)"
)
Mode = Literal["min", "max"]
Strategy = Literal["grid", "random", "staged", "tpe", "gp", "cmaes", "qmc"]
# Optuna's samplers, asked a batch at a time from the sweep's finished runs (lab/learned.py)
LEARNED = frozenset({"tpe", "gp", "cmaes", "qmc"})


# Bidi embeddings, overrides and isolates make a name display as other text than it holds.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unprintable(text: str) -> str:
    """The first control character (C0, C1, DEL, a bidi control) as U+XXXX, or ''.

    Letters of any script, emoji and joiners (zero-width joiner/non-joiner) are fine.
    """
    for char in text:
        if unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS:
            return f"U+{ord(char):04X}"
    return ""


class SweepSpec(BaseModel):
    """A base run spec and the fields a search varies over it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    base: dict[str, Any] = Field(default_factory=dict)
    strategy: Strategy = "grid"
    grid: dict[str, Axis] = Field(default_factory=dict)
    n: PositiveInt | None = Field(
        default=None, description="random, tpe, gp, cmaes, qmc: how many configurations"
    )
    space: dict[str, Axis] = Field(
        default_factory=dict, description="tpe, gp, cmaes, qmc: the axes the sampler searches"
    )
    batch: PositiveInt | None = Field(
        default=None, description="tpe, gp, cmaes, qmc: suggestions asked at once"
    )  # default: the server's fused-group size (lab/submit.py)
    seed: Annotated[int, NoBool] = Field(
        default=0, ge=0, lt=2**63, description="random: the sampler's seed"
    )
    stages: list[dict[str, list[Any]]] = Field(
        default_factory=list, description="staged: one {field: [values]} object per stage"
    )
    keep_top: PositiveInt | None = Field(
        default=None, description="staged: configurations a stage carries forward"
    )
    carry: Carry = Field(default="top", description="staged: top, or per_parent (one each)")
    metric: Metric = "final_train_loss"
    mode: Mode | None = None
    fuse: bool = True
    early_stopping: EarlyStopping | None = None
    repeats: Annotated[int, NoBool] = Field(
        default=1, ge=1, le=10, description="runs per configuration, seeds seed .. seed+k-1"
    )

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        if value is not None and (bad := _unprintable(value)):
            raise ValueError(f"must not contain control characters (found {bad})")
        return value

    @model_validator(mode="after")
    def _check_search(self) -> SweepSpec:
        stage_fields = [f for stage in self.stages for f in stage]
        unknown = sorted(set(self.grid) - RUN_FIELDS) + sorted(set(self.base) - RUN_FIELDS)
        unknown += sorted(set(self.space) - RUN_FIELDS)
        unknown += sorted(set(stage_fields) - RUN_FIELDS)
        if unknown:
            raise ValueError(f"unknown spec field(s): {', '.join(unknown)}")
        if self.strategy in LEARNED:
            self._check_learned()
        elif self.space or self.batch is not None:
            raise ValueError("space and batch belong to strategies tpe, gp, cmaes and qmc")
        elif self.strategy == "staged":
            self._check_stages()
        elif self.stages or self.keep_top is not None:
            raise ValueError("stages and keep_top belong to strategy staged")
        elif not self.grid:
            raise ValueError("grid must name at least one field to vary")
        elif self.strategy == "grid":
            self._check_grid_axes()
        elif self.n is None:
            raise ValueError("strategy random needs n, the number of configurations")
        self._check_val_split()
        return self

    def _check_val_split(self) -> None:
        """A val metric needs every run to hold out a validation split."""
        if self.metric in VAL_METRICS and any(_is_zero(v) for v in self._val_fractions()):
            raise ValueError(
                f"metric {self.metric} ranks runs on a validation split, but val_fraction is 0 "
                "for some of its runs (0 is the default): set base.val_fraction, e.g. 0.1"
            )

    def _val_fractions(self) -> list[Any]:
        """Every val_fraction a run can have (a distribution: its ends)."""
        base = [self.base.get("val_fraction", 0.0)]
        if self.strategy != "staged":
            axis = (self.space if self.strategy in LEARNED else self.grid).get("val_fraction")
            return base if axis is None else axis_values(axis)
        staged = [stage_field(s)[1] for s in self.stages if stage_field(s)[0] == "val_fraction"]
        first = "val_fraction" in self.stages[0]
        return [v for values in staged for v in values] + ([] if first else base)

    def _check_learned(self) -> None:
        if self.grid or self.stages or self.keep_top is not None:
            raise ValueError(f"strategy {self.strategy} searches a space, not a grid or stages")
        if not self.space:
            raise ValueError(f"space: strategy {self.strategy} needs at least one axis to search")
        if self.n is None:
            raise ValueError(f"n: strategy {self.strategy} needs n, the number of configurations")
        if self.batch is not None and self.batch > self.n:
            raise ValueError(f"batch: {self.batch} is more than n={self.n}")
        for field, axis in self.space.items():
            values = axis_values(axis)
            if not values:
                raise ValueError(f"space.{field}: the list of values is empty")
            if not isinstance(axis, list | Choice):
                _check_range(field, axis, values[0], values[1])

    def _check_stages(self) -> None:
        if self.grid:
            raise ValueError("strategy staged varies its stages, not a grid")
        if not self.stages:
            raise ValueError("strategy staged needs stages, e.g. [{activation: [relu, tanh]}]")
        for number, stage in enumerate(self.stages, start=1):
            if len(stage) != 1:
                raise ValueError(f"stage {number} must name exactly one field, not {len(stage)}")
            if not stage_field(stage)[1]:
                raise ValueError(f"stage {number}: the list of values is empty")
        if len(self.stages) > 1 and self.keep_top is None:
            raise ValueError("strategy staged with several stages needs keep_top")

    def _check_grid_axes(self) -> None:
        for field, axis in self.grid.items():
            if not isinstance(axis, list):
                raise ValueError(f"grid.{field}: strategy grid takes a list of values")
            if not axis:
                raise ValueError(f"grid.{field}: the list of values is empty")

    def resolved_mode(self) -> Mode:
        """The explicit mode, else max for accuracy and min for losses."""
        if self.mode is not None:
            return self.mode
        return "max" if self.metric.endswith("_accuracy") else "min"


MAX_INT_RANGE = 10**6  # Optuna's GP enumerates an int range: a wider one would fill memory


def _check_range(field: str, axis: Axis, low: Any, high: Any) -> None:
    """A learned space's range: low <= high, a finite width, an int range's at most
    MAX_INT_RANGE."""
    if low > high:
        raise ValueError(f"space.{field}: the range's low end is above its high end")
    if not math.isfinite(high - low):
        raise ValueError(f"space.{field}: the range is too wide to sample")
    if isinstance(axis, IntRange) and high - low > MAX_INT_RANGE:
        raise ValueError(f"space.{field}: an int range spans at most {MAX_INT_RANGE} values")


def _is_zero(value: Any) -> bool:
    """A number equal to 0 (anything else is RunSpec's to judge)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def metric_warnings(metric: str) -> list[str]:
    """Plain words on what ranking by this metric means, e.g. a winner chosen on the test set."""
    return [TEST_SET_WARNING.format(metric=metric)] if metric in TEST_METRICS else []


@dataclass(frozen=True)
class SweepConfig:
    """One run of a sweep: its configuration's varied values, its full run spec (seed shifted
    by the repeat) and its repeat index (0 .. repeats-1)."""

    varied: dict[str, Any]
    spec: RunSpec
    repeat: int = 0


def varied_fields(sweep: SweepSpec) -> list[str]:
    """The fields the sweep varies, in the order it names them."""
    if sweep.strategy == "staged":
        return list(dict.fromkeys(stage_field(stage)[0] for stage in sweep.stages))
    return list(sweep.space if sweep.strategy in LEARNED else sweep.grid)


def stage_bounds(sweep: SweepSpec) -> list[int]:
    """A staged sweep's most runs per stage: configurations (mlpcore.staged.stage_sizes)
    times repeats."""
    lengths = [len(stage_field(stage)[1]) for stage in sweep.stages]
    return [n * sweep.repeats for n in stage_sizes(lengths, keep_top=sweep.keep_top or 1)]


def config_count(sweep: SweepSpec) -> int:
    """How many configurations the sweep expands to (staged: at most), without expanding it."""
    if sweep.strategy == "random" or sweep.strategy in LEARNED:
        return sweep.n or 0
    if sweep.strategy == "staged":
        lengths = [len(stage_field(stage)[1]) for stage in sweep.stages]
        return sum(stage_sizes(lengths, keep_top=sweep.keep_top or 1))
    return math.prod(len(axis) for axis in _grid_axes(sweep).values())


def sweep_size(sweep: SweepSpec) -> int:
    """How many runs the sweep creates (staged: at most): configurations times repeats."""
    return config_count(sweep) * sweep.repeats


def expand_sweep(
    sweep: SweepSpec, *, max_runs: int, points: list[dict[str, Any]] | None = None
) -> list[SweepConfig]:
    """Expand and validate every run; any bad one rejects the whole sweep.

    A staged sweep answers its first stage, after validating every value of every stage; a
    learned one (LEARNED) the `points` its sampler asked first, after validating the ends of
    every axis of its space.
    Runs come configuration by configuration, each configuration's repeats together.
    """
    if (size := sweep_size(sweep)) > max_runs:
        what = "up to " if sweep.strategy == "staged" else ""
        count = f"{size} configurations"
        if sweep.strategy in LEARNED:
            count = f"n: {count}"
        if sweep.repeats > 1:
            count = f"{size} runs ({config_count(sweep)} configurations x {sweep.repeats} repeats)"
        raise SpecError(
            f"the sweep has {what}{count}, over the limit max_runs_per_sweep={max_runs}"
        )
    base = _validated_base(sweep.base)
    if sweep.strategy == "staged":
        check_stage_values(base, sweep.stages)
        for number, stage in enumerate(sweep.stages, start=1):  # later seeds repeat too
            if stage_field(stage)[0] == "seed":
                for seed in stage_field(stage)[1]:
                    where = f"stage {number} (seed) value {seed!r}: "
                    repeat_specs(RunSpec(**{**base, "seed": seed}), sweep.repeats, where=where)
    if sweep.strategy in LEARNED:
        check_stage_values(base, [{f: axis_values(a)} for f, a in sweep.space.items()])
        points = points or []
    else:
        points = _POINTS[sweep.strategy](sweep)
    configs = [_config(base, varied, index) for index, varied in enumerate(points)]
    return [
        SweepConfig(c.varied, spec, repeat)
        for c in configs
        for repeat, spec in enumerate(
            repeat_specs(c.spec, sweep.repeats, where=f"configuration {c.varied}: ")
        )
    ]


def repeat_specs(spec: RunSpec, repeats: int, *, where: str = "") -> list[RunSpec]:
    """The configuration's runs: its spec with seeds seed .. seed+repeats-1."""
    if repeats == 1:
        return [spec]
    if spec.seed + repeats > 2**63:
        raise SpecError(
            f"{where}seed {spec.seed} + repeats {repeats} goes past the largest seed 2**63 - 1"
        )
    return [spec.model_copy(update={"seed": spec.seed + r}) for r in range(repeats)]


def _validated_base(base: dict[str, Any]) -> dict[str, Any]:
    """Check the base alone so its errors are not blamed on a configuration."""
    try:
        RunSpec(**base)
    except ValidationError as exc:
        raise SpecError(f"base: {format_validation_error(exc)}") from exc
    return base


def _config(base: dict[str, Any], varied: dict[str, Any], index: int) -> SweepConfig:
    try:
        spec = RunSpec(**{**base, **varied})
    except ValidationError as exc:
        raise SpecError(f"configuration {index} {varied}: {format_validation_error(exc)}") from exc
    return SweepConfig(varied=varied, spec=spec)


def _grid_points(sweep: SweepSpec) -> list[dict[str, Any]]:
    grid = _grid_axes(sweep)
    fields = list(grid)
    return [dict(zip(fields, values, strict=True)) for values in itertools.product(*grid.values())]


def _grid_axes(sweep: SweepSpec) -> dict[str, list[Any]]:
    """A grid sweep's axes, each a list of values (the validator refused distributions)."""
    axes = {f: axis for f, axis in sweep.grid.items() if isinstance(axis, list)}
    if len(axes) != len(sweep.grid):
        raise SpecError("a grid sweep's axes must be lists of values")
    return axes


def _first_stage_points(sweep: SweepSpec) -> list[dict[str, Any]]:
    field, values = stage_field(sweep.stages[0])
    return [{field: value} for value in values]


def _random_points(sweep: SweepSpec) -> list[dict[str, Any]]:
    rng = random.Random(sweep.seed)
    return [
        {field: sample(axis, rng) for field, axis in sweep.grid.items()}
        for _ in range(sweep.n or 0)
    ]


_POINTS = {"grid": _grid_points, "random": _random_points, "staged": _first_stage_points}
