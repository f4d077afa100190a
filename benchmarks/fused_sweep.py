"""The study's grid trained fused (one train_group of 36) vs one run after another, one process.

Grid: sigmoid/relu/tanh/leaky_relu x lr 1e-4/1e-3/1e-2 x step_size 20/30/40, hidden
512-256-128, batch 64, Adam, seed 0, on a fixed train subset.

    python benchmarks/fused_sweep.py [--epochs 2] [--subset 6400] [--device cpu|cuda]

Fashion-MNIST is read from --data-dir or $MLPLAB_DATA_DIR; without it, mnist-5k stands in.
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mlpcore.data import load_dataset
from mlpcore.fused import RunResult, resolve_device, train_group
from mlpcore.spec import RunSpec
from mlpcore.train import train

GRID = {"activation": ["sigmoid", "relu", "tanh", "leaky_relu"], "lr": [1e-4, 1e-3, 1e-2],
        "step_size": [20, 30, 40]}


def grid_specs(dataset: str, epochs: int, subset: int, device: str) -> list[RunSpec]:
    """The 36 configurations of the study's grid."""
    base = RunSpec(dataset=dataset, hidden=[512, 256, 128], batch_size=64, epochs=epochs,
                   optimizer="adam", train_subset=subset, device=device, seed=0)
    keys = list(GRID)
    return [base.model_copy(update=dict(zip(keys, values, strict=True)))
            for values in itertools.product(*GRID.values())]


class PeakRss:
    """Peak resident memory of the process while the block runs (CPU)."""

    def __enter__(self) -> PeakRss:
        self.peak = _rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(device: torch.device, fn: Callable[[], list[RunResult]]) -> tuple[list, float, int]:
    """Results, seconds and peak memory (bytes) of fn."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        results = fn()
        torch.cuda.synchronize(device)
        return results, time.perf_counter() - start, torch.cuda.max_memory_allocated(device)
    with PeakRss() as rss:
        start = time.perf_counter()
        results = fn()
        seconds = time.perf_counter() - start
    return results, seconds, rss.peak


def max_deviation(a: list[RunResult], b: list[RunResult]) -> float:
    """Largest relative difference of any per-epoch train or test loss."""
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        for ma, mb in zip(ra.epochs, rb.epochs, strict=True):
            for x, y in ((ma.train_loss, mb.train_loss), (ma.test_loss, mb.test_loss)):
                worst = max(worst, abs(x - y) / max(abs(y), 1e-12))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=6400, help="training samples per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument("--repeat", type=int, default=2,
                        help="time both ways alternately this many times; report each's best")
    parser.add_argument("--models-per-pass", type=int, help="train_group's models_per_pass")
    args = parser.parse_args()
    device = resolve_device(args.device)
    root = Path(args.data_dir) if args.data_dir else None
    dataset = "fashion-mnist"
    if root is None or not (root / "FashionMNIST" / "raw").is_dir():
        dataset = "mnist-5k"
        print(f"note: no Fashion-MNIST under --data-dir/$MLPLAB_DATA_DIR ({root}); "
              "using the offline mnist-5k instead")
    data = load_dataset(dataset, device=device, data_dir=root)
    subset = min(args.subset, len(data.y_train))
    specs = grid_specs(dataset, args.epochs, subset, args.device)
    print(f"{len(specs)} configs, {dataset}, {subset} samples x {args.epochs} epochs each, "
          f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"best of {args.repeat}")
    train(specs[0].model_copy(update={"epochs": 1}), data=data)  # warm-up: kernels, caches
    base_mem = _rss() if device.type == "cpu" else 0
    solo_s = fused_s = float("inf")
    mems: list[int] = []
    for _ in range(args.repeat):  # alternate, so a burst of load elsewhere hits both alike
        solo, seconds, mem = measure(device, lambda: [train(s, data=data) for s in specs])
        solo_s, mems = min(solo_s, seconds), mems + [mem]
        fused, seconds, mem = measure(device, lambda: train_group(
            specs, data=data, models_per_pass=args.models_per_pass))
        fused_s, mems = min(fused_s, seconds), mems + [mem]
    solo_mem, fused_mem = mems[:2]  # the first round: RSS only grows from one phase to the next
    samples = len(specs) * subset * args.epochs
    print(f"\n{'':26}{'seconds':>10}{'samples/s':>12}{'peak mem MiB':>14}")
    print(f"{'36 runs one by one':26}{solo_s:10.2f}{samples / solo_s:12.0f}"
          f"{solo_mem / 2**20:14.1f}")
    print(f"{'one fused group of 36':26}{fused_s:10.2f}{samples / fused_s:12.0f}"
          f"{fused_mem / 2**20:14.1f}")
    print(f"fused / sequential speed: {solo_s / fused_s:.2f}x")
    print(f"max relative deviation of per-epoch losses: {max_deviation(fused, solo):.2e}")
    print("memory: " + ("torch.cuda.max_memory_allocated" if device.type == "cuda" else
                        f"peak process RSS in the phase's first round, sampled every 5 ms "
                        f"(before both: {base_mem / 2**20:.0f} MiB)"))
    print(f"machine load (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
