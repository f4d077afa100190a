"""How much memory a fused group needs, and how to split a group to fit a device."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence

import torch

from mlpcore.spec import RunSpec

FLOAT_BYTES = 4
EVAL_CHUNK = 4096  # rows per evaluation chunk; the trainer evaluates in chunks of at most this
STATE_COPIES = {"adam": 4, "adamw": 4, "sgd": 3}  # param, grad, optimizer state per element
# A CPU pass's working set. The exact CPU path multiplies model by model, so fusing gains only
# the shared batch gathering and per-batch overhead, and loses once a pass's models no longer
# fit in cache (2 cores, 32 MiB L3, 2 threads, one epoch of 6,400 samples, 36 models, medians
# of 3-4 alternated rounds, fused over one by one: 512-256-128 in passes of 1: 1.03x, of 4:
# 0.86x; [256,128]: 1 or 2: 1.07x, 4: 0.96x; [128,64]: 1-4: 1.15-1.18x, 12: 1.04x; [64]: 1: 1.13x,
# 4: 1.42x, 12: 1.34x).
CPU_PASS_BYTES = 4 * 2**20
CPU_PASS_MAX = 16


def layer_widths(spec: RunSpec, num_features: int, num_classes: int) -> list[int]:
    """Input, hidden and output widths of the spec's MLP."""
    return [num_features, *spec.hidden, num_classes]


def parameter_count(spec: RunSpec, num_features: int, num_classes: int) -> int:
    """Weights and biases of one model."""
    widths = layer_widths(spec, num_features, num_classes)
    return sum(w_in * w_out + w_out for w_in, w_out in zip(widths, widths[1:], strict=False))


def model_bytes(spec: RunSpec, num_features: int, num_classes: int) -> int:
    """Bytes one model of a fused group needs: parameters, grads, optimizer state, activations."""
    params = parameter_count(spec, num_features, num_classes) * STATE_COPIES[spec.optimizer]
    widths = layer_widths(spec, num_features, num_classes)
    # training keeps pre- and post-activation outputs of every layer for backward, plus a
    # gathered input batch of its own when seeds differ; evaluation holds one chunk at a time
    train_acts = spec.batch_size * (num_features + 2 * sum(widths[1:]))
    eval_acts = min(EVAL_CHUNK, 10_000) * 2 * max(widths[1:])
    return FLOAT_BYTES * (params + train_acts + eval_acts)


def cpu_models_per_pass(spec: RunSpec, num_features: int, num_classes: int) -> int:
    """How many models a CPU pass trains together: as many as keep their weights, grads and
    optimizer state within CPU_PASS_BYTES, so each batch's pass stays in cache (one for the
    study's 512-256-128 model, 5 for [64]); at least one, at most CPU_PASS_MAX."""
    per_model = parameter_count(spec, num_features, num_classes) * STATE_COPIES[spec.optimizer]
    return max(1, min(CPU_PASS_MAX, CPU_PASS_BYTES // (FLOAT_BYTES * per_model)))


def passes(trained: Collection[int], size: int) -> list[slice]:
    """Slices of neighbouring positions in `trained`, `size` at most each: the passes of a
    fused group's epoch."""
    parts: list[slice] = []
    for i in sorted(trained):
        if parts and parts[-1].stop == i and i - parts[-1].start < size:
            parts[-1] = slice(parts[-1].start, i + 1)
        else:
            parts.append(slice(i, i + 1))
    return parts


def free_bytes(device: torch.device) -> int:
    """Memory available for new tensors on the device (CUDA: free VRAM; CPU: available RAM)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def split_to_fit(
    specs: Sequence[RunSpec],
    *,
    num_features: int,
    num_classes: int,
    budget_bytes: int,
    max_models: int,
) -> list[list[int]]:
    """Indices of `specs` in consecutive chunks that each fit the budget and the model cap."""
    chunks: list[list[int]] = []
    used = 0
    for index, spec in enumerate(specs):
        need = model_bytes(spec, num_features, num_classes)
        if chunks and len(chunks[-1]) < max_models and used + need <= budget_bytes:
            chunks[-1].append(index)
            used += need
        else:
            chunks.append([index])
            used = need
    return chunks
