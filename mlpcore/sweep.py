"""Sweeps: a base spec plus a search (grid, random or staged), expanded into validated run specs.

Torch-free, like spec.py: the API expands and validates a whole sweep before queuing anything.
A staged sweep expands to its first stage; later stages are planned (mlpcore.staged) when the
stage before them has ended.
"""

from __future__ import annotations

import itertools
import math
import random
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlpcore.errors import SpecError
from mlpcore.spec import RUN_FIELDS, NoBool, Number, PositiveInt, RunSpec, format_validation_error
from mlpcore.staged import Carry, check_stage_values, stage_field, stage_sizes
from mlpcore.stopping import EarlyStopping

Metric = Literal["final_train_loss", "final_test_loss", "final_test_accuracy"]
Mode = Literal["min", "max"]
Strategy = Literal["grid", "random", "staged"]


class Choice(BaseModel):
    """Pick one of the listed values uniformly."""

    model_config = ConfigDict(extra="forbid")
    choice: list[Any] = Field(min_length=1)


class Uniform(BaseModel):
    """A float drawn uniformly from [a, b]."""

    model_config = ConfigDict(extra="forbid")
    uniform: tuple[Number, Number]


class LogUniform(BaseModel):
    """A float whose log is uniform on [log a, log b]; a and b > 0."""

    model_config = ConfigDict(extra="forbid")
    loguniform: tuple[Annotated[float, NoBool, Field(gt=0)], Annotated[float, NoBool, Field(gt=0)]]


Axis = list[Any] | Choice | Uniform | LogUniform
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
    n: PositiveInt | None = Field(default=None, description="random: how many configurations")
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
        unknown += sorted(set(stage_fields) - RUN_FIELDS)
        if unknown:
            raise ValueError(f"unknown spec field(s): {', '.join(unknown)}")
        if self.strategy == "staged":
            self._check_stages()
        elif self.stages or self.keep_top is not None:
            raise ValueError("stages and keep_top belong to strategy staged")
        elif not self.grid:
            raise ValueError("grid must name at least one field to vary")
        elif self.strategy == "grid":
            self._check_grid_axes()
        elif self.n is None:
            raise ValueError("strategy random needs n, the number of configurations")
        return self

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
        return "max" if self.metric == "final_test_accuracy" else "min"


@dataclass(frozen=True)
class SweepConfig:
    """One configuration of a sweep: the values it varies and its full run spec."""

    varied: dict[str, Any]
    spec: RunSpec


def varied_fields(sweep: SweepSpec) -> list[str]:
    """The fields the sweep varies, in the order it names them."""
    if sweep.strategy == "staged":
        return list(dict.fromkeys(stage_field(stage)[0] for stage in sweep.stages))
    return list(sweep.grid)


def stage_bounds(sweep: SweepSpec) -> list[int]:
    """A staged sweep's most runs per stage (see mlpcore.staged.stage_sizes)."""
    lengths = [len(stage_field(stage)[1]) for stage in sweep.stages]
    return stage_sizes(lengths, keep_top=sweep.keep_top or 1)


def sweep_size(sweep: SweepSpec) -> int:
    """How many configurations the sweep expands to (staged: at most), without expanding it."""
    if sweep.strategy == "random":
        return sweep.n or 0
    if sweep.strategy == "staged":
        return sum(stage_bounds(sweep))
    return math.prod(len(axis) for axis in _grid_axes(sweep).values())


def expand_sweep(sweep: SweepSpec, *, max_runs: int) -> list[SweepConfig]:
    """Expand and validate every configuration; any bad one rejects the whole sweep.

    A staged sweep answers its first stage, after validating every value of every stage.
    """
    size = sweep_size(sweep)
    if size > max_runs:
        what = "up to " if sweep.strategy == "staged" else ""
        raise SpecError(
            f"the sweep has {what}{size} configurations, over the limit "
            f"max_runs_per_sweep={max_runs}"
        )
    base = _validated_base(sweep.base)
    if sweep.strategy == "staged":
        check_stage_values(base, sweep.stages)
    points = _POINTS[sweep.strategy](sweep)
    return [_config(base, varied, index) for index, varied in enumerate(points)]


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
        {field: _sample(axis, rng) for field, axis in sweep.grid.items()}
        for _ in range(sweep.n or 0)
    ]


def _sample(axis: Axis, rng: random.Random) -> Any:
    if isinstance(axis, list):
        return rng.choice(axis)
    if isinstance(axis, Choice):
        return rng.choice(axis.choice)
    if isinstance(axis, Uniform):
        return rng.uniform(*axis.uniform)
    low, high = axis.loguniform
    return math.exp(rng.uniform(math.log(low), math.log(high)))


_POINTS = {"grid": _grid_points, "random": _random_points, "staged": _first_stage_points}
