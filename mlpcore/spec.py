"""The experiment spec: one pydantic model shared by the API, the worker and the local CLI.

Torch-free on purpose: the API validates with it and must start without torch.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from mlpcore.errors import SpecError

Dataset = Literal["fashion-mnist", "mnist", "kmnist", "mnist-5k", "digits", "synthetic"]
Activation = Literal["sigmoid", "relu", "tanh", "leaky_relu", "gelu", "elu", "silu"]
Init = Literal["he", "xavier", "default"]
Optimizer = Literal["adam", "adamw", "sgd"]
Scheduler = Literal["none", "step", "cosine"]

DATASETS: tuple[str, ...] = Dataset.__args__  # type: ignore[attr-defined]
ACTIVATIONS: tuple[str, ...] = Activation.__args__  # type: ignore[attr-defined]

# Counts stop below 2**63: an int64 holds them on any device and in any JSON reader that
# reads 64-bit integers; server limits (api) are far lower still.


def not_bool(value: Any) -> Any:
    """Refuse true/false where a number belongs (pydantic would read true as 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


NoBool = BeforeValidator(not_bool)
PositiveInt = Annotated[int, NoBool, Field(ge=1, lt=2**63)]
Number = Annotated[float, NoBool]
# Matched whole (fullmatch: `$` would let "cpu\n" through), ASCII digits only, and a GPU
# index a machine can have: 0-63 without leading zeros (CUDA numbers devices from 0).
MAX_CUDA_INDEX = 63
_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::(0|[1-9][0-9]?))?")


class RunSpec(BaseModel):
    """One training run: the study's MLP, its optimiser, schedule and data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Dataset = "fashion-mnist"
    hidden: list[PositiveInt] = Field(
        default_factory=lambda: [512, 256, 128],
        description="hidden layer widths; [] is a linear softmax model (a baseline)",
    )
    activation: Activation = "relu"
    init: Init = "he"
    optimizer: Optimizer = "adam"
    lr: Number = Field(default=1e-3, gt=0)
    momentum: Number = Field(default=0.9, ge=0, lt=1, description="sgd only")
    weight_decay: Number = Field(default=0.0, ge=0)
    scheduler: Scheduler = "step"
    step_size: PositiveInt = 20
    gamma: Number = Field(default=0.1, gt=0)
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 64
    seed: Annotated[int, NoBool] = Field(default=0, ge=0, lt=2**63)
    train_subset: PositiveInt | None = None
    val_fraction: Number = Field(
        default=0.0,
        ge=0,
        le=0.5,
        description="share of the training set held out for validation (the same samples "
        "for every run of a dataset, train_subset and fraction)",
    )
    device: str = "auto"

    @field_validator("lr", "gamma", "weight_decay", "momentum", "val_fraction")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        match = _DEVICE.fullmatch(value)
        if not match or (match[1] is not None and int(match[1]) > MAX_CUDA_INDEX):
            raise ValueError(
                f"must be auto, cpu, mps, cuda or cuda:N (N from 0 to {MAX_CUDA_INDEX})"
            )
        return value

    def fusion_key(self) -> tuple[Any, ...]:
        """Fields that runs must share to train fused in one stacked model."""
        return (
            self.dataset,
            tuple(self.hidden),
            self.batch_size,
            self.optimizer,
            self.train_subset,
            self.val_fraction,
            self.device,
        )


RUN_FIELDS: frozenset[str] = frozenset(RunSpec.model_fields)


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML spec file into a plain dict (not yet validated)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_error(path, exc)) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path} must hold a mapping of spec fields, not {type(data).__name__}")
    return data


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """One line: file:line:column (1-based) and what the parser expected."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a CLI `field=value` override; the value is read as YAML (numbers, lists...)."""
    field, sep, raw = text.partition("=")
    if not sep or not field:
        raise SpecError(f"override {text!r} must look like field=value")
    try:
        return field.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise SpecError(f"override {text!r}: cannot read the value: {exc}") from exc


def format_validation_error(exc: Any) -> str:
    """One line per problem, `field: message`, from a pydantic ValidationError; an unknown
    field names the known one it is closest to."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "spec"
        hint = ""
        if err["type"] == "extra_forbidden" and err["loc"]:
            hint = did_you_mean(str(err["loc"][-1]), RUN_FIELDS)
        lines.append(f"{loc}: {err['msg']}{hint}")
    return "; ".join(lines)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' when a known name is close to `name`, else ''."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
