"""Lr schedules, and the epochs that runs of one group train identically (shared prefixes).

Plain Python (no torch, no pydantic): the trainer, the API's dry run and the standalone GPU
check all import it.

Runs that differ only in their lr schedule (`scheduler`, `step_size`, `gamma`, `epochs`) train
the very same model for as long as their lrs agree: the same init, batch order and updates.
StepLR at 20, 30 and 40 steps is one trajectory for 20 epochs, and two for 10 more; runs of
10 and 20 epochs at a step or constant lr are one for 10. A group trains such
a prefix once and copies the state into the runs that branch off where their lr first
differs; each run's numbers are those of its solo run (on a CPU bit for bit). The idea is
Hippo's (Shin et al., "Hippo: Sharing Computations in Hyper-Parameter Optimization", VLDB
2022), here within one fused group.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# what a run's lr schedule is made of; runs equal in everything else share a prefix
SCHEDULE_FIELDS = ("lr", "scheduler", "step_size", "gamma", "epochs")
_BRANCHING = frozenset({"scheduler", "step_size", "gamma", "epochs"})


def lr_schedule(
    *, lr: float, scheduler: str, step_size: int, gamma: float, epochs: int
) -> list[float]:
    """The lr of each epoch 0..epochs-1, by the same recursions (so the same rounding) as
    torch's StepLR(step_size, gamma) and CosineAnnealingLR(T_max=epochs, eta_min=0)."""
    lrs = [lr]
    for e in range(1, epochs):
        prev = lrs[-1]
        if scheduler == "step":
            lrs.append(prev * gamma if e % step_size == 0 else prev)
        elif scheduler == "cosine" and (e - 1 - epochs) % (2 * epochs) == 0:
            lrs.append(prev + lr * (1 - math.cos(math.pi / epochs)) / 2)
        elif scheduler == "cosine":
            now, before = math.pi * e / epochs, math.pi * (e - 1) / epochs
            lrs.append((1 + math.cos(now)) / (1 + math.cos(before)) * prev)
        else:
            lrs.append(prev)
    return lrs


def spec_schedule(spec: Any) -> list[float]:
    """A RunSpec's lr per epoch."""
    return lr_schedule(**{name: getattr(spec, name) for name in SCHEDULE_FIELDS})


def trajectory_key(spec: Any) -> str:
    """What runs must share, besides their lrs, to train the same model: the whole spec but
    the fields that only shape the lr schedule."""
    fields = spec.model_dump(mode="json")
    return json.dumps({k: v for k, v in fields.items() if k not in _BRANCHING}, sort_keys=True)


def shared_prefixes(
    keys: Sequence[Any], schedules: Sequence[Sequence[float]]
) -> list[tuple[int, int | None]]:
    """Per run: (the epoch it starts training on its own, the run it follows until then).

    Runs of one key are ordered by their schedules, largest lr first (lexicographically), so
    each one's longest common prefix with any run before it is the one with its predecessor;
    it follows that predecessor for those epochs. The first run of a key trains from epoch 0
    and follows nobody; a run whose schedule equals its predecessor's never trains on its
    own (its start is its number of epochs)."""
    out: list[tuple[int, int | None]] = [(0, None)] * len(keys)
    families: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        families.setdefault(key, []).append(i)
    for members in families.values():
        ordered = sorted(members, key=lambda i: list(schedules[i]), reverse=True)  # stable
        for before, i in zip(ordered, ordered[1:], strict=False):
            out[i] = (_common(schedules[before], schedules[i]), before)
    return out


def _common(a: Sequence[float], b: Sequence[float]) -> int:
    n = min(len(a), len(b))
    return next((e for e in range(n) if a[e] != b[e]), n)


def trained_epochs(specs: Sequence[Any]) -> list[int]:
    """Per spec: the epochs a group of these runs trains for it (its epochs less the prefix
    shares), by the trainer's rule, when they train as one group."""
    starts = shared_prefixes([trajectory_key(s) for s in specs], [spec_schedule(s) for s in specs])
    return [max(0, s.epochs - start) for s, (start, _) in zip(specs, starts, strict=True)]


@dataclass(frozen=True)
class Branches:
    """A group's runs in stack order: the epoch each trains from on its own (`starts`), and
    the position it follows until then (`follows`, None for a run that starts at 0)."""

    starts: list[int]
    follows: list[int | None]

    @classmethod
    def stacked(
        cls,
        specs: Sequence[Any],
        schedules: Sequence[Sequence[float]],
        *,
        key: Callable[[Any], Any],
        share: bool,
    ) -> tuple[list[int], Branches]:
        """The stack order (caller indices by start epoch, then `key`) and its branches, from
        the runs' `spec_schedule()`s; with `share` off every run starts at 0."""
        keys = [trajectory_key(s) if share else i for i, s in enumerate(specs)]
        prefixes = shared_prefixes(keys, schedules)
        order = sorted(range(len(specs)), key=lambda i: (prefixes[i][0], key(specs[i])))
        position = {caller: j for j, caller in enumerate(order)}
        follows = [None if (lead := prefixes[i][1]) is None else position[lead] for i in order]
        return order, cls([prefixes[i][0] for i in order], follows)

    def source(self, i: int, epoch: int) -> int:
        """The position that trains position i's model in `epoch`."""
        while self.starts[i] > epoch:
            lead = self.follows[i]
            assert lead is not None  # a run that starts after epoch 0 follows one
            i = lead
        return i

    def needed(self, running: Iterable[int], epoch: int) -> set[int]:
        """The positions that the running positions' numbers come from in `epoch`."""
        return {self.source(i, epoch) for i in running}

    def width(self, epoch: int) -> int:
        """How many positions train in `epoch`: a prefix of the stack."""
        return sum(start <= epoch for start in self.starts)

    def branching(self, epoch: int) -> list[int]:
        """The positions that start training on their own in `epoch` (after epoch 0)."""
        return [k for k, start in enumerate(self.starts) if start == epoch > 0]
