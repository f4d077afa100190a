"""The FastAPI application factory: `uvicorn --factory api.main:create_app`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, logfilter, metrics, outage, sse
from api.middleware import BodyGuard
from api.reaper import reap_forever
from api.routes import (
    dashboard,
    docs,
    health,
    insight,
    models,
    plots,
    runs,
    sweep_admin,
    sweeps,
    users,
)
from api.routes import metrics as metrics_routes
from api.settings import ApiSettings, get_settings

log = logging.getLogger("mlplab.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the Redis clients and the broker handle for the app's lifetime."""
    settings: ApiSettings = app.state.settings
    if not settings.auth:
        log.warning(
            "AUTH IS OFF (MLPLAB_AUTH=false): every request acts as the admin user "
            "'local'. Use this only on a machine where you are the only user."
        )
    app.state.store = outage.open_store(settings)
    app.state.async_store = sse.open_async_store(settings)
    app.state.stream_store = sse.open_stream_store(settings)  # a pool of its own
    app.state.queue = outage.open_queue(settings)
    reaper = asyncio.create_task(reap_forever(app.state.store, app.state.queue, settings=settings))
    try:
        yield
    finally:
        reaper.cancel()
        app.state.queue.close()
        await app.state.stream_store.close()
        await app.state.async_store.close()
        app.state.store.client.close()


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the app; connections open at startup, not here."""
    app = FastAPI(
        title="mlplab",
        summary="Training-job server for MLP experiments",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # api/routes/docs.py serves /docs without a CDN
        redoc_url=None,  # ReDoc loads its logo from its CDN, whatever it is given
    )
    app.state.settings = settings or get_settings()
    logfilter.install()  # tokens sent in a query string stay out of the access log
    app.add_middleware(BodyGuard, max_bytes=app.state.settings.max_body_bytes)
    errors.install(app)
    outage.install(app)  # Redis or the broker away: 503
    metrics.install(app)  # after BodyGuard: outermost, so its 413/415 are timed too
    routers = (health, runs, models, sweeps, plots, users, dashboard, metrics_routes, docs)
    for module in (*routers, sweep_admin, insight):
        app.include_router(module.router)
    return app
