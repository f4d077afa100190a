"""Run the seed study (examples/seed_study.yaml) on an mlplab server and write its results into
docs/seed-study.md (between the results markers) and docs/img/seed-study-stage<N>.png.

    MLPLAB_DATA_DIR=DIR python docs/run_seed_study.py          # starts `mlplab up` for the run
    python docs/run_seed_study.py --url http://127.0.0.1:8000  # a server already running
    python docs/run_seed_study.py --set dataset=mnist-5k       # any spec override
    python docs/run_seed_study.py --sweep ID                   # re-render a finished study
    python docs/run_seed_study.py --rerun                      # examples/seed_study_val.yaml

DIR holds FashionMNIST/raw/*-ubyte. A server this script starts listens on a free port, keeps
its keys under the prefix `seedstudy` in --redis-url's DB, and is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seed_rerun  # noqa: E402

from api.plots import render_loss_curves  # noqa: E402
from mlplab.client import Client  # noqa: E402
from mlplab.commands import build_submission  # noqa: E402

DOC = ROOT / "docs" / "seed-study.md"
IMG = ROOT / "docs" / "img"
SPEC = ROOT / "examples" / "seed_study.yaml"
START, END = "<!-- results:start -->", "<!-- results:end -->"
STUDY = {"config": "activation=sigmoid lr=0.001 step_size=30", "loss": 0.1734, "runtime": 210.87}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="use this server instead of starting one")
    p.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/12",
        help="Redis for a server this script starts (default %(default)s)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a spec field (repeatable)",
    )
    p.add_argument("--sweep", help="render this finished study instead of running one")
    p.add_argument(
        "--rerun",
        action="store_true",
        help="run (or, with --sweep, render) the rerun with a val split and repeats",
    )
    p.add_argument("--timeout-h", type=float, default=24.0, help="give up after (hours)")
    return p.parse_args()


def start_server(redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """`mlplab up --no-auth` on a free port; its process and URL once a worker is alive."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, MLPLAB_KEY_PREFIX="seedstudy", PYTHONPATH=str(ROOT))
    argv = [
        sys.executable,
        "-m",
        "mlplab.serve",
        "up",
        "--no-auth",
        "--port",
        str(port),
        "--redis-url",
        redis_url,
    ]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json()["status"] == "ok":
                return proc, url
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    raise SystemExit("the server did not get ready in 5 minutes")


def run_study(client: Client, overrides: list[str], timeout_s: float, spec: Path = SPEC) -> str:
    """Submit the study and follow it to its end, printing each stage as it moves on."""
    body, _ = build_submission(str(spec), overrides, sweep=True)
    record = client.submit_sweep(body)
    print(
        f"study {record['id']}: {body['base'].get('dataset')}, {body['base'].get('epochs')} epochs",
        flush=True,
    )
    deadline = time.monotonic() + timeout_s
    for event in client.stream(record["id"], sweep=True):
        if event.event == "stage":
            print(f"  stage {event.data['current'] + 1}: {event.data['status']}", flush=True)
        if time.monotonic() > deadline:
            raise SystemExit(f"study {record['id']} still running after {timeout_s:.0f} s")
    return record["id"]


def fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def stage_table(
    stage: dict[str, Any], runs: dict[str, dict[str, Any]], fields: list[str]
) -> list[str]:
    """A markdown table of one stage (configuration: the values of `fields`); winners
    starred, runs an earlier stage trained marked kept."""
    lines = [
        "| | configuration | status | final train loss | final test loss | "
        "test accuracy | runtime (s) | fused with |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run_id in stage["run_ids"]:
        run = runs[run_id]
        result = run.get("result") or {}
        config = " ".join(f"{f}={run['spec'][f]}" for f in fields)
        if run_id in stage.get("kept", []):
            config += " (kept)"
        mates = (
            sum(r.get("fused_group") == run.get("fused_group") for r in runs.values())
            if run.get("fused_group")
            else 1
        )
        lines.append(
            f"| {'★' if run_id in stage['winners'] else ''} | {config} | "
            f"{run['status']} | {fmt(result.get('final_train_loss'))} | "
            f"{fmt(result.get('final_test_loss'))} | "
            f"{fmt(result.get('final_test_accuracy'))} | "
            f"{fmt(result.get('runtime_s'), 1)} | {mates} models |"
        )
    return lines


def wall_clock(sweep: dict[str, Any], runs: list[dict[str, Any]]) -> float:
    """Seconds from submission to the last run's end."""
    ends = [r["finished_at"] for r in runs if r.get("finished_at")]
    return _ts(max(ends)) - _ts(sweep["created_at"]) if ends else 0.0


def _ts(value: Any) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else float(value)


def summary(sweep: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """Setup, our winner against the study's, and the runtimes."""
    spec = runs[0]["spec"]
    best = sweep["best"]
    winner = next(r for r in runs if r["id"] == best["run_id"]) if best else None
    config = " ".join(f"{f}={best['config']['spec'][f]}" for f in sweep["varied"]) if best else "–"
    total = wall_clock(sweep, runs)
    devices = sorted({r.get("device") or "?" for r in runs})
    configs = sum(len(stage["run_ids"]) for stage in sweep["stages"] or []) or len(runs)
    kept = configs - len(runs)
    return [
        f"Dataset **{spec['dataset']}**, hidden {spec['hidden']}, {spec['epochs']} epochs, "
        f"batch size {spec['batch_size']}, seed {spec['seed']}; device {', '.join(devices)}; "
        f"{configs} configurations, {len(runs)} runs trained"
        + (f" ({kept} kept from an earlier stage)" if kept else "")
        + f" (sweep `{sweep['id']}`).",
        "",
        "| | configuration | final train loss | runtime (s) |",
        "|---|---|---|---|",
        f"| the study | {STUDY['config']} | {STUDY['loss']:.4f} | {STUDY['runtime']:.2f} |",
        f"| mlplab | {config} | {fmt(best['value'] if best else None)} | "
        f"{fmt((winner or {}).get('result', {}).get('runtime_s'), 2)} |",
        "",
        f"The whole study took {total:.0f} s wall-clock: {total / max(1, configs):.1f} s per "
        f"configuration, {total / max(1, len(runs)):.1f} s per run trained (runs of a stage "
        "train fused, so a run's runtime is its group's).",
        *(["", f"The study ended early: {sweep['end_reason']}"] if sweep["end_reason"] else []),
    ]


def render(client: Client, sweep_id: str) -> str:
    """The results section and the per-stage plots."""
    sweep = client.sweep(sweep_id)
    runs = client.sweep_runs(sweep_id)
    by_id = {r["id"]: r for r in runs}
    lines = [START, "", "### Result", "", *summary(sweep, runs)]
    IMG.mkdir(parents=True, exist_ok=True)
    for number, stage in enumerate(sweep["stages"], start=1):
        lines += ["", f"### Stage {number}: {stage['field']} in {stage['values']}", ""]
        if not stage["run_ids"]:
            lines.append("Not run.")
            continue
        lines += stage_table(stage, by_id, [s["field"] for s in sweep["stages"][:number]])
        png = render_loss_curves(
            [by_id[r] for r in stage["run_ids"]],
            title=f"stage {number}: {stage['field']}",
            label_fields=sweep["varied"],
            best_run_id=(stage["winners"] or [None])[0],
        )
        (IMG / f"seed-study-stage{number}.png").write_bytes(png)
        lines += ["", f"![stage {number}](img/seed-study-stage{number}.png)"]
    return "\n".join([*lines, "", END])


def write_doc(section: str, start: str = START, end: str = END) -> None:
    """Replace a results section of docs/seed-study.md."""
    text = DOC.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    DOC.write_text(pattern.sub(lambda _: section, text))


def main() -> int:
    args = parse_args()
    proc, url = None, args.url
    if url is None:
        proc, url = start_server(args.redis_url)
    try:
        with Client(url, timeout=60) as client:
            spec = SPEC.with_name(seed_rerun.SPEC_NAME) if args.rerun else SPEC
            timeout_s = args.timeout_h * 3600
            sweep_id = args.sweep or run_study(client, args.overrides, timeout_s, spec)
            if args.rerun:
                runs = client.sweep_runs(sweep_id)
                section = seed_rerun.render(
                    client.sweep(sweep_id), runs, wall_clock(client.sweep(sweep_id), runs)
                )
                write_doc(section, seed_rerun.START, seed_rerun.END)
            else:
                write_doc(render(client, sweep_id))
        print(f"wrote {DOC.relative_to(ROOT)}")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
