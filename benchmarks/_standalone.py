"""Running mlpcore's trainer where only torch and numpy are installed (a lent GPU box).

mlpcore.spec needs pydantic and yaml, and mlpcore.data imports torchvision for its IDX
loaders. When one of them is missing, `install()` puts stand-ins into sys.modules before
mlpcore is imported: a dataclass RunSpec with the same fields, defaults and fusion key (no
validation: the benchmarks build their specs themselves), and an empty torchvision (the
benchmarks read the IDX files themselves). With everything installed it does nothing.
tests/test_benchmarks_smoke.py checks that the stand-in RunSpec matches the real one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from typing import Any

DATASETS = ("fashion-mnist", "mnist", "kmnist", "mnist-5k", "digits", "synthetic")
ACTIVATIONS = ("sigmoid", "relu", "tanh", "leaky_relu", "gelu", "elu", "silu")


@dataclass(frozen=True)
class RunSpec:
    """mlpcore.spec.RunSpec's fields and defaults, unvalidated."""

    dataset: str = "fashion-mnist"
    hidden: list[int] = field(default_factory=lambda: [512, 256, 128])
    activation: str = "relu"
    init: str = "he"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "step"
    step_size: int = 20
    gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    train_subset: int | None = None
    val_fraction: float = 0.0
    device: str = "auto"

    def model_dump(self, *, include: set[str] | None = None, mode: str = "python") -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["hidden"] = list(self.hidden)
        return data if include is None else {k: v for k, v in data.items() if k in include}

    def model_copy(self, *, update: dict[str, Any] | None = None) -> RunSpec:
        return dataclasses.replace(self, **(update or {}))

    def fusion_key(self) -> tuple[Any, ...]:
        return (
            self.dataset,
            tuple(self.hidden),
            self.batch_size,
            self.optimizer,
            self.train_subset,
            self.val_fraction,
            self.device,
        )


def _missing(name: str) -> bool:
    return name not in sys.modules and importlib.util.find_spec(name) is None


def _blocked(name: str) -> bool:
    """Missing, or blocked (sys.modules[name] = None, as the smoke test does)."""
    return (name in sys.modules and sys.modules[name] is None) or _missing(name)


def install() -> list[str]:
    """Stand-ins for what is missing; returns a note per stand-in used (empty: none)."""
    notes = []
    if "mlpcore.spec" not in sys.modules and (_blocked("pydantic") or _blocked("yaml")):
        spec = types.ModuleType("mlpcore.spec")
        spec.__dict__.update(
            RunSpec=RunSpec,
            DATASETS=DATASETS,
            ACTIVATIONS=ACTIVATIONS,
            RUN_FIELDS=frozenset(f.name for f in dataclasses.fields(RunSpec)),
        )
        sys.modules["mlpcore.spec"] = spec
        notes.append("no pydantic/yaml here: mlpcore.spec stood in by benchmarks/_standalone.py")
    if _blocked("torchvision"):
        vision = types.ModuleType("torchvision")
        vision.datasets = types.SimpleNamespace(FashionMNIST=None, MNIST=None, KMNIST=None)  # type: ignore[attr-defined]
        sys.modules["torchvision"] = vision
        notes.append("no torchvision here: IDX files read by benchmarks/gpu_check.py itself")
    return notes
