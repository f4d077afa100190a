"""How fast this worker trains, measured on the groups it trained, in parameter-samples per
second: a model's parameters times the samples it trained on, summed over a group's models
and epochs, over the group's epoch seconds. The heartbeat advertises it per device; a dry run
(lab/dryrun.py) divides a sweep's cost by it. A moving average, so a busy spell fades."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from mlpcore.callbacks import RunResult
from mlpcore.catalog import parameter_count, train_samples

SMOOTHING = 0.5  # weight of the newest group
_lock = threading.Lock()
_speeds: dict[str, float] = {}  # device -> parameter-samples per second


def note(results: Iterable[RunResult]) -> None:
    """Fold a trained group's epochs into its device's speed."""
    cost: dict[int, float] = {}  # epoch -> parameter-samples trained in it
    seconds: dict[int, float] = {}  # epoch -> the group's wall time for it
    device = None
    for result in results:
        spec, device = result.spec, result.device
        size = parameter_count(dataset=spec.dataset, hidden=spec.hidden) * train_samples(
            dataset=spec.dataset, train_subset=spec.train_subset, val_fraction=spec.val_fraction
        )
        for m in result.epochs[result.shared_until :]:  # shared epochs: trained once, counted once
            cost[m.epoch] = cost.get(m.epoch, 0.0) + size
            seconds[m.epoch] = m.seconds
    total = sum(seconds.values())
    if device is None or total <= 0:
        return
    speed = sum(cost.values()) / total
    with _lock:
        old = _speeds.get(device)
        _speeds[device] = speed if old is None else SMOOTHING * speed + (1 - SMOOTHING) * old


def advertised() -> dict[str, float]:
    """Device -> measured speed, for the heartbeat (empty until a group has trained)."""
    with _lock:
        return {device: round(speed) for device, speed in _speeds.items()}
