"""Prometheus metrics for GET /metrics: one registry per app, request timing, Redis gauges.

Each app owns a `CollectorRegistry` (tests build many apps; the global registry would mix
them). Two kinds of metrics live in it:

- in-process: `mlplab_http_request_duration_seconds{method, route, status}`, timed by the
  `RequestTimer` middleware. `route` is the matched route's template (`/v1/runs/{run_id}`),
  never the raw URL, so the label set stays bounded; a request no route handled (an unknown
  path, a body refused before routing with 413/415) is `unmatched`.
  An SSE stream counts as one request lasting as long as the stream.
- read from Redis at scrape time by `RunstoreCollector`, so every API process reports the
  same totals: queued and running runs (per user only when `per_user_labels` says so), live
  workers, and the running totals the worker's Lua keeps in the `{p}:stats` hash (epochs
  trained, runs finished per status, run durations). When Redis does not answer, the scrape
  still succeeds with `mlplab_redis_up 0` and the in-process metrics only.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import LOCAL_USER
from api.settings import ApiSettings
from mlpcore.status import ACTIVE, TERMINAL
from runstore import Store

log = logging.getLogger(__name__)

# Upper bounds (seconds) of the run-duration buckets the worker's Lua counts into {p}:stats.
DURATION_BOUNDS = (1, 5, 15, 60, 300, 900, 3600, 14400, 86400)
# Request methods kept as labels; anything else is `other` (clients choose the method).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def per_user_labels(settings: ApiSettings) -> bool:
    """Whether /metrics labels runs by user: the setting, else on exactly when auth is on.

    With auth on, user names are a small set an admin manages, so a `user` label is bounded;
    with auth off every run belongs to `local` and the label says nothing.
    """
    return settings.auth if settings.metrics_per_user is None else settings.metrics_per_user


def metrics_protected(settings: ApiSettings) -> bool:
    """Whether /metrics needs credentials: only when auth is on and it names users."""
    return settings.auth and per_user_labels(settings)


@dataclass
class Snapshot:
    """What one scrape read from Redis."""

    runs: dict[str, Counter[str]]  # owner -> status -> count (queued and running only)
    registered: list[str]  # user names of the users index
    workers: int
    stats: dict[str, str]


def read_snapshot(store: Store) -> Snapshot:
    """Active run counts per owner, live workers and the stats hash, in a few round trips.

    Only the owners' `active` sets are read (queued and running ids, plus finished ones not
    yet pruned, skipped here), never the index of every run.
    """
    client, keys = store.client, store.keys
    pipe = client.pipeline(transaction=False)
    pipe.zrange(keys.users(), 0, -1)
    pipe.hgetall(keys.stats())
    registered, stats = pipe.execute()
    owners = sorted({*registered, LOCAL_USER})  # local: every run when auth is off
    for owner in owners:
        pipe.smembers(keys.owner_active(owner))
    id_sets = pipe.execute()
    pairs = [(owner, run_id) for owner, ids in zip(owners, id_sets, strict=True) for run_id in ids]
    for _, run_id in pairs:
        pipe.hget(keys.run(run_id), "status")
    statuses = pipe.execute() if pairs else []
    runs: dict[str, Counter[str]] = {owner: Counter() for owner in owners}
    for (owner, _), status in zip(pairs, statuses, strict=True):
        if status in ACTIVE:
            runs[owner][status] += 1
    return Snapshot(
        runs=runs, registered=list(registered), workers=len(store.live_workers()), stats=stats
    )


class RunstoreCollector(Collector):
    """Gauges and totals read from Redis each time Prometheus scrapes."""

    def __init__(self, store: Callable[[], Store], *, per_user: bool) -> None:
        self._store = store  # a getter: the app opens its store at startup, after we exist
        self._per_user = per_user

    def describe(self) -> list[Metric]:
        """Nothing to declare up front (registering must not touch Redis)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every Redis-backed metric, or only `mlplab_redis_up 0` when Redis fails."""
        try:
            snapshot = read_snapshot(self._store())
        except RedisError as exc:
            log.warning("metrics: Redis unreachable: %s", exc)
            yield GaugeMetricFamily("mlplab_redis_up", "Whether Redis answered this scrape", 0)
            return
        yield GaugeMetricFamily("mlplab_redis_up", "Whether Redis answered this scrape", 1)
        yield from run_gauges(snapshot, per_user=self._per_user)
        yield GaugeMetricFamily("mlplab_workers", "Workers with a live heartbeat", snapshot.workers)
        yield from stats_metrics(snapshot.stats)


def run_gauges(snapshot: Snapshot, *, per_user: bool) -> Iterable[Metric]:
    """`mlplab_runs{status}` and, with per_user, `mlplab_user_runs{user, status}`."""
    total: Counter[str] = Counter()
    for counts in snapshot.runs.values():
        total.update(counts)
    runs = GaugeMetricFamily("mlplab_runs", "Runs queued or running", labels=["status"])
    for status in ACTIVE:
        runs.add_metric([status], total[status])
    yield runs
    if not per_user:
        return
    user_runs = GaugeMetricFamily(
        "mlplab_user_runs", "Runs queued or running, per user", labels=["user", "status"]
    )
    for owner, counts in snapshot.runs.items():
        if owner in snapshot.registered or counts:  # `local` only when it has work
            for status in ACTIVE:
                user_runs.add_metric([owner, status], counts[status])
    yield user_runs


def stats_metrics(stats: dict[str, str]) -> Iterable[Metric]:
    """Epochs trained, runs finished per status and the run-duration histogram."""
    yield CounterMetricFamily(
        "mlplab_epochs_trained", "Epochs trained by all runs", _number(stats.get("epochs"))
    )
    finished = CounterMetricFamily(
        "mlplab_runs_finished", "Runs that reached a final status", labels=["status"]
    )
    for status in sorted(TERMINAL):
        finished.add_metric([status], _number(stats.get(f"runs:{status}")))
    yield finished
    yield duration_histogram(stats)


def duration_histogram(stats: dict[str, str]) -> HistogramMetricFamily:
    """`mlplab_run_duration_seconds` from the cumulative `duration_le:<bound>` fields."""
    counts: dict[float, float] = {}
    for field, value in stats.items():
        if field.startswith("duration_le:"):
            try:
                counts[float(field.removeprefix("duration_le:"))] = _number(value)
            except ValueError:
                continue
    count = _number(stats.get("duration_count"))
    buckets = [(floatToGoString(b), counts.get(float(b), 0.0)) for b in DURATION_BOUNDS]
    return HistogramMetricFamily(
        "mlplab_run_duration_seconds",
        "Seconds from a run's start to its final status",
        buckets=[*buckets, ("+Inf", count)],
        sum_value=_number(stats.get("duration_sum")),
    )


def _number(value: str | None) -> float:
    """A stats field as a number; missing (or garbled) counts as 0."""
    try:
        return float(value) if value is not None else 0.0
    except ValueError:
        return 0.0


def install(app: FastAPI) -> None:
    """Give the app its metrics (app.state.metrics) and time its requests."""
    settings: ApiSettings = app.state.settings
    app.state.metrics = ApiMetrics(lambda: app.state.store, per_user=per_user_labels(settings))
    app.add_middleware(RequestTimer, metrics=app.state.metrics)


class ApiMetrics:
    """One app's registry, its request-latency histogram and its Redis collector."""

    def __init__(self, store: Callable[[], Store], *, per_user: bool) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "mlplab_http_request_duration_seconds",
            "API request latency (SSE: stream length)",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.registry.register(RunstoreCollector(store, per_user=per_user))


class RequestTimer:
    """ASGI middleware timing every HTTP request under its route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before answering
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(method, route_template(scope), str(status)).observe(
                time.perf_counter() - start
            )


def route_template(scope: Scope) -> str:
    """The path template of the route that handled the request, which the router leaves in
    the scope; `unmatched` for unknown paths and bodies the guard refused before routing."""
    return getattr(scope.get("route"), "path", None) or "unmatched"
