"""Submitting work: check every spec against the server's limits, admit it under the caller's
quotas, record it, plan its fused groups and queue them, in that order, so a refused
submission writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from lab import fusion, stages
from lab.errors import LimitExceeded
from lab.queue import TaskQueue, send_group
from lab.views import sweep_view
from mlpcore.spec import RunSpec
from mlpcore.sweep import SweepSpec, expand_sweep, sweep_size
from runstore import Store


class Limits(Protocol):
    """The server's limits on one submission with the caller's overrides applied
    (api.settings.ApiSettings is one; lab never imports the API)."""

    max_epochs: int
    max_hidden_width: int
    max_hidden_layers: int
    max_batch_size: int
    max_runs_per_sweep: int
    max_queued: int
    max_running: int | None
    max_fused_models: int


def check_limits(spec: RunSpec, *, limits: Limits, where: str = "") -> None:
    """Raise LimitExceeded naming the first server limit the spec goes over."""
    checks = [
        ("epochs", spec.epochs, "max_epochs", limits.max_epochs),
        ("hidden", max(spec.hidden, default=0), "max_hidden_width", limits.max_hidden_width),
        ("hidden", len(spec.hidden), "max_hidden_layers", limits.max_hidden_layers),
        ("batch_size", spec.batch_size, "max_batch_size", limits.max_batch_size),
    ]
    for field, value, limit_name, limit in checks:
        if value > limit:
            what = f"{field}: {value}" if field != "hidden" else f"hidden: {spec.hidden}"
            raise LimitExceeded(f"{where}{what} is over the server limit {limit_name}={limit}")


@contextmanager
def admitted(*, store: Store, owner: str, runs: int, limits: Limits) -> Iterator[None]:
    """Hold room under max_queued for `runs` new runs while the caller writes and queues them.

    Raises runstore.quota.QuotaFull (429, naming the quota and the owner's count) before
    anything is written. The owner's max_running is recorded for the fair-share scheduler.
    """
    with store.quota.lease(owner=owner, runs=runs, limit=limits.max_queued):
        store.fair.set_cap(owner=owner, cap=limits.max_running)
        yield


def submit_run(
    *, spec: RunSpec, owner: str, store: Store, queue: TaskQueue, limits: Limits
) -> dict[str, Any]:
    """Check, record and queue one run; return its record."""
    check_limits(spec, limits=limits)
    with admitted(store=store, owner=owner, runs=1, limits=limits):
        run = store.create_run(owner=owner, spec=spec.model_dump(mode="json"))
        send_group(queue, store, [run["id"]])
    return run


def submit_sweep(
    *, sweep: SweepSpec, owner: str, store: Store, queue: TaskQueue, limits: Limits
) -> dict[str, Any]:
    """Expand and check every configuration, then record and queue all runs; return the sweep."""
    configs = expand_sweep(sweep, max_runs=limits.max_runs_per_sweep)
    for index, config in enumerate(configs):
        where = f"configuration {index} {config.varied}: "
        check_limits(config.spec, limits=limits, where=where)
    for where, spec in stages.stage_specs(sweep):  # a later stage's values, before any run
        check_limits(spec, limits=limits, where=where)
    planned = fusion.plan(
        [c.spec for c in configs], fuse=sweep.fuse, max_models=limits.max_fused_models
    )
    # sweep_size: every run of a grid or random sweep; a staged one's most over all stages,
    # so its later stages have room too
    with admitted(store=store, owner=owner, runs=sweep_size(sweep), limits=limits):
        record, runs = store.create_sweep(
            owner=owner,
            spec=sweep.model_dump(mode="json"),
            metric=sweep.metric,
            mode=sweep.resolved_mode(),
            configs=[(c.varied, c.spec.model_dump(mode="json")) for c in configs],
            groups=planned.groups,
        )
        stages.start(sweep=sweep, record=record, runs=runs, store=store)
        for chunk in planned.chunks:
            send_group(queue, store, [runs[i]["id"] for i in chunk])
    return sweep_view(sweep=record, store=store, runs=runs)
