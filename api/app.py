"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from apscheduler.schedulers.base import BaseScheduler
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import errors
from api.limits import BodyLimitMiddleware, RateLimitMiddleware
from api.routes import (
    alerts,
    dashboard,
    feeds,
    forecasts,
    health,
    indicators,
    plots,
    projections,
    site_admin,
    sites,
    status,
    subscriptions,
    timeseries,
    variables,
)
from monitor.settings import Settings
from monitor.store.db import make_engine, upgrade
from monitor.store.repository import Store
from monitor.store.variables import VariableStore

DESCRIPTION = """Heritage Monitor watches Europe's cultural heritage sites with Copernicus data
(land, atmosphere, climate, emergency), computes heritage risk indicators and raises alerts.

Every value carries its units, provenance and the Copernicus licence attribution of its source.
Demo data are **synthetic** and labelled so. Errors are `application/problem+json` (RFC 9457)."""


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    migrate: bool = True,
    scheduler: BaseScheduler | None = None,
) -> FastAPI:
    """Build the API for these settings (and store, when the caller already has one).

    With a `scheduler`, the app starts it on startup and stops it on shutdown (the demo's one process).
    """
    settings = settings or Settings()
    if store is None:
        # reads only: a smaller page cache per pooled connection than the daily pass's writer needs
        engine = make_engine(settings.resolved_database_url, cache_mib=16)
        if migrate:
            upgrade(engine)
        store = Store(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if scheduler is not None:
            scheduler.start()
        # Everything loaded so far (libraries, routes, schemas: about 400,000 objects) lives as long as the
        # app: moved out of the collector's reach, a full collection no longer walks it, which used to
        # stall a request for 50-150 ms several times a minute under load. Given back at shutdown, so that
        # a process that builds many apps (tests) can still collect the ones it is done with.
        gc.collect()
        gc.freeze()
        # Sync endpoints run in anyio's thread pool (40 threads by default). CPU-bound threads contend
        # for the interpreter lock with the event loop's thread: at 200 requests/s on two workers, 40
        # of them starved the loop until latencies ran into seconds. A few threads, the rest queued.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        try:
            yield
        finally:
            gc.unfreeze()
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=False)

    app = FastAPI(
        lifespan=lifespan,
        title="Heritage Monitor",
        version="0.1.0",
        description=DESCRIPTION,
        license_info={"name": "Apache-2.0"},
    )
    app.state.settings = settings
    app.state.store = store
    app.state.variables = VariableStore(settings.data_dir / "variables")
    app.state.scheduler = scheduler
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(settings.api_max_upload_mb * 1_000_000))
    app.add_middleware(
        RateLimitMiddleware,
        anonymous_per_minute=settings.rate_limit_per_minute,
        keyed_per_minute=settings.rate_limit_keyed_per_minute,
    )
    errors.install(app)
    for module in (
        health,
        site_admin,
        sites,
        status,
        indicators,
        variables,
        plots,
        timeseries,
        forecasts,
        projections,
        feeds,
        alerts,
        subscriptions,
        dashboard,
    ):  # feeds before alerts
        app.include_router(module.router)
    return app
