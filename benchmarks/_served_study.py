"""The seed study (examples/seed_study.yaml) through `mlplab up`: the server as a student
starts it (API, one worker, and its own private redis-server with AOF and a password, since
nothing answers at the Redis URL it is given), the staged sweep submitted as `mlplab study`
submits it, followed to its end over SSE, and its winner asked of the API.

gpu_check.py's `served` section. It needs the server's packages (on a lent GPU box: the
wheels benchmarks/device_prep.py gathers) and a `redis-server` on PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import free_port, stop_process, wait_ready

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "seed_study.yaml"
CORE = ("pydantic", "yaml", "httpx")  # the client's own requirements (pyproject dependencies)


def missing() -> str | None:
    """What stops the served study here (a module of the client, server or worker, as
    mlplab.extras names them, or redis-server), or None."""
    from mlplab.extras import importable, missing_modules

    absent = [name for name in CORE if not importable(name)]
    absent += missing_modules("server", "worker")
    if absent:
        return f"no {', '.join(absent)} here (benchmarks/device_prep.py gathers the wheels)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH"
    return None


def served_seed_study(*, device: str, data_dir: str | None, overrides: list[str]) -> dict:
    """Start `mlplab up` on free ports in a temp state dir, warm it with one tiny run, then
    time the staged study from its POST to its last run's end. `overrides` are `--set`
    strings (FIELD=VALUE) as `mlplab study` takes them."""
    from mlplab.client import Client
    from mlplab.commands import build_submission

    body, _ = build_submission(str(SPEC), [*overrides, f"device={device}"], sweep=True)
    with tempfile.TemporaryDirectory() as tmp, _up(Path(tmp), device, data_dir) as url:
        with Client(url, timeout=60) as client:
            start = time.perf_counter()
            warm = client.submit_run(
                dataset=body["base"]["dataset"], hidden=[16], epochs=1, train_subset=256,
                device=device,
            )  # fmt: skip
            run = client.wait(warm["id"])
            warm_s = time.perf_counter() - start
            if run["status"] != "succeeded":
                raise RuntimeError(f"the warm-up run ended {run['status']}: {run.get('error')}")
            start = time.perf_counter()
            sweep = client.wait(client.submit_sweep(body)["id"], sweep=True)
            seconds = time.perf_counter() - start
            counts = sweep["counts"]
            if counts.get("succeeded", 0) == 0 or set(counts) - {"succeeded", "skipped"}:
                raise RuntimeError(f"the study's sweep ended with {counts}")
            best = client.best(sweep["id"])
    return {"seconds": seconds, "warm_s": warm_s, "counts": counts, "best": best}


@contextlib.contextmanager
def _up(tmp: Path, device: str, data_dir: str | None) -> Iterator[str]:
    """`python -m mlplab.serve up --no-auth` on a free port, pointed at a free Redis port (so
    it starts its own redis-server); its URL once /healthz says ok. Stopped with SIGTERM."""
    port, redis_port = free_port(), free_port()
    env = dict(os.environ, MLPLAB_STATE_DIR=str(tmp / "state"), MLPLAB_DEVICE=device)
    if data_dir:
        env["MLPLAB_DATA_DIR"] = data_dir
    argv = [sys.executable, "-m", "mlplab.serve", "up", "--no-auth", "--port", str(port),
            "--workers", "1", "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
            "--state-dir", str(tmp / "state")]  # fmt: skip
    log = tmp / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, 300, log=log)
        yield url
    except BaseException:
        print("--- mlplab up, last lines:", *log.read_text().splitlines()[-20:], sep="\n")
        raise
    finally:
        stop_process(proc, timeout=60)


def best_line(best: dict[str, Any]) -> str:
    """The winner's configuration as the table shows it."""
    spec = best["config"]["spec"]
    return f"{spec.get('activation')}, lr {spec.get('lr')}, step {spec.get('step_size')}"
