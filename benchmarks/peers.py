"""The study's 36-config grid three ways: through the server, a plain loop, and Ray Tune.

  server  `mlplab.serve api` + `worker` (own Redis DB and key prefix, flushed after), warmed
          with a tiny run; timed from POST /v1/sweeps until the sweep record says done
  loop    the grid one config after another, a standard PyTorch loop as a student writes it
          (tensors in memory, nn.Sequential, Adam, StepLR, shuffled index batches)
  ray     the same loop per trial under tune.Tuner(reuse_actors=True), one CPU per trial,
          as many trials at once as there are cores (needs `pip install 'ray[tune]'`)

The sides run in turn `--repeat` times (a shared machine: load hits them alike); the table
gives each side's median and every repeat, and how many times the server's median it takes.

    python benchmarks/peers.py [--repeat 3] [--subset 12800] [--epochs 2] [--sides server,loop,ray]
    python benchmarks/peers.py --quick          # 4 tiny configs: a smoke check of every side

Fashion-MNIST is read from --data-dir or $MLPLAB_DATA_DIR; without it, mnist-5k stands in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _common as bench  # benchmarks/ is on sys.path when this runs as a script
import httpx
import redis
import torch
from _peer_sides import Outcome, Setup, Split, loop_side, ray_installed, ray_side

from mlpcore.data import load_dataset
from mlpcore.status import TERMINAL

ROOT = Path(__file__).resolve().parent.parent
GRID: dict[str, list[Any]] = {
    "activation": ["sigmoid", "relu", "tanh", "leaky_relu"],
    "lr": [1e-4, 1e-3, 1e-2],
    "step_size": [20, 30, 40],
}
QUICK_GRID: dict[str, list[Any]] = {**GRID, "lr": [1e-3], "step_size": [20]}
# the seed study's best configuration (docs/seed-study.md), one run: --subset 60000 --epochs 20
SEED_BEST: dict[str, list[Any]] = {"activation": ["sigmoid"], "lr": [1e-3], "step_size": [30]}
LABELS = {"server": "server (one sweep)", "loop": "plain loop", "ray": "ray tune (reuse_actors)"}
TARGET = 3.0  # issue 18: the server at least 3x the loop and Ray Tune


def sweep_body(setup: Setup) -> dict[str, Any]:
    """POST /v1/sweeps of the grid, every run on the CPU like the other sides."""
    base = {
        "dataset": setup.dataset,
        "hidden": setup.hidden,
        "batch_size": setup.batch_size,
        "epochs": setup.epochs,
        "optimizer": "adam",
        "scheduler": "step",
        "gamma": 0.1,
        "train_subset": setup.subset,
        "seed": 0,
        "device": "cpu",
    }
    return {"name": "peers", "base": base, "grid": setup.grid}


def poll(fetch: Callable[[], dict[str, Any]], ended: Callable[[dict[str, Any]], bool]) -> Any:
    """fetch() every 0.2 s until ended says so; that last record."""
    while not ended(record := fetch()):
        time.sleep(0.2)
    return record


def warm(http: httpx.Client, setup: Setup) -> None:
    """One tiny run on the same dataset: the worker loads it and warms torch, untimed."""
    spec = {"dataset": setup.dataset, "hidden": [16], "epochs": 1, "train_subset": 256}
    run_id = http.post("/v1/runs", json={**spec, "device": "cpu"}).raise_for_status().json()["id"]
    run = poll(lambda: http.get(f"/v1/runs/{run_id}").json(), lambda r: r["status"] in TERMINAL)
    if run["status"] != "succeeded":
        raise SystemExit(f"server: the warm-up run ended {run['status']}: {run.get('error')}")


def run_sweep(http: httpx.Client, setup: Setup) -> Outcome:
    """POST the grid and poll the sweep until every run has ended."""
    start = time.perf_counter()
    sweep_id = http.post("/v1/sweeps", json=sweep_body(setup)).raise_for_status().json()["id"]
    sweep = poll(lambda: http.get(f"/v1/sweeps/{sweep_id}").json(), lambda s: s["done"])
    seconds = time.perf_counter() - start
    if sweep["counts"].get("succeeded") != len(setup.configs()):
        raise SystemExit(f"server: sweep {sweep_id} ended with {sweep['counts']}")
    params = {"sweep_id": sweep_id, "limit": 500}
    runs = http.get("/v1/runs", params=params).raise_for_status().json()["data"]
    return seconds, statistics.fmean(r["result"]["final_test_accuracy"] for r in runs)


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m mlplab.serve <argv>`, its output to log."""
    with open(log, "wb") as out:
        command = [sys.executable, "-m", "mlplab.serve", *argv, "--no-auth"]
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each (their supervisors stop their children), then wait for them."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def server_side(
    setup: Setup, *, redis_url: str, root: Path | None, workers: int, threads: int
) -> Iterator[Callable[[], Outcome]]:
    """The API and `workers` CPU workers on their own Redis DB, warmed; yields the timed sweep."""
    port, client = bench.free_port(), redis.Redis.from_url(redis_url)
    client.flushdb()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            MLPLAB_REDIS_URL=redis_url,
            MLPLAB_KEY_PREFIX="mlplabpeers",
            MLPLAB_DEVICE="cpu",
            MLPLAB_TORCH_THREADS=str(threads),
            MLPLAB_STATE_DIR=str(Path(tmp) / "state"),  # checkpoints
            MLPLAB_ARTIFACT_DIR=str(Path(tmp) / "artifacts"),  # the runs' trained models
        )
        if root is not None:
            env["MLPLAB_DATA_DIR"] = str(root)
        logs = [Path(tmp) / "worker.log", Path(tmp) / "api.log"]
        procs = [
            start(["worker", "--workers", str(workers)], env, logs[0]),
            start(["api", "--port", str(port)], env, logs[1]),
        ]
        try:
            bench.wait_ready(f"http://127.0.0.1:{port}")
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                warm(http, setup)
                yield lambda: run_sweep(http, setup)
        except (Exception, SystemExit):
            for log in logs:  # what the server said, before the temp dir goes
                print(f"--- {log.name}, last lines:", *log.read_text().splitlines()[-15:], sep="\n")
            raise
        finally:
            stop(procs)
            client.flushdb()


def parse_args() -> Any:
    """The options; --sides as a list."""
    parser = bench.training_parser(__doc__)
    parser.set_defaults(repeat=3)
    parser.add_argument("--subset", type=int, default=12800, help="training samples per run")
    parser.add_argument("--quick", action="store_true", help="4 tiny configs: a smoke check")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MLPLAB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="the server's DB, flushed before and after (load.py uses 12 too: not at once)",
    )
    parser.add_argument("--workers", type=int, default=1, help="the server's CPU workers")
    parser.add_argument(
        "--threads", type=int, help="torch threads per worker (default: the cores split)"
    )
    parser.add_argument(
        "--grid", choices=("study", "seed-best"), default="study", help="the 36 configs, or one"
    )
    parser.add_argument("--sides", default="server,loop,ray", help="which, in this order")
    parser.add_argument(
        "--flush-denormal",
        action="store_true",
        help="flush denormals in the loop and Ray too, as the worker does (default: not)",
    )
    args = parser.parse_args()
    args.sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if unknown := set(args.sides) - set(LABELS):
        parser.error(f"--sides: unknown {', '.join(sorted(unknown))}; known: server,loop,ray")
    return args


def prepare(args: Any) -> tuple[Setup, Split, Path | None]:
    """The grid, the data as the loop sees it, and the data dir the worker gets."""
    dataset, root = bench.pick_dataset(args.data_dir)
    data = load_dataset(dataset, data_dir=root)
    grid = SEED_BEST if args.grid == "seed-best" else GRID
    hidden, subset, epochs = [512, 256, 128], args.subset, args.epochs
    if args.quick:
        grid, hidden, subset, epochs = QUICK_GRID, [32], 512, 1
    data = data.subset(min(subset, len(data.y_train)))
    split = Split(data.features(data.x_train), data.y_train, data.test_features(), data.y_test)
    setup = Setup(
        grid, hidden, epochs, len(data.y_train), dataset, flush_denormal=args.flush_denormal
    )
    return setup, split, root


def report(rounds: dict[str, list[Outcome]], *, skipped: list[str]) -> None:
    """The table: median and every repeat's seconds, the median over the server's, accuracy;
    then whether the server meets issue 18's target against each other side."""
    medians = {side: statistics.median(s for s, _ in outcomes) for side, outcomes in rounds.items()}
    server = medians.get("server")
    ratios = {side: m / server for side, m in medians.items()} if server is not None else {}
    rows = []
    for side, outcomes in rounds.items():
        times = f"{ratios[side]:.2f}x" if side in ratios else "-"
        repeats = " ".join(f"{s:.1f}" for s, _ in outcomes)
        accuracy = statistics.fmean(a for _, a in outcomes)
        rows.append((LABELS[side], medians[side], repeats, times, accuracy))
    columns = [("median s", 10, ".1f"), ("each repeat s", 22, ""), ("vs server", 11, "")]
    print()
    bench.print_table("side", 26, [*columns, ("test acc", 10, ".3f")], rows)
    for side in skipped:
        print(f"{LABELS[side]:<26}not installed (pip install 'ray[tune]')")
    for side, ratio in ratios.items():
        verdict = "ok" if ratio >= TARGET else "MISSED"
        if side != "server":
            print(f"server vs {side}: {ratio:.2f}x (target >= {TARGET:.0f}x: {verdict})")


def main() -> int:
    args = parse_args()
    cores = os.cpu_count() or 1
    threads = args.threads or max(1, cores // args.workers)  # mlplab.serve's default split
    torch.set_flush_denormal(args.flush_denormal)  # before torch starts its threads
    torch.set_num_threads(min(cores, threads * args.workers))  # the cores the workers use
    setup, split, root = prepare(args)
    skipped = [s for s in args.sides if s == "ray" and not ray_installed()]
    print(
        f"{len(setup.configs())} configs, {setup.dataset}, {setup.subset} samples x "
        f"{setup.epochs} epochs, hidden {setup.hidden}, batch {setup.batch_size}, Adam, StepLR; "
        f"{cores} cores: server {args.workers} worker(s) x {threads} threads, loop "
        f"{torch.get_num_threads()} threads, ray {cores} trials x 1 thread; median of "
        f"{args.repeat}; denormals flushed in loop/ray: {'yes' if args.flush_denormal else 'no'}"
    )
    makers = {
        "server": lambda: server_side(
            setup, redis_url=args.redis_url, root=root, workers=args.workers, threads=threads
        ),
        "loop": lambda: loop_side(split, setup),
        "ray": lambda: ray_side(split, setup, cores=cores),
    }
    with contextlib.ExitStack() as stack:
        sides = {s: stack.enter_context(makers[s]()) for s in args.sides if s not in skipped}
        outcomes = bench.alternate(args.repeat, list(sides.values()))
    report(dict(zip(sides, outcomes, strict=True)), skipped=skipped)
    bench.print_machine_load()
    return 0


if __name__ == "__main__":
    sys.exit(main())
