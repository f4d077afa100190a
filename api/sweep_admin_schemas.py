"""Request and response models of the sweep list, labels, retry, extend and compare routes
(api/routes/sweep_admin.py); the record fields they add live in api/schemas.py."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt

from api.schemas import BestPublic, LeaderboardRow
from mlpcore.sweep import Metric, Mode, _unprintable

MAX_TAGS, TAG_CHARS, NAME_CHARS, NOTES_CHARS = 10, 32, 200, 4000
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]*")
_TEXT_OK = frozenset("\n\t")  # notes may have lines and tabs, no other control character


def _name(value: str | None) -> str | None:
    """A name without control characters, surrounding spaces dropped."""
    if value is not None and (bad := _unprintable(value)):
        raise ValueError(f"must not contain control characters (found {bad})")
    return value.strip() if value is not None else None


def _notes(value: str | None) -> str | None:
    """Notes without control characters other than newlines and tabs."""
    if value is not None and (bad := _unprintable("".join(c for c in value if c not in _TEXT_OK))):
        raise ValueError(f"must not contain control characters other than newline and tab "
                         f"(found {bad})")  # fmt: skip
    return value


def _tag(value: str) -> str:
    """A short label: letters, digits and . _ : + - (not first)."""
    if not _TAG.fullmatch(value):
        raise ValueError(
            f"tag {value[:TAG_CHARS]!r} must be letters, digits and . _ : + - "
            "(starting with a letter or digit)"
        )
    return value


def _unique(values: list[str] | None) -> list[str] | None:
    """The tags once each, in the order given."""
    return list(dict.fromkeys(values)) if values is not None else None


Tag = Annotated[str, Field(min_length=1, max_length=TAG_CHARS), AfterValidator(_tag)]


class LabelsUpdate(BaseModel):
    """PATCH body: any of name, tags, notes; a field left out keeps its value, null clears it."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, Field(max_length=NAME_CHARS), AfterValidator(_name)] = None
    tags: Annotated[list[Tag] | None, Field(max_length=MAX_TAGS), AfterValidator(_unique)] = None
    notes: Annotated[str | None, Field(max_length=NOTES_CHARS), AfterValidator(_notes)] = None

    def changes(self) -> dict[str, Any]:
        """The fields the body named, with cleared tags as an empty list."""
        out = {field: getattr(self, field) for field in self.model_fields_set}
        if "tags" in out and out["tags"] is None:
            out["tags"] = []
        return out


class SweepSummary(BaseModel):
    """A sweep in the list: labels, strategy, status counts, done and best so far."""

    id: str
    owner: str
    name: str | None
    tags: list[str] = []
    notes: str | None = None
    strategy: str
    metric: Metric
    mode: Mode
    n_runs: int
    counts: dict[str, int]
    done: bool
    best: BestPublic | None
    created_at: datetime


class SweepsPublic(BaseModel):
    """One page of sweeps, newest first, and how many match in all."""

    data: list[SweepSummary]
    count: int


class ExtendRequest(BaseModel):
    """POST /v1/sweeps/{id}/extend: n more samples (random and learned sweeps), or every
    succeeded run continued to `epochs` from its stored final state."""

    model_config = ConfigDict(extra="forbid")

    n: PositiveInt | None = Field(default=None, le=10_000)
    epochs: PositiveInt | None = Field(default=None, le=1_000_000)


class RequeuedPublic(BaseModel):
    """What a retry or an extend queued: the run ids, and the sweep as it is now."""

    sweep_id: str
    run_ids: list[str]
    count: int
    sweep: dict[str, Any]
    # an extend by epochs: succeeded runs it could not continue (no stored state), and why
    skipped: list[dict[str, str]] = []


class CompareRow(LeaderboardRow):
    """A leaderboard row of a comparison, naming its run's sweep."""

    sweep_id: str | None
    sweep_name: str | None = None


class CompareSweep(BaseModel):
    """One sweep of a comparison and its best succeeded run."""

    id: str
    name: str | None
    best_run_id: str | None
    value: float | None
    n_runs: int


class ComparePublic(BaseModel):
    """Several sweeps' (or runs') runs ranked together by their common metric."""

    metric: Metric
    mode: Mode
    sweeps: list[CompareSweep]
    data: list[CompareRow]
    count: int
