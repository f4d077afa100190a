"""Whether the live workers can serve a submission: each advertises in its heartbeat the
datasets that load where it runs and the devices it can train on (worker/heartbeat.py).

A submission that none of them can serve is refused (422) naming what is missing. With no
worker up, or one that does not say what it serves (an older version), it is queued as
before: a worker that can may yet come.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lab.errors import Unservable
from mlpcore.spec import DATASETS, RunSpec
from runstore import Store


def check_servable(specs: Iterable[RunSpec], *, store: Store) -> None:
    """Raise Unservable for the first dataset and device pair no live worker serves."""
    workers = store.live_workers()
    if not workers or any("datasets" not in w or "devices" not in w for w in workers):
        return
    for dataset, device in dict.fromkeys((s.dataset, s.device) for s in specs):
        if not any(_serves(w, dataset, device) for w in workers):
            raise Unservable(_missing(workers, dataset, device))


def _serves(worker: dict[str, Any], dataset: str, device: str) -> bool:
    """Whether this worker has the dataset and the device."""
    return dataset in worker["datasets"] and has_device(worker["devices"], device)


def has_device(devices: list[str], device: str) -> bool:
    """Whether a worker with these devices trains a spec asking for `device` (auto: on its
    own device; a bare cuda: its first GPU)."""
    if device == "auto":
        return True
    return {"cuda": "cuda:0"}.get(device, device) in devices


def _missing(workers: list[dict[str, Any]], dataset: str, device: str) -> str:
    """What no live worker has, and what they have instead."""
    datasets = {d for w in workers for d in w["datasets"]}
    devices = {d for w in workers for d in w["devices"]}
    if dataset not in datasets:
        have = [d for d in DATASETS if d in datasets]
        return f"no live worker has dataset {dataset}; workers have: {', '.join(have)}"
    if not has_device(sorted(devices), device):
        return f"no live worker has device {device}; workers have: {', '.join(sorted(devices))}"
    return f"no live worker has both dataset {dataset} and device {device}; " + "; ".join(
        f"{w['hostname']}: {', '.join(w['datasets'])} on {', '.join(w['devices'])}" for w in workers
    )
