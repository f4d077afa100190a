"""Load: many clients submitting, many SSE streams following, GETs polling, on one stack.

By default starts its own stack (`python -m mlplab.serve up --no-auth` on a free port, Redis DB
12 by default under its own key prefix; the DB is flushed before and after), or uses a running
one with --url (and --token when auth is on). Then, all at once:
  - --clients threads submit --runs tiny runs in total (synthetic, hidden [8], 2-3 epochs),
    timing each POST /v1/runs;
  - --streams SSE streams (GET /v1/runs/{id}/events) follow runs spread over the submissions to
    their end; each must carry epochs 1..epochs exactly once, in order, then a terminal status;
  - --pollers threads GET /v1/runs/{id} on unfinished runs, timing each, until every run is
    terminal (or --timeout s pass); each final record must hold epochs 1..epochs.
Prints p50/p95/p99 of submit and GET, SSE events/s, totals and PASS or FAIL (exit 1).

    python benchmarks/load.py [--runs 1000] [--clients 20] [--streams 100] [--url URL]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from _common import stop_process, wait_ready
from load_clients import Load  # benchmarks/ is on sys.path when this runs as a script

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "mlplabload"


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(load: Load, wall_s: float) -> bool:
    """Print the table and the verdict; True on PASS."""
    t, args = load.tally, load.args
    submitted = sum(1 for run_id in load.ids if run_id is not None)
    statuses = Counter(t.final.values())
    span = (max(t.stream_span) - min(t.stream_span)) if len(t.stream_span) > 1 else float("nan")
    print(
        f"load: {args.runs} runs from {args.clients} clients, {args.streams} SSE streams, "
        f"{args.pollers} GET pollers; {os.cpu_count()} CPUs; wall {wall_s:.1f} s"
    )
    print(f"{'measure':<28} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for label, values in (("POST /v1/runs", t.submit_ms), ("GET /v1/runs/{id}", t.get_ms)):
        print(
            f"{label:<28} {len(values):>6} {pct(values, 50):>8.1f} {pct(values, 95):>8.1f} "
            f"{pct(values, 99):>8.1f}"
        )
    print(
        f"submitted {submitted}/{args.runs}; terminal {len(t.final)}/{submitted} "
        f"{dict(sorted(statuses.items()))}"
    )
    print(
        f"SSE: {t.streams_done}/{min(args.streams, args.runs)} streams complete "
        f"(at most {t.streams_peak} open at once), {t.events} events in {span:.1f} s = "
        f"{t.events / span if span else 0:.1f} events/s delivered"
    )
    print(f"HTTP errors: {len(t.errors)}; lost/duplicated/misordered events: {len(t.problems)}")
    for line in (t.errors + t.problems)[:20]:
        print(f"  {line[:300]}")
    ok = (
        not t.errors
        and not t.problems
        and submitted == args.runs
        and len(t.final) == args.runs
        and statuses["failed"] == 0
        and t.streams_done == min(args.streams, args.runs)
    )
    print("PASS" if ok else "FAIL")
    return ok


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stack(args: argparse.Namespace, state: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`mlplab up --no-auth` on a free port with its own prefix and limits raised."""
    port = free_port()
    env = dict(
        os.environ,
        MLPLAB_KEY_PREFIX=PREFIX,
        MLPLAB_MAX_QUEUED=str(args.runs + 100),
        MLPLAB_DEVICE=os.environ.get("MLPLAB_DEVICE", "cpu"),
        MLPLAB_TORCH_THREADS="1",
        MLPLAB_STATE_DIR=str(state / "state"),
        MLPLAB_DATA_DIR=str(state / "data"),
        MLPLAB_CHECKPOINT_DIR=str(state / "checkpoints"),
    )
    argv = [
        sys.executable,
        "-m",
        "mlplab.serve",
        "up",
        "--no-auth",
        "--port",
        str(port),
        "--redis-url",
        args.redis_url,
        "--state-dir",
        str(state / "state"),
    ]
    argv += ["--workers", str(args.workers)] if args.workers else []
    with open(state / "serve.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20, help="concurrent submitters")
    parser.add_argument("--streams", type=int, default=100, help="concurrent SSE streams")
    parser.add_argument("--pollers", type=int, default=4, help="concurrent GET clients")
    parser.add_argument("--poll-pause", type=float, default=0.02, help="s between a poller's GETs")
    parser.add_argument("--timeout", type=float, default=600, help="s for every run to end")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--token", default=os.environ.get("MLPLAB_TOKEN"), help="with --url")
    parser.add_argument("--workers", type=int, default=None, help="workers of our own stack")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MLPLAB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="our stack's DB (flushed)",
    )
    parser.add_argument("--log-dir", type=Path, help="keep our stack's log here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    if args.url:
        wait_ready(args.url.rstrip("/"), None)
        load = Load(args.url.rstrip("/"), headers, args)
        return 0 if report(load, load.run()) else 1
    with tempfile.TemporaryDirectory() as tmp:
        state = args.log_dir or Path(tmp)
        state.mkdir(parents=True, exist_ok=True)
        flush(args.redis_url)
        proc, base = start_stack(args, state)
        try:
            wait_ready(base, proc)
            load = Load(base, headers, args)
            ok = report(load, load.run())
        finally:
            stop_process(proc)
            flush(args.redis_url)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
