"""Submitting work: claim its Idempotency-Key, check every spec against the server's limits
and the live workers, admit it under the caller's quotas (max_queued, the max_param_epochs
budget), record it, plan its fused groups and queue them, in that order, so a refused
submission writes nothing and a retried one finds what the first wrote."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from lab import dryrun, fusion, idempotency, learned, stages
from lab.budget import run_cost, sweep_cost
from lab.capability import check_servable
from lab.errors import LimitExceeded
from lab.queue import TaskQueue, send_group
from lab.views import sweep_view
from mlpcore.spec import RunSpec
from mlpcore.sweep import SweepConfig, SweepSpec, expand_sweep, sweep_size, varied_fields
from runstore import NotFound, Store


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
    max_param_epochs: int
    max_fused_models: int
    max_artifact_bytes: int


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
def admitted(*, store: Store, owner: str, runs: int, cost: int, limits: Limits) -> Iterator[None]:
    """Hold room under max_queued for `runs` new runs, and under max_param_epochs for their
    `cost`, while the caller writes and queues them.

    Raises runstore.quota.QuotaFull or BudgetFull (429, naming the quota and the owner's
    count) before anything is written. The owner's max_running is recorded for the
    fair-share scheduler, their max_artifact_bytes for the workers' model evictions.
    """
    budget = limits.max_param_epochs
    with store.quota.lease(
        owner=owner, runs=runs, limit=limits.max_queued, cost=cost, budget=budget
    ):
        store.fair.set_cap(owner=owner, cap=limits.max_running)
        store.models.set_limit(owner=owner, limit=limits.max_artifact_bytes)
        yield


def submit_run(
    *,
    spec: RunSpec,
    owner: str,
    store: Store,
    queue: TaskQueue,
    limits: Limits,
    key: str | None = None,
    key_wait_s: float = 10.0,
) -> dict[str, Any]:
    """Check, record and queue one run; return its record (for an Idempotency-Key used
    before: the first submission's record as it is now)."""
    body = spec.model_dump(mode="json")
    with idempotency.once(
        store=store, owner=owner, key=key, kind="run", body=body, wait_s=key_wait_s
    ) as claim:
        if claim.first_id is not None:
            return _first(store.get_run(claim.first_id), "run", claim.first_id)
        check_limits(spec, limits=limits)
        check_servable([spec], store=store)
        with admitted(store=store, owner=owner, runs=1, cost=run_cost(spec), limits=limits):
            run = store.create_run(owner=owner, spec=body)
            claim.created(run["id"])
            send_group(queue, store, [run["id"]])
    return run


def submit_sweep(
    *,
    sweep: SweepSpec,
    owner: str,
    store: Store,
    queue: TaskQueue,
    limits: Limits,
    key: str | None = None,
    key_wait_s: float = 10.0,
) -> dict[str, Any]:
    """Expand and check every configuration, then record and queue all runs; return the
    sweep (for an Idempotency-Key used before: the first submission's sweep as it is now)."""
    body = sweep.model_dump(mode="json")
    with idempotency.once(
        store=store, owner=owner, key=key, kind="sweep", body=body, wait_s=key_wait_s
    ) as claim:
        if claim.first_id is not None:
            first = _first(store.get_sweep(claim.first_id), "sweep", claim.first_id)
            return sweep_view(sweep=first, store=store)
        configs, planned = checked_sweep(sweep, store=store, limits=limits)
        specs = [c.spec for c in configs]
        # sweep_size: every run of a grid or random sweep; a staged one's most over all
        # stages, so its later stages have room too (and its cost, their costliest runs)
        runs_at_most, cost = sweep_size(sweep), sweep_cost(sweep, specs)
        with admitted(store=store, owner=owner, runs=runs_at_most, cost=cost, limits=limits):
            record, runs = store.create_sweep(
                owner=owner,
                spec=body,
                metric=sweep.metric,
                mode=sweep.resolved_mode(),
                configs=[(c.varied, c.spec.model_dump(mode="json")) for c in configs],
                groups=planned.groups,
                repeats=[c.repeat for c in configs],
                varied=varied_fields(sweep),
            )
            claim.created(record["id"])  # a retry finds it from here on, queued or not
            stages.start(sweep=sweep, record=record, runs=runs, store=store)
            for chunk in planned.chunks:
                send_group(queue, store, [runs[i]["id"] for i in chunk])
    return sweep_view(sweep=record, store=store, runs=runs)


def checked_sweep(
    sweep: SweepSpec, *, store: Store, limits: Limits
) -> tuple[list[SweepConfig], fusion.Plan]:
    """Expand the sweep, check every configuration (a later stage's values too) against the
    limits and the live workers, and plan its fused groups; writes nothing."""
    points = None
    if learned.is_learned(sweep.strategy):  # the first batch, asked here (torch-free)
        batch = sweep.batch or min(sweep.n or 1, limits.max_fused_models)
        if sweep_size(sweep) <= limits.max_runs_per_sweep:  # else expand_sweep says so
            points = learned.first_points(sweep, batch=batch)
    configs = expand_sweep(sweep, max_runs=limits.max_runs_per_sweep, points=points)
    specs = [c.spec for c in configs]
    for index, config in enumerate(configs):
        where = f"configuration {index} {config.varied}: "
        check_limits(config.spec, limits=limits, where=where)
    for where, spec in stages.stage_specs(sweep):  # a later stage's values, before any run
        check_limits(spec, limits=limits, where=where)
    check_servable(specs + [spec for _, spec in stages.stage_specs(sweep)], store=store)
    return configs, fusion.plan(specs, fuse=sweep.fuse, max_models=limits.max_fused_models)


def dry_run(*, sweep: SweepSpec, store: Store, limits: Limits) -> dict[str, Any]:
    """How the sweep would train (lab/dryrun.py), checked as a submission is; nothing written."""
    configs, planned = checked_sweep(sweep, store=store, limits=limits)
    return dryrun.describe(sweep, configs, planned, store.live_workers())


def _first(record: dict[str, Any] | None, kind: str, record_id: str) -> dict[str, Any]:
    """The record an Idempotency-Key names; NotFound if it is gone."""
    if record is None:
        raise NotFound(f"the {kind} {record_id} this Idempotency-Key made no longer exists")
    return record
