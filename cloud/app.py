"""The cloud app: `create_app(settings)` wires the stores, the planner and the routers into one FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text as sql_text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from cloud.api import admin, feed, ingest, page, tasks
from cloud.api.deps import CloudContext, Planner
from cloud.api.ingest import RETRY_AFTER_S
from cloud.settings import CloudSettings
from cloud.store import open_series_store
from cloud.store.operational import OperationalStore
from cloud.store.series import SeriesStore

logger = logging.getLogger("cloud")


def create_app(
    settings: CloudSettings,
    series: SeriesStore | None = None,
    planner: Planner | None = None,
) -> FastAPI:
    """The cloud app. Creates the operational schema and stores the gateway token hashes right away.

    `series` defaults to the store `settings.series_url` names; `planner` to `cloud.scheduler.plan_day`.
    """
    store = OperationalStore.from_url(settings.database_url)
    store.create_schema()
    store.set_gateway_tokens(settings.gateway_tokens)
    series_store = series if series is not None else open_series_store(settings.series_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        # Close only what this app opened; a series store passed in belongs to the caller.
        if series is None and hasattr(series_store, "close"):
            series_store.close()
        store.engine.dispose()

    app = FastAPI(title="Flurfunk cloud", version="1", lifespan=lifespan)
    app.state.cloud = CloudContext(settings=settings, store=store, series=series_store, planner=planner)
    for module in (ingest, admin, feed, tasks, page):
        app.include_router(module.router)

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, error: OperationalError) -> JSONResponse:
        # Locked, unreachable or full: the caller may retry; a 500 would read as a bug in the request.
        logger.warning("operational database unavailable path=%s: %s", request.url.path, error.orig)
        return JSONResponse(
            {"detail": "the operational database is unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.get("/healthz", tags=["health"])
    def healthz() -> Any:
        try:
            with store.engine.connect() as connection:
                connection.execute(sql_text("SELECT 1"))
        except SQLAlchemyError as error:
            logger.warning("health check: operational database unreachable: %s", error)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return {"status": "ok"}

    logger.info("cloud app ready gateways=%d open_read=%s", len(settings.gateway_tokens), settings.open_read)
    return app
