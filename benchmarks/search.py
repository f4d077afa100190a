"""Learned search vs random and grid at equal budget; batched fused TPE vs Optuna's own loop.

The study's space widened: activation x lr loguniform 1e-5..1e-1 x step_size int 2..40 x
gamma uniform 0.05..0.9, on a small dataset (digits by default) for a few epochs, ranked by
final_val_loss (a 20% val split). Budget 24 runs per search:

- tpe, gp: lab/learned.py's batches (3 of 8, each asked from a study rebuilt from the runs
  before it, each trained fused by mlpcore.fused.train_group), as the server runs them;
- random: 24 draws of the random strategy, fused; grid: the nearest grid of 24 (4 activations
  x 3 lr x 2 step sizes, gamma 0.1), fused;

each over --seeds search seeds (the run seed moves with the search seed too, so grid's spread
is training noise): median best and spread. Then wall time: mlplab's batched fused tpe
against optuna's `study.optimize` with its TPESampler training one run per trial in this
process. Everything in one process, no server: what is compared is the search and the fusion.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402
from _common import make_parser, print_table, torch_line  # noqa: E402

from lab import learned, studies  # noqa: E402
from mlpcore.data import load_dataset  # noqa: E402
from mlpcore.fused import train_group  # noqa: E402
from mlpcore.spec import RunSpec  # noqa: E402
from mlpcore.sweep import SweepSpec, expand_sweep  # noqa: E402

METRIC = "final_val_loss"
SPACE: dict[str, Any] = {
    "activation": ["sigmoid", "relu", "tanh", "leaky_relu"],
    "lr": {"loguniform": [1e-5, 1e-1]},
    "step_size": {"int": [2, 40]},
    "gamma": {"uniform": [0.05, 0.9]},
}
GRID = {
    "activation": ["sigmoid", "relu", "tanh", "leaky_relu"],
    "lr": [1e-4, 1e-3, 1e-2],
    "step_size": [2, 20],
}


def base(args: Any, seed: int) -> dict[str, Any]:
    return {
        "dataset": args.dataset,
        "hidden": [64, 32],
        "epochs": args.epochs,
        "batch_size": 64,
        "val_fraction": 0.2,
        "gamma": 0.1,
        "seed": seed,
        "device": "cpu",
    }


_DATA: dict[str, Any] = {}  # loaded once, as a worker keeps its datasets


def train(specs: list[RunSpec]) -> list[float]:
    """Train the runs fused; each one's metric (inf for a diverged run)."""
    name = specs[0].dataset
    if name not in _DATA:
        _DATA[name] = load_dataset(name, device="cpu")
    results = train_group(specs, data=_DATA[name])
    return [float((r.result or {}).get(METRIC, float("inf"))) for r in results]


def learned_search(strategy: str, args: Any, seed: int) -> float:
    """Batches asked by lab.learned from the runs so far, each trained fused; the best."""
    sweep = SweepSpec(strategy=strategy, base=base(args, seed), space=SPACE, n=args.budget,
                      batch=args.batch, seed=seed, metric=METRIC)  # fmt: skip
    runs: list[dict[str, Any]] = []
    for number, size in enumerate(learned.batch_sizes(args.budget, args.batch), start=1):
        points = learned.suggest(sweep, runs, count=size, number=number, mode="min",
                                 torch_ok=True)  # fmt: skip
        configs = expand_sweep(sweep, max_runs=args.budget, points=points)
        for point, value in zip(points, train([c.spec for c in configs]), strict=True):
            runs.append({"id": str(len(runs)), "status": "succeeded", "varied": point,
                         "repeat": 0, "result": {METRIC: value}})  # fmt: skip
    return min(r["result"][METRIC] for r in runs)


def random_search(args: Any, seed: int) -> float:
    sweep = SweepSpec(strategy="random", base=base(args, seed), grid=SPACE, n=args.budget,
                      seed=seed, metric=METRIC)  # fmt: skip
    return min(train([c.spec for c in expand_sweep(sweep, max_runs=args.budget)]))


def grid_search(args: Any, seed: int) -> float:
    sweep = SweepSpec(base=base(args, seed), grid=GRID, metric=METRIC)  # 24 configurations
    return min(train([c.spec for c in expand_sweep(sweep, max_runs=len(GRID) * 100)]))


def optuna_loop(args: Any, seed: int) -> float:
    """Optuna's own loop: one trial at a time, each trained alone (M = 1)."""
    dists = {f: studies.distribution(a) for f, a in SweepSpec(
        strategy="tpe", base={}, space=SPACE, n=1).space.items()}  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        params = {f: trial._suggest(f, d) for f, d in dists.items()}
        return train([RunSpec(**{**base(args, seed), **params})])[0]

    with studies.quiet():
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=args.budget)
    return float(study.best_value)


SEARCHES = {
    "tpe": lambda a, s: learned_search("tpe", a, s),
    "gp": lambda a, s: learned_search("gp", a, s),
    "random": random_search,
    "grid": grid_search,
}


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--dataset", default="digits", choices=("digits", "mnist-5k"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--budget", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--searches", default=",".join(SEARCHES), help="which, comma-separated")
    args = parser.parse_args()
    print(torch_line())
    print(f"{args.dataset}, {args.epochs} epochs, budget {args.budget} runs, {METRIC} (min), "
          f"{args.seeds} search seeds")  # fmt: skip
    columns = [("median best", 12, ".4f"), ("min", 8, ".4f"), ("max", 8, ".4f"),
               ("stdev", 8, ".4f"), ("wall s", 8, ".1f")]  # fmt: skip
    print_table("search", 8, columns, [])
    for name in args.searches.split(","):
        search = SEARCHES[name]
        started = time.perf_counter()
        bests = [search(args, seed) for seed in range(args.seeds)]
        spread = statistics.stdev(bests) if len(bests) > 1 else 0.0
        row = (name, statistics.median(bests), min(bests), max(bests), spread,
               time.perf_counter() - started)  # fmt: skip
        cells = (format(v, f">{w}{spec}") for (_, w, spec), v in zip(columns, row[1:], strict=True))
        print(f"{name:<8}" + "".join(cells), flush=True)  # a line as each search ends
    started = time.perf_counter()
    mine = learned_search("tpe", args, 0)
    fused_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = optuna_loop(args, 0)
    loop_s = time.perf_counter() - started
    print_table(f"tpe, {args.budget} runs", 40, [("wall s", 8, ".2f"), ("best", 8, ".4f")], [
        (f"mlplab: {-(-args.budget // args.batch)} fused batches of {args.batch}", fused_s, mine),
        ("optuna study.optimize, one at a time", loop_s, theirs),
    ])  # fmt: skip
    print(f"ratio: optuna's loop takes {loop_s / fused_s:.2f}x mlplab's batched fused time")


if __name__ == "__main__":
    main()
