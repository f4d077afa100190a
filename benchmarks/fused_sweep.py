"""The study's grid trained fused (one train_group of 36) vs one run after another, one process.

The fused group runs twice: with shared prefixes (the default: the three step sizes train
their common epochs once, mlpcore.schedule) and without (`share=False`: fusion alone).

Grid: sigmoid/relu/tanh/leaky_relu x lr 1e-4/1e-3/1e-2 x step_size 20/30/40, hidden
512-256-128, batch 64, Adam, seed 0, on a fixed train subset.

    python benchmarks/fused_sweep.py [--epochs 2] [--subset 6400] [--device cpu|cuda]
    python benchmarks/fused_sweep.py --matrix [--subset 2048] [--repeat 2]   # CPU size matrix
    python benchmarks/fused_sweep.py --passes 1,2,4,12 [--hidden 64] [--repeat 3]  # CPU pass sizes

Fashion-MNIST is read from --data-dir or $MLPLAB_DATA_DIR; without it, mnist-5k stands in.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import threading
from collections.abc import Callable
from typing import Any

import _common as bench  # benchmarks/ is on sys.path when this runs as a script
import torch
from _matrix import print_matrix

from mlpcore.data import load_dataset
from mlpcore.device import configure_process, resolve_device
from mlpcore.fused import RunResult, train_group
from mlpcore.memory import cpu_models_per_pass
from mlpcore.spec import RunSpec
from mlpcore.train import train

Round = tuple[list[RunResult], float, int]  # results, seconds, peak memory of one measure
GRID = {
    "activation": ["sigmoid", "relu", "tanh", "leaky_relu"],
    "lr": [1e-4, 1e-3, 1e-2],
    "step_size": [20, 30, 40],
}


def grid_specs(dataset: str, epochs: int, subset: int, device: str) -> list[RunSpec]:
    """The 36 configurations of the study's grid."""
    base = RunSpec(
        dataset=dataset,
        hidden=[512, 256, 128],
        batch_size=64,
        epochs=epochs,
        optimizer="adam",
        train_subset=subset,
        device=device,
        seed=0,
    )
    keys = list(GRID)
    return [
        base.model_copy(update=dict(zip(keys, values, strict=True)))
        for values in itertools.product(*GRID.values())
    ]


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


def measure(device: torch.device, fn: Callable[[], list[RunResult]]) -> Round:
    """Results, seconds and peak memory (bytes) of fn."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)

        def synced() -> list[RunResult]:
            results = fn()
            torch.cuda.synchronize(device)  # the kernels fn queued count, too
            return results

        results, seconds = bench.timed(synced)
        return results, seconds, torch.cuda.max_memory_allocated(device)
    with PeakRss() as rss:
        results, seconds = bench.timed(fn)
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
    parser = bench.training_parser(__doc__)
    parser.add_argument("--subset", type=int, default=6400, help="training samples per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models-per-pass", type=int, help="train_group's models_per_pass")
    parser.add_argument(
        "--matrix", action="store_true", help="CPU: fused vs one by one over a size matrix"
    )
    parser.add_argument("--passes", help="CPU: fused in passes of these sizes vs one by one")
    parser.add_argument("--hidden", help="with --passes: the widths, e.g. 128,64")
    args = parser.parse_args()
    configure_process()  # as a worker starts: denormals flushed
    device = resolve_device(args.device)
    dataset, root = bench.pick_dataset(args.data_dir)
    data = load_dataset(dataset, device=device, data_dir=root)
    if args.matrix:  # 1000 test samples: evaluation costs both sides alike and dilutes ratios
        small = dataclasses.replace(data, x_test=data.x_test[:1000], y_test=data.y_test[:1000])
        print(f"{dataset}, device {device}, {bench.torch_line()}")
        print_matrix(small, samples=min(args.subset, len(data.y_train)), repeat=args.repeat)
        bench.print_machine_load()
        return
    subset = min(args.subset, len(data.y_train))
    specs = grid_specs(dataset, args.epochs, subset, args.device)
    if args.passes:
        hidden = [int(w) for w in args.hidden.split(",")] if args.hidden else None
        sized = [s.model_copy(update={"hidden": hidden}) for s in specs] if hidden else specs
        pass_sizes(sized, data, [int(p) for p in args.passes.split(",")], repeat=args.repeat)
        return
    print(
        f"{len(specs)} configs, {dataset}, {subset} samples x {args.epochs} epochs each, "
        f"device {device}, {bench.torch_line()}, best of {args.repeat}"
    )
    train(specs[0].model_copy(update={"epochs": 1}), data=data)  # warm-up: kernels, caches
    base_mem = _rss() if device.type == "cpu" else 0
    per_pass = args.models_per_pass
    solo, unshared, fused = bench.alternate(
        args.repeat,
        [
            lambda: measure(device, lambda: [train(s, data=data) for s in specs]),
            lambda: measure(
                device,
                lambda: train_group(specs, data=data, models_per_pass=per_pass, share=False),
            ),
            lambda: measure(
                device, lambda: train_group(specs, data=data, models_per_pass=per_pass)
            ),
        ],
    )
    report(solo, unshared, fused, samples=len(specs) * subset * args.epochs)
    print(
        "memory: "
        + (
            "torch.cuda.max_memory_allocated"
            if device.type == "cuda"
            else f"peak process RSS in the phase's first round, sampled every 5 ms "
            f"(before both: {base_mem / 2**20:.0f} MiB)"
        )
    )
    bench.print_machine_load()


def pass_sizes(specs: list[RunSpec], data: Any, sizes: list[int], *, repeat: int) -> None:
    """The grid one by one and fused in passes of each size, alternated `repeat` times; each
    fused side's median over one by one's (mlpcore.memory.cpu_models_per_pass picks the size
    a worker uses)."""
    print(f"{len(specs)} configs, hidden {specs[0].hidden}, {bench.torch_line()}, "
          f"median of {repeat}; a worker passes "
          f"{cpu_models_per_pass(specs[0], data.num_features, data.num_classes)}")  # fmt: skip
    train_group(specs[:2], data=data)  # warm-up
    sides = [lambda: bench.timed(lambda: [train(s, data=data) for s in specs])[1]]
    sides += [
        lambda p=p: bench.timed(lambda: train_group(specs, data=data, models_per_pass=p))[1]
        for p in sizes
    ]
    solo, *fused = (statistics.median(r) for r in bench.alternate(repeat, sides))
    print(f"one by one {solo:.2f} s; " + ", ".join(
        f"passes of {p}: {solo / f:.2f}x" for p, f in zip(sizes, fused, strict=True)))  # fmt: skip


def report(solo: list[Round], unshared: list[Round], fused: list[Round], *, samples: int) -> None:
    """The table (best seconds; memory of the first round: RSS only grows from one phase to
    the next), the speed-ups and how far the last round's losses are apart."""
    rows = []
    sides = (
        ("36 runs one by one", solo),
        ("fused, no shared prefix", unshared),
        ("fused, shared prefixes", fused),
    )
    for label, rounds in sides:
        seconds = min(r[1] for r in rounds)
        rows.append((label, seconds, samples / seconds, rounds[0][2] / 2**20))
    print()
    bench.print_table(
        "",
        26,
        [("seconds", 10, ".2f"), ("samples/s", 12, ".0f"), ("peak mem MiB", 14, ".1f")],
        rows,
    )
    print(f"fused / sequential speed: {rows[0][1] / rows[1][1]:.2f}x without shared prefixes, "
          f"{rows[0][1] / rows[2][1]:.2f}x with")  # fmt: skip
    deviation = max(max_deviation(r[-1][0], solo[-1][0]) for r in (unshared, fused))
    print(f"max relative deviation of per-epoch losses: {deviation:.2e}")


if __name__ == "__main__":
    main()
