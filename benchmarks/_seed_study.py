"""The seed study (examples/seed_study.yaml) trained in-process, stage by stage, through
mlpcore's train_group, and the Fashion-MNIST IDX files read with numpy: what gpu_check.py
needs on a box with only torch (no Redis, no Celery, no torchvision).

The stages and the carry follow mlpcore.staged ("per_parent", keep_top 2, metric
final_train_loss, min): stage 1 tries the 4 activations; its best 2 go on; each tries the 3
lrs, then, at its own best lr, the 3 step sizes. A winner's configuration as it is is kept,
not trained again: 4 + 4 + 4 = 12 runs train, in 3 fused groups of 4.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlpcore.data import TensorData
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec

STAGES: list[tuple[str, list[Any]]] = [
    ("activation", ["sigmoid", "relu", "tanh", "leaky_relu"]),
    ("lr", [0.0001, 0.001, 0.01]),
    ("step_size", [20, 30, 40]),
]
KEEP_TOP = 2
BASE = {"hidden": [512, 256, 128], "init": "he", "optimizer": "adam", "lr": 0.001,
        "scheduler": "step", "step_size": 20, "gamma": 0.1, "epochs": 50, "batch_size": 64,
        "seed": 0, "dataset": "fashion-mnist"}  # fmt: skip
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # fmt: skip


def _idx(path: Path, offset: int) -> np.ndarray:
    raw = path.read_bytes() if path.exists() else gzip.decompress(Path(f"{path}.gz").read_bytes())
    return np.frombuffer(raw, dtype=np.uint8, offset=offset)


def fashion_mnist(data_dir: str | None, device: torch.device) -> TensorData | None:
    """Fashion-MNIST from <data_dir>/FashionMNIST/raw (raw or .gz IDX files), or None."""
    raw = Path(data_dir or ".") / "FashionMNIST" / "raw"
    paths = [raw / name for name in _FILES]
    if not data_dir or not all(p.exists() or Path(f"{p}.gz").exists() for p in paths):
        return None
    x_train, y_train, x_test, y_test = (
        torch.from_numpy(_idx(p, 16 if "images" in p.name else 8).copy()) for p in paths
    )
    return TensorData("fashion-mnist", x_train.view(-1, 784).to(device),
                      y_train.long().to(device), x_test.view(-1, 784).to(device),
                      y_test.long().to(device), 255.0, 10)  # fmt: skip


def run_seed_study(data: TensorData, device: str, **overrides: Any) -> dict[str, Any]:
    """Train the staged study; per-stage seconds, the runs trained and the winner."""
    base = RunSpec(**{**BASE, **overrides, "device": device})
    done: dict[tuple, float] = {}  # configuration -> final train loss, runs trained so far
    parents: list[RunSpec] = [base]
    seconds = []
    for number, (field, values) in enumerate(STAGES, start=1):
        stage = [(p, p.model_copy(update={field: v})) for p in parents for v in values]
        todo = [s for _, s in stage if _key(s) not in done]
        start = time.perf_counter()
        for spec, result in zip(todo, train_group(todo, data=data), strict=True):
            done[_key(spec)] = result.epochs[-1].train_loss if result.epochs else float("inf")
        seconds.append(time.perf_counter() - start)
        parents = _winners(stage, done, per_parent=number > 1)
    best = min(parents, key=lambda s: done[_key(s)])
    return {"stage_seconds": seconds, "runs": len(done), "best": best,
            "loss": done[_key(best)]}  # fmt: skip


def _key(spec: RunSpec) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in spec.model_dump().items()))


def _winners(stage: list[tuple[RunSpec, RunSpec]], done: dict, *, per_parent: bool) -> list:
    """The best KEEP_TOP runs of a stage; with per_parent, each parent's best one."""
    ranked = sorted(stage, key=lambda pair: done[_key(pair[1])])
    if not per_parent:
        return [s for _, s in ranked[:KEEP_TOP]]
    best: dict[tuple, RunSpec] = {}
    for parent, spec in ranked:
        best.setdefault(_key(parent), spec)
    return list(best.values())[:KEEP_TOP]
