"""Staged search, the study's own method: pure planning, torch-free.

A staged sweep varies one field per stage, in order. Stage 1 is the base with each value of
its field. When a stage has ended, its winners are picked from its finished runs (status
succeeded with a finite metric), ranked by the sweep's metric and mode, the earlier run
first on a tie:

carry "top"         the best keep_top runs of the stage;
carry "per_parent"  the same, but at most one run per parent (the previous stage's winner
                    a run was built from); stage-1 runs have no parent and all count.

Each winner's configuration is then combined with every value of the next stage's field.

With repeats (SweepSpec.repeats > 1) the candidates are configurations, not runs: each is
its best run's id with the mean of its succeeded runs (lab/stages.py builds them), so the
same rule picks winners by the mean, and each next configuration runs `repeats` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from mlpcore.errors import SpecError
from mlpcore.spec import RunSpec, format_validation_error
from mlpcore.stopping import badness

Carry = Literal["top", "per_parent"]


@dataclass(frozen=True)
class Candidate:
    """A run of a finished stage as the winner selection sees it."""

    run_id: str
    value: float | None  # the metric when the run succeeded with a finite value, else None
    parent: str | None = None  # the winner of the previous stage it was built from


def stage_field(stage: dict[str, list[Any]]) -> tuple[str, list[Any]]:
    """The (field, values) of a one-key stage object."""
    ((field, values),) = stage.items()
    return field, values


def stage_sizes(lengths: list[int], *, keep_top: int) -> list[int]:
    """The most runs each stage can have: stage 1 all its values, later stages at most
    min(keep_top, runs of the stage before) winners times their values."""
    sizes: list[int] = []
    for length in lengths:
        parents = 1 if not sizes else min(keep_top, sizes[-1])
        sizes.append(parents * length)
    return sizes


def check_stage_values(base: dict[str, Any], stages: list[dict[str, list[Any]]]) -> None:
    """Validate every value of every stage as a RunSpec over the base; SpecError names it.

    RunSpec has no cross-field rules, so this covers every combination a later stage makes.
    """
    for number, stage in enumerate(stages, start=1):
        field, values = stage_field(stage)
        for value in values:
            try:
                RunSpec(**{**base, field: value})
            except ValidationError as exc:
                raise SpecError(
                    f"stage {number} ({field}) value {value!r}: {format_validation_error(exc)}"
                ) from exc


def select_winners(
    candidates: list[Candidate], *, keep_top: int, carry: Carry, mode: str
) -> list[str]:
    """The run ids carried forward, best first (see the module docstring for the rule)."""
    finished = [
        (badness(c.value, mode), i, c) for i, c in enumerate(candidates) if c.value is not None
    ]
    winners: list[str] = []
    parents: set[str] = set()
    for _, _, cand in sorted(finished, key=lambda s: (s[0], s[1])):
        if carry == "per_parent" and cand.parent is not None:
            if cand.parent in parents:
                continue
            parents.add(cand.parent)
        winners.append(cand.run_id)
        if len(winners) == keep_top:
            break
    return winners


def next_configs(
    winners: list[tuple[dict[str, Any], dict[str, Any]]], *, field: str, values: list[Any]
) -> list[tuple[dict[str, Any], RunSpec, int]]:
    """(varied, spec, winner index) for each winner (varied, spec) times each value."""
    out = []
    for index, (varied, spec) in enumerate(winners):
        for value in values:
            out.append(({**varied, field: value}, RunSpec(**{**spec, field: value}), index))
    return out
