"""Every GPU check in one run, one table: CUDA checks, fused vs one by one, matmul peak,
checkpoint cost and the seed study.

    python benchmarks/gpu_check.py [--device cuda] [--data-dir DIR]   # < 8 min on one GPU
    python benchmarks/gpu_check.py --device cpu --quick               # tiny, CI smoke test

Needs only torch and numpy besides the repo (benchmarks/_standalone.py stands in for a
missing pydantic, yaml or torchvision). The seed study trains in-process through mlpcore's
train_group stage by stage, not through `mlplab up` (no Redis or Celery on a lent GPU box).
Fashion-MNIST comes from --data-dir or $MLPLAB_DATA_DIR; without it, random pixels of its
shape stand in (the table says so).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # the repo, not necessarily installed

import _standalone  # noqa: E402  (before mlpcore: it may stand in for mlpcore.spec)

NOTES = _standalone.install()

import _served_study  # noqa: E402  (imports the server's packages only when it runs)
import torch  # noqa: E402
from _seed_study import fashion_mnist, run_seed_study  # noqa: E402
from cuda_checks import CHECKS, pixels  # noqa: E402

from mlpcore import checkpoint  # noqa: E402
from mlpcore.device import configure_process  # noqa: E402
from mlpcore.fused import train_group  # noqa: E402
from mlpcore.memory import parameter_count  # noqa: E402
from mlpcore.spec import RunSpec  # noqa: E402
from mlpcore.trainer import GroupTrainer  # noqa: E402
from worker.checkpoint_writer import BackgroundWriter  # noqa: E402  (stdlib only)

GRID = {"activation": ["sigmoid", "relu", "tanh", "leaky_relu"], "lr": [1e-4, 1e-3, 1e-2],
        "step_size": [20, 30, 40]}  # fmt: skip
FULL = {"hidden": [512, 256, 128], "subset": 12_800, "epochs": 2, "matmul": 8192,
        "seed_epochs": 50, "seed_subset": None}  # fmt: skip
QUICK = {"hidden": [32], "subset": 256, "epochs": 1, "matmul": 512, "seed_epochs": 1,
         "seed_subset": 256}  # fmt: skip
Row = tuple[str, str, str]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> tuple[object, float]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def grid_specs(size: dict, device: torch.device) -> list[RunSpec]:
    base = RunSpec(dataset="fashion-mnist", hidden=size["hidden"], epochs=size["epochs"],
                   train_subset=size["subset"], device=str(device))  # fmt: skip
    return [
        base.model_copy(update=dict(zip(GRID, values, strict=True)))
        for values in itertools.product(*GRID.values())
    ]


def matmul_peak(device: torch.device, n: int) -> float:
    """float32 FLOP/s of a big square matmul (the device's practical GEMM peak)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up
    reps, seconds = 0, 0.0
    while seconds < 0.5:  # long enough to time on a busy machine
        _, took = timed(device, lambda: a @ b)
        reps, seconds = reps + 1, seconds + took
    return 2 * n**3 * reps / seconds


def cuda_rows(device: torch.device) -> list[Row]:
    if device.type != "cuda":
        note = "not on CUDA: the checks' code ran, nothing was watched"
        return [(f"cuda: {c.name}", "ok" if c.ok else "FAIL", note)
                for c in (f(device) for f in CHECKS[:2])]  # fmt: skip
    return [
        (f"cuda: {c.name}", "ok" if c.ok else "FAIL", c.detail) for c in (f(device) for f in CHECKS)
    ]


def grid_rows(data, size: dict, device: torch.device, peak: float) -> tuple[list[Row], float]:
    specs = grid_specs(size, device)
    train_group(specs[:1], data=data)  # warm-up: kernels, caches
    _, fused = timed(device, lambda: train_group(specs, data=data, share=False))
    _, shared = timed(device, lambda: train_group(specs, data=data))
    _, solo = timed(device, lambda: [train_group([s], data=data) for s in specs])
    samples = size["subset"] * size["epochs"]
    per_model = fused / (len(specs) * size["epochs"])
    weights = parameter_count(specs[0], 784, 10)
    flops = 6 * weights * samples * len(specs) / fused  # forward 2, backward 4 per weight
    return [
        (
            "36-config grid, one fused group",
            f"{fused:.2f} s",
            f"{size['epochs']} epochs x {size['subset']} samples, no shared prefixes",
        ),
        (
            "36-config grid, shared prefixes",
            f"{shared:.2f} s",
            f"{solo / shared:.2f}x one by one: the step sizes' common epochs trained once",
        ),
        (
            "36-config grid, one by one",
            f"{solo:.2f} s",
            f"fused {solo / fused:.2f}x faster (target >= 10x on a GPU)",
        ),
        (
            "epoch time per model (fused)",
            f"{per_model * 1e3:.1f} ms",
            f"{flops / peak:.1%} of the matmul peak",
        ),
    ], fused


def checkpoint_rows(data, size: dict, device: torch.device, fused_s: float) -> list[Row]:
    """The training thread's share (a CPU copy per epoch), the background write of one state,
    and the grid trained again writing every epoch's state in the background."""
    specs = grid_specs(size, device)
    trainer = GroupTrainer(specs, [None] * len(specs), data.subset(size["subset"]), device)
    state, copy_s = timed(device, trainer.state_dict)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "group.pt"
        _, write_s = timed(device, lambda: checkpoint.save(state, path))
        mb = path.stat().st_size / 2**20
        writer = BackgroundWriter(lambda s: checkpoint.save(s, path), name="gpu-check")
        _, with_s = timed(
            device,
            lambda: train_group(specs, data=data, on_checkpoint=writer.submit, share=False),
        )
        writer.close()
    epoch_s = fused_s / size["epochs"]
    return [
        (
            "checkpoint: copy on the training thread",
            f"{copy_s / epoch_s:.2%}",
            f"{copy_s * 1e3:.0f} ms per epoch of {epoch_s:.2f} s",
        ),
        (
            "checkpoint: one write (background)",
            f"{write_s:.2f} s",
            f"{mb:.0f} MiB; at most every 30 s by default",
        ),
        (
            "checkpoint: every epoch, end to end",
            f"{with_s / fused_s - 1:+.1%}",
            f"{with_s:.2f} s vs {fused_s:.2f} s without",
        ),
    ]


def cadence_rows(data, size: dict, device: torch.device, fused_s: float) -> list[Row]:
    """The grid trained for long enough to span two of the worker's checkpoint intervals
    (MLPLAB_CHECKPOINT_EVERY_S, default 30 s), writing as the worker does (the newest state
    once one is due, from a background thread), alternated twice with training that writes
    nothing; the best of each. And the same cost from what it is made of, which a machine
    whose speed drifts between runs cannot blur: the training thread's copy per epoch, and
    the CPU seconds the writer's thread spends per write over the interval's CPU seconds."""
    every_s = float(os.environ.get("MLPLAB_CHECKPOINT_EVERY_S", "30"))
    epoch_s = fused_s / size["epochs"]
    epochs = max(3, math.ceil(2.2 * every_s / epoch_s))
    specs = [s.model_copy(update={"epochs": epochs}) for s in grid_specs(size, device)]
    trainer = GroupTrainer(specs, [None] * len(specs), data.subset(size["subset"]), device)
    copy_s = sorted(timed(device, trainer.state_dict)[1] for _ in range(3))[1]
    cpu: list[float] = []  # the writer thread's CPU seconds, per write
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "group.pt"

        def write(state: dict) -> None:
            start = time.thread_time()
            checkpoint.save(state, path)
            cpu.append(time.thread_time() - start)

        def side(writes: bool) -> float:
            writer = BackgroundWriter(write, name="gpu-check")
            last = [time.monotonic()]

            def offer(state: dict) -> None:
                if time.monotonic() - last[0] >= every_s:
                    last[0] = time.monotonic()
                    writer.submit(state)

            hook = offer if writes else None
            _, seconds = timed(
                device, lambda: train_group(specs, data=data, on_checkpoint=hook, share=False)
            )
            writer.close()
            return seconds

        rounds = [(side(False), side(True)) for _ in range(2)]
    without, with_ = min(r[0] for r in rounds), min(r[1] for r in rounds)
    per_write = sum(cpu) / max(len(cpu), 1)
    share = copy_s / epoch_s + per_write / (every_s * torch.get_num_threads())
    return [
        (
            f"checkpoint: every {every_s:g} s, end to end",
            f"{with_ / without - 1:+.1%}",
            f"{with_:.1f} s vs {without:.1f} s without, {epochs} epochs, "
            f"{len(cpu) / 2:.0f} writes a run (target < 3%)",
        ),
        (
            f"checkpoint: every {every_s:g} s, its parts",
            f"{share:.2%}",
            f"copy {copy_s * 1e3:.0f} ms per {epoch_s:.2f} s epoch + writer "
            f"{per_write:.2f} CPU s per write over {every_s:g} s x {torch.get_num_threads()} "
            "threads (target < 3%)",
        ),
    ]


def seed_rows(data, size: dict, device: torch.device, real: bool) -> list[Row]:
    overrides = {"epochs": size["seed_epochs"], "train_subset": size["seed_subset"]}
    if size is QUICK:
        overrides["hidden"] = size["hidden"]
    study, seconds = timed(device, lambda: run_seed_study(data, str(device), **overrides))
    best = study["best"]
    what = "Fashion-MNIST" if real else "random pixels (no Fashion-MNIST found)"
    stages = " + ".join(f"{s:.1f}" for s in study["stage_seconds"])
    return [
        (
            "seed study, staged, in-process",
            f"{seconds:.1f} s",
            f"{study['runs']} runs x "
            f"{size['seed_epochs']} epochs, {what}; stages {stages} s (target < 20 s on a GPU)",
        ),
        (
            "seed study: best",
            f"{study['loss']:.4f}",
            f"{best.activation}, lr {best.lr}, step {best.step_size} (final train loss)",
        ),
    ]


def served_rows(data_dir: str | None, size: dict, device: torch.device, real: bool) -> list[Row]:
    label = "seed study through `mlplab up`"
    why = _served_study.missing()
    if why is not None:
        return [(label, "skipped", why)]
    quick = size is QUICK
    if not quick and not real:
        return [(label, "skipped", "no Fashion-MNIST under --data-dir / $MLPLAB_DATA_DIR")]
    overrides = ["dataset=synthetic", f"hidden={size['hidden']}", "epochs=1",
                 "train_subset=256"] if quick else []  # fmt: skip
    try:
        study = _served_study.served_seed_study(
            device=str(device), data_dir=data_dir, overrides=overrides
        )
    except (Exception, SystemExit) as exc:  # the table says what broke; the log is above it
        return [(label, "FAIL", f"{type(exc).__name__}: {exc}")]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(study["counts"].items()))
    what = "synthetic (quick)" if quick else "Fashion-MNIST"
    return [
        (
            label,
            f"{study['seconds']:.1f} s",
            f"POST to last run's end, {counts}, {what}; API + 1 worker + its own redis-server, "
            f"warmed by one tiny run ({study['warm_s']:.1f} s); target < 20 s on a GPU",
        ),
        (
            "seed study through `mlplab up`: best",
            f"{study['best']['value']:.4f}",
            f"{_served_study.best_line(study['best'])} ({study['best']['metric']})",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument(
        "--only", default="cuda,grid,checkpoint,seed,served", help="sections to run"
    )
    args = parser.parse_args()
    configure_process()
    device, size, only = (
        torch.device(args.device),
        QUICK if args.quick else FULL,
        args.only.split(","),
    )
    real = None if args.quick else fashion_mnist(args.data_dir, device)
    data = real or pixels(
        60_000 if not args.quick else 512, device, n_test=10_000 if not args.quick else 256
    )
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"gpu_check on {name}, torch {torch.__version__}{' (quick)' if args.quick else ''}")
    for note in NOTES:
        print(f"note: {note}")
    peak = matmul_peak(device, size["matmul"])
    failed = show([("matmul peak (float32)", f"{peak / 1e12:.2f} TFLOP/s", f"{size['matmul']}^2")])
    failed |= show(cuda_rows(device)) if "cuda" in only else False
    fused_s = 0.0
    if {"grid", "checkpoint", "cadence"} & set(only):
        grid, fused_s = grid_rows(data, size, device, peak)
        failed |= show(grid)
    failed |= show(checkpoint_rows(data, size, device, fused_s)) if "checkpoint" in only else False
    failed |= show(cadence_rows(data, size, device, fused_s)) if "cadence" in only else False
    failed |= show(seed_rows(data, size, device, real is not None)) if "seed" in only else False
    if "served" in only:
        failed |= show(served_rows(args.data_dir, size, device, real is not None))
    if failed:
        sys.exit(1)


def show(rows: list[Row]) -> bool:
    """Print rows of the table as they come (a run cut short keeps what it measured); True
    if one failed."""
    for label, value, detail in rows:
        print(f"{label:<42}{value:>16}  {detail}", flush=True)
    return any(value == "FAIL" for _, value, _ in rows)


if __name__ == "__main__":
    main()
