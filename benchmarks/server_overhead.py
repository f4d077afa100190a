"""What the server adds on top of training: dispatch, streaming and read latency.

Starts `mlplab api` and `mlplab worker` itself (Redis DB 13 by default, its own key prefix,
flushed after), warms the worker, then measures with a tiny synthetic spec:
  (a) POST /v1/runs until the first epoch event arrives over SSE, minus that epoch's seconds
  (b) an epoch's end (the `ts` the worker writes into the event) until the SSE event arrives
  (c) GET /v1/runs/{id} latency with 8 concurrent clients

    python benchmarks/server_overhead.py [--runs 20] [--requests 200]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common as bench  # benchmarks/ is on sys.path when this runs as a script
import httpx
import redis
import redis.utils

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 10, "batch_size": 64}
TARGETS = {"a": 100.0, "b": 50.0, "c": 10.0}


def start(part: str, port: int, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    with open(log_dir / f"{part}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "mlplab.serve", part, "--port", str(port), "--no-auth"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def follow_run(http: httpx.Client, t_post: float, run_id: str) -> tuple[float, list[float]]:
    """Read the run's SSE stream: (a) for its first epoch, (b) for every epoch, in ms."""
    first, lags = None, []
    with http.stream("GET", f"/v1/runs/{run_id}/events", timeout=60) as response:
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "epoch":
                now_wall, now = time.time(), time.perf_counter()
                data = json.loads(line[6:])
                lags.append((now_wall - data["ts"]) * 1000)
                if first is None:
                    first = (now - t_post - data["seconds"]) * 1000
    assert first is not None, f"run {run_id} produced no epoch"
    return first, lags


def measure_a_b(http: httpx.Client, runs: int) -> tuple[list[float], list[float]]:
    a, b = [], []
    for _ in range(runs):
        t_post = time.perf_counter()
        run_id = http.post("/v1/runs", json=SPEC).json()["id"]
        first, lags = follow_run(http, t_post, run_id)
        a.append(first)
        b.extend(lags)
    return a, b


def measure_c(base: str, run_id: str, clients: int, requests: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        mine = []
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(requests):
                _, seconds = bench.timed(lambda: http.get(f"/v1/runs/{run_id}").raise_for_status())
                mine.append(seconds * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def report(rows: list[tuple[str, str, list[float]]]) -> None:
    """p50 and p95 of each measure, and whether its p50 meets the target."""
    columns = [("n", 6, "d"), ("p50 ms", 9, ".1f"), ("p95 ms", 9, ".1f"), ("  target (p50)", 0, "")]
    table = []
    for key, label, values in rows:
        p50, p95 = bench.pct(values, 50), bench.pct(values, 95)
        verdict = "ok" if p50 < TARGETS[key] else "MISSED"
        table.append((label, len(values), p50, p95, f"  < {TARGETS[key]:.0f} ms {verdict}"))
    bench.print_table("measure", 46, columns, table)


def main() -> int:
    parser = bench.make_parser(__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200, help="GETs per client in (c)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MLPLAB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"),
        help="our stack's DB (the tests use 13-15, load.py 12)",
    )
    args = parser.parse_args()
    port, prefix = bench.free_port(), "mlplabbench"
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        MLPLAB_REDIS_URL=args.redis_url,
        MLPLAB_KEY_PREFIX=prefix,
        MLPLAB_DEVICE=os.environ.get("MLPLAB_DEVICE", "cpu"),
        MLPLAB_TORCH_THREADS="1",
    )
    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    with tempfile.TemporaryDirectory() as log_dir:
        procs = [start(part, port, env, Path(log_dir)) for part in ("worker", "api")]
        try:
            bench.wait_ready(base)
            with httpx.Client(base_url=base, timeout=30) as http:
                measure_a_b(http, 3)  # warm: dataset cached, torch and connections warm
                a, b = measure_a_b(http, args.runs)
                run_id = http.get("/v1/runs", params={"limit": 1}).json()["data"][0]["id"]
            c = measure_c(base, run_id, clients=8, requests=args.requests)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
            client.flushdb()
    parser_name = "hiredis" if redis.utils.HIREDIS_AVAILABLE else "pure-Python (no hiredis)"
    print(
        f"server overhead, spec {json.dumps(SPEC)}, {os.cpu_count()} CPUs, "
        f"Redis reply parser: {parser_name}"
    )
    report(
        [
            ("a", "(a) POST -> first epoch event, minus training", a),
            ("b", "(b) epoch end -> SSE event at the client", b),
            ("c", "(c) GET /v1/runs/{id}, 8 concurrent clients", c),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
