"""Which runs train as one stacked model, and the names their groups record.

Planned once, here: a submission (and each new stage) cuts its runs into fused groups by
fusion key and the server's model cap (`plan`); a worker that must split a group further to
fit its device's memory names the parts after the planned group (`split_names`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlpcore.schedule import trajectory_key
from mlpcore.spec import RunSpec
from runstore import new_id


@dataclass(frozen=True)
class Plan:
    """Runs cut into fused groups: each group's run indices, and every run's group name."""

    chunks: list[list[int]]
    groups: list[str | None]  # per run: the id its chunk's runs share, None for a chunk of one


def plan(specs: list[RunSpec], *, fuse: bool, max_models: int) -> Plan:
    """Runs sharing a fusion key, in sweep order, at most max_models a group; one run a group
    when not fusing. Runs that differ only in their lr schedule stay next to each other, so a
    cut between groups parts as few of those that share epochs (mlpcore.schedule) as it can."""
    chunks = _chunks(specs, fuse=fuse, max_models=max_models)
    groups: list[str | None] = [None] * len(specs)
    for chunk in chunks:
        name = f"g-{new_id()}" if len(chunk) > 1 else None
        for index in chunk:
            groups[index] = name
    return Plan(chunks, groups)


def _chunks(specs: list[RunSpec], *, fuse: bool, max_models: int) -> list[list[int]]:
    """Indices of the runs each group trains."""
    if not fuse:
        return [[i] for i in range(len(specs))]
    keyed: dict[tuple[Any, ...], dict[str, list[int]]] = {}
    for index, spec in enumerate(specs):
        families = keyed.setdefault(spec.fusion_key(), {})
        families.setdefault(trajectory_key(spec), []).append(index)
    return [chunk for f in keyed.values() for chunk in _packed(list(f.values()), max_models)]


def _packed(families: list[list[int]], max_models: int) -> list[list[int]]:
    """Families (runs that share epochs) in order into groups of at most max_models, a family
    split only when it alone is larger."""
    chunks: list[list[int]] = []
    for family in families:
        if chunks and len(chunks[-1]) + len(family) <= max_models:
            chunks[-1].extend(family)
        else:
            chunks += [family[a : a + max_models] for a in range(0, len(family), max_models)]
    return chunks


def split_names(planned: str | None, sizes: list[int]) -> list[str | None]:
    """The fused_group each part of a group trains as: the planned name when it trains as one
    part, `<name>.<k>` for the k-th of several, None for a part of one run (it runs alone)."""
    base = planned or f"g-{new_id()}"
    names = [base] if len(sizes) == 1 else [f"{base}.{k}" for k in range(1, len(sizes) + 1)]
    return [name if size > 1 else None for name, size in zip(names, sizes, strict=True)]
