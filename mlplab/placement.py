"""Where `mlplab up` puts its workers: one per visible GPU, else one on the CPU.

GPUs are counted without torch or CUDA in this process (a CUDA context before the workers
start would be wasted memory on every GPU): CUDA_VISIBLE_DEVICES when set, else the lines
of `nvidia-smi -L`.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def visible_gpus(env: dict[str, str]) -> list[str]:
    """The GPU ids a worker may be pinned to, in order ([] when there is none)."""
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [part.strip() for part in listed.split(",") if part.strip()]
        # CUDA stops at the first invalid entry; "-1" is the usual way to hide every GPU
        return ids[: next((i for i, x in enumerate(ids) if x.startswith("-")), len(ids))]
    return [str(i) for i in range(_nvidia_smi_count())]


def _nvidia_smi_count() -> int:
    """How many GPUs `nvidia-smi -L` lists (0 without the tool or a driver)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return 0
    try:
        done = subprocess.run([binary, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    if done.returncode != 0:
        return 0
    return sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))


def worker_plan(
    *, count: int | None, env: dict[str, str], cores: int | None = None
) -> list[tuple[str, dict[str, str]]]:
    """(name, environment) per worker: gpuK pinned to a GPU (round robin when `count` asks
    for more than there are), or cpuK sharing the cores when there is no GPU."""
    device = env.get("MLPLAB_DEVICE", "auto")
    gpus = [] if device == "cpu" or device == "mps" else visible_gpus(env)
    n = count if count is not None else max(1, len(gpus))
    if gpus:
        return [_gpu_worker(i, gpus, n, env) for i in range(n)]
    threads = str(max(1, (cores or os.cpu_count() or 1) // max(1, n)))
    return [(f"cpu{i + 1}", {"MLPLAB_TORCH_THREADS": threads, **env}) for i in range(n)]


def _gpu_worker(i: int, gpus: list[str], n: int, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The i-th of n GPU workers: pinned to GPU i mod len(gpus); named after its GPU."""
    k = i % len(gpus)
    name = f"gpu{k}" if n <= len(gpus) else f"gpu{k}-{i // len(gpus) + 1}"
    return name, {**env, "CUDA_VISIBLE_DEVICES": gpus[k]}
