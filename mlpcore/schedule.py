"""Lr schedules, and the epochs that runs of one group train identically (shared prefixes).

Plain Python (no torch, no pydantic): the trainer, the API's dry run and the standalone GPU
check all import it.

Runs that differ only in their lr schedule (`scheduler`, `step_size`, `gamma`) train the very
same model for as long as their lrs agree: the same init, batch order and updates. StepLR at
20, 30 and 40 steps is one trajectory for 20 epochs, and two for 10 more. A group trains such
a prefix once and copies the state into the runs that branch off where their lr first
differs; each run's numbers are those of its solo run (on a CPU bit for bit). The idea is
Hippo's (Shin et al., "Hippo: Sharing Computations in Hyper-Parameter Optimization", VLDB
2022), here within one fused group.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

# what a run's lr schedule is made of; runs equal in everything else share a prefix
SCHEDULE_FIELDS = ("lr", "scheduler", "step_size", "gamma", "epochs")
_BRANCHING = frozenset({"scheduler", "step_size", "gamma"})


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
