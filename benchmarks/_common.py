"""What the benchmarks share: their argument parser, the dataset choice, timing and the report.

The scripts run as `python benchmarks/<name>.py`, which puts benchmarks/ on sys.path, so they
import this as `_common`. It imports no torch itself: server_overhead.py runs without it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
# A report column: its title, its width and the format spec of its values (e.g. ".1f").
Column = tuple[str, int, str]


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser described by the first line of the script's docstring."""
    return argparse.ArgumentParser(description=(doc or "").splitlines()[0])


def training_parser(doc: str | None) -> argparse.ArgumentParser:
    """make_parser with what the training benchmarks all take: --data-dir (default
    $MLPLAB_DATA_DIR), --repeat and --epochs."""
    parser = make_parser(doc)
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="time each side alternately this many times; report each's best",
    )
    parser.add_argument("--epochs", type=int, default=2)
    return parser


def pick_dataset(data_dir: str | None) -> tuple[str, Path | None]:
    """Fashion-MNIST when its files are under data_dir, else the offline mnist-5k (said so)."""
    root = Path(data_dir) if data_dir else None
    if root is not None and (root / "FashionMNIST" / "raw").is_dir():
        return "fashion-mnist", root
    print(
        f"note: no Fashion-MNIST under --data-dir/$MLPLAB_DATA_DIR ({root}); "
        "using the offline mnist-5k (4000 training samples) instead"
    )
    return "mnist-5k", root


def torch_line() -> str:
    """The torch thread count and version, for a benchmark's header line."""
    import torch  # here, not at the top: server_overhead.py imports this module without torch

    return f"{torch.get_num_threads()} threads, torch {torch.__version__}"


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """fn's result and the seconds it took (wall clock, perf_counter)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def alternate(repeat: int, sides: Sequence[Callable[[], T]]) -> list[list[T]]:
    """Each side's results over `repeat` rounds, the sides run in turn within a round, so a
    burst of load elsewhere hits them alike."""
    rounds: list[list[T]] = [[] for _ in sides]
    for _ in range(repeat):
        for results, side in zip(rounds, sides, strict=True):
            results.append(side())
    return rounds


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (1..99) of values, inclusive method (a lone value is every
    percentile; none is nan)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def print_table(
    corner: str, label_width: int, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
) -> None:
    """A header line and a line per row: its label left-aligned, then each value right-aligned
    in its column's width and format."""
    print(f"{corner:<{label_width}}" + "".join(f"{t:>{w}}" for t, w, _ in columns))
    for label, *values in rows:
        cells = (format(v, f">{w}{spec}") for (_, w, spec), v in zip(columns, values, strict=True))
        print(f"{label:<{label_width}}" + "".join(cells))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for a server the benchmark starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(
    base: str,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 120,
    *,
    log: Path | None = None,
) -> None:
    """Until GET {base}/healthz answers status ok. SystemExit when proc (if given) exits
    first, when log (if given) shows a supervised child that exited while it started (the
    supervisor would restart it for ever), or after timeout."""
    import httpx  # here: not every script that imports this module needs it

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited early (code {proc.returncode})")
        if log is not None and "exited with code" in log.read_text(errors="replace"):
            raise SystemExit("a child of the server exited while it started (its log above)")
        try:
            if httpx.get(f"{base}/healthz", timeout=5).json()["status"] == "ok":
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"the server at {base} did not become ready in {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (a supervisor stops its children), wait up to timeout, then SIGKILL."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def print_machine_load() -> None:
    """The 1/5/15-minute load averages: a busy shared machine explains a slow figure."""
    print(f"machine load (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
