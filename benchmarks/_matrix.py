"""fused_sweep.py --matrix: fused vs one by one over widths x batch sizes x group sizes.

Each cell trains `group` configurations (lr and activation varied, seeds 0..) for one epoch
of `samples` samples, as one train_group and as one train_group per run, alternately
`repeat` times, and prints one-by-one seconds / fused seconds (>= 1: fusion pays).
"""

from __future__ import annotations

import itertools
import time

from mlpcore.data import TensorData
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec

WIDTHS = [[512, 256, 128], [256, 128], [128, 64], [64]]
BATCHES = [32, 64, 128, 256]
GROUPS = [4, 16, 36]
ACTS = ["sigmoid", "relu", "tanh", "leaky_relu"]
LRS = [1e-4, 1e-3, 1e-2]


def cell_specs(hidden: list[int], batch: int, group: int, samples: int, dataset: str) -> list:
    base = RunSpec(dataset=dataset, hidden=hidden, batch_size=batch, epochs=1,
                   train_subset=samples, device="cpu")  # fmt: skip
    configs = itertools.islice(itertools.cycle(itertools.product(ACTS, LRS)), group)
    return [
        base.model_copy(update={"activation": a, "lr": lr, "seed": i})
        for i, (a, lr) in enumerate(configs)
    ]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ratio(specs: list[RunSpec], data: TensorData, repeat: int) -> float:
    """Best one-by-one seconds over best fused seconds."""
    fused, solo = [], []
    for _ in range(repeat):  # alternately: a burst of load elsewhere hits both alike
        fused.append(_seconds(lambda: train_group(specs, data=data)))
        solo.append(_seconds(lambda: [train_group([s], data=data) for s in specs]))
    return min(solo) / min(fused)


def print_matrix(data: TensorData, *, samples: int, repeat: int) -> list[float]:
    """The matrix, a row per (widths, batch), a column per group size; every ratio."""
    print(f"one-by-one / fused seconds, 1 epoch of {samples} samples per model, best of {repeat}")
    print(f"{'hidden':<16}{'batch':>6}" + "".join(f"{f'{g} models':>12}" for g in GROUPS))
    every = []
    for hidden, batch in itertools.product(WIDTHS, BATCHES):
        row = [
            ratio(cell_specs(hidden, batch, g, samples, data.name), data, repeat) for g in GROUPS
        ]
        every += row
        cells = "".join(f"{r:>11.2f}{'*' if r < 1 else ' '}" for r in row)
        print(f"{str(hidden):<16}{batch:>6}{cells}", flush=True)
    print(f"slowest cell {min(every):.2f}x (* marks fused slower than one by one)")
    return every
