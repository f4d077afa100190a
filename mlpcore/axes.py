"""A sweep's search axes: a list of values, or a distribution to sample (torch-free)."""

from __future__ import annotations

import math
import random
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mlpcore.spec import NoBool, Number


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


class IntRange(BaseModel):
    """An integer drawn uniformly from a .. b, both included: `{"int": [2, 40]}`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)
    bounds: tuple[Annotated[int, NoBool], Annotated[int, NoBool]] = Field(alias="int")


Axis = list[Any] | Choice | Uniform | LogUniform | IntRange


def axis_values(axis: Axis) -> list[Any]:
    """The values a grid axis can give (a distribution: the ends of its range)."""
    if isinstance(axis, list):
        return axis
    if isinstance(axis, Choice):
        return axis.choice
    if isinstance(axis, IntRange):
        return list(axis.bounds)
    return list(axis.uniform if isinstance(axis, Uniform) else axis.loguniform)


def sample(axis: Axis, rng: random.Random) -> Any:
    """One value drawn from the axis."""
    if isinstance(axis, list):
        return rng.choice(axis)
    if isinstance(axis, Choice):
        return rng.choice(axis.choice)
    if isinstance(axis, Uniform):
        return rng.uniform(*axis.uniform)
    if isinstance(axis, IntRange):
        return rng.randint(*axis.bounds)
    low, high = axis.loguniform
    return math.exp(rng.uniform(math.log(low), math.log(high)))
