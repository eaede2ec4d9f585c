"""The cloud app: `create_app(settings)` wires the stores, the planner and the routers into one FastAPI app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text as sql_text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from cloud.alerts.service import AlertService
from cloud.api import (
    admin,
    alerts,
    anomaly_bundles,
    api_keys,
    assets,
    audit,
    crew,
    device_models,
    devices,
    feed,
    gateways,
    ingest,
    municipalities,
    page,
    sessions,
    tasks,
    users,
)
from cloud.api.deps import CloudContext, Planner
from cloud.api.ingest import RETRY_AFTER_S
from cloud.settings import CloudSettings
from cloud.store import open_series_store
from cloud.store.accounts import Accounts
from cloud.store.inventory import Inventory
from cloud.store.keybox import KeyBox
from cloud.store.migrations import check_at_head, upgrade_to_head
from cloud.store.operational import OperationalStore
from cloud.store.series import SeriesStore

logger = logging.getLogger("cloud")


def create_app(
    settings: CloudSettings,
    series: SeriesStore | None = None,
    planner: Planner | None = None,
) -> FastAPI:
    """The cloud app. Migrates the operational schema to head (or, with `auto_migrate=False`, refuses to start
    unless it is there), stores the gateway token hashes and registers the decoders' device models right away.

    `series` defaults to the store `settings.series_url` names; `planner` to `cloud.scheduler.plan_day`.
    """
    store = OperationalStore.from_url(settings.database_url)
    if settings.auto_migrate:
        upgrade_to_head(store.engine)
    else:
        check_at_head(store.engine)
    store.set_gateway_tokens(settings.gateway_tokens)
    inventory = Inventory(store, device_keybox(settings))
    inventory.ensure_device_models(builtin_device_models())
    series_store = series if series is not None else open_series_store(settings.series_url, token=settings.series_token)
    if settings.town_planning_file is not None:
        from cloud.scheduler.fleet import load_town_planning  # late: the scheduler is a heavier package

        # Read now, so that a wrong file stops the start with its file, town and field, not the first plan.
        load_town_planning(settings.town_planning_file)

    alert_service = build_alert_service(settings, store, series_store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop_alerts = asyncio.Event()
        alert_loop = (
            asyncio.create_task(alert_service.run(settings.alerts_interval_s, stop_alerts))
            if settings.alerts_enabled
            else None
        )
        # The daily plan and intraday replans (APScheduler); off in tests and the demo, which plan by API.
        clock = build_plan_clock(_app.state.cloud) if settings.scheduler_enabled else None
        if clock is not None:
            clock.start()
        yield
        if clock is not None:
            clock.shutdown()
        if alert_loop is not None:
            stop_alerts.set()
            await alert_loop
        # Close only what this app opened; a series store passed in belongs to the caller.
        if series is None and hasattr(series_store, "close"):
            series_store.close()
        store.engine.dispose()

    app = FastAPI(title="Flurfunk cloud", version="1", lifespan=lifespan)
    app.state.cloud = CloudContext(
        settings=settings,
        store=store,
        series=series_store,
        planner=planner,
        accounts=Accounts(store),
        inventory=inventory,
    )
    app.state.alerts = alert_service
    for module in (
        alerts,
        ingest,
        anomaly_bundles,
        sessions,
        api_keys,
        municipalities,
        users,
        gateways,
        device_models,
        devices,
        assets,
        audit,
        admin,
        feed,
        tasks,
        page,
        crew,
    ):
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


def device_keybox(settings: CloudSettings) -> KeyBox:
    """The master key for device keys: `device_key`, else `device_key_file`, else one created beside the SQLite
    database (or in data_dir): kept apart from a PostgreSQL dump, together with a SQLite file."""
    if settings.device_key:
        return KeyBox.from_base64(settings.device_key)
    if settings.device_key_file is not None:
        return KeyBox.from_file(settings.device_key_file)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return KeyBox.from_file(Path(url.database).parent / "device-keys.key", create=True)
    return KeyBox.from_file(settings.data_dir / "device-keys.key", create=True)


def builtin_device_models() -> dict[str, dict[str, str]]:
    """The models the decoders speak, so devices of them can be registered on a fresh install."""
    import decoders

    models: dict[str, dict[str, str]] = {}
    for model_id in decoders.model_ids():
        vendor, _, name = model_id.partition("/")
        description = decoders.model(model_id).vendor_codec
        models[model_id] = {"vendor": vendor, "name": name, "description": f"codec: {description}"[:500]}
    return models


def build_alert_service(
    settings: CloudSettings, store: OperationalStore, series: SeriesStore | None = None
) -> AlertService:
    """The alert service with the channels the settings configure (webhooks come from the towns' files)."""
    from cloud.alerts.channels import Channel, EmailChannel, MqttChannel, WebhookChannel
    from cloud.alerts.config import load_configs
    from cloud.alerts.forecast import overflow_forecast_from_series

    channels: dict[str, Channel] = {}
    if settings.alerts_mqtt_host:
        channels["mqtt"] = MqttChannel(
            settings.alerts_mqtt_host,
            settings.alerts_mqtt_port,
            settings.alerts_mqtt_username,
            settings.alerts_mqtt_password,
        )
    if settings.alerts_smtp_host:
        channels["email"] = EmailChannel(
            settings.alerts_smtp_host,
            settings.alerts_smtp_port,
            settings.alerts_smtp_sender,
            settings.alerts_smtp_username,
            settings.alerts_smtp_password,
            settings.alerts_smtp_starttls,
        )
    service = AlertService(
        store,
        load_configs(settings.alerts_config_dir),
        channels,
        mqtt_topic_prefix=settings.alerts_mqtt_topic_prefix,
        overflow_forecast=overflow_forecast_from_series(series) if series is not None else None,
    )
    service.channels["webhook"] = WebhookChannel(service.webhook_secret, clock_s=lambda: service.clock().timestamp())
    return service


def build_plan_clock(context: CloudContext) -> Any:
    """The scheduler of daily plans and replans for every town (`cloud.scheduler.jobs.PlanClock`), planning as the
    API's `POST /plan/{day}` does, as the principal `scheduler`."""
    from cloud.api.admin import plan
    from cloud.auth import Principal, Role
    from cloud.scheduler.jobs import PlanClock
    from cloud.store.operational import Scope
    from flurfunk.contracts import MUNICIPALITIES

    settings = context.settings
    principal = Principal("scheduler", Role.DISTRICT_ADMIN, None)
    towns = set(MUNICIPALITIES) | {depot.municipality for depot in context.store.depots()}
    return PlanClock(
        context.store.engine,
        lambda day, town, _replan: plan(context, day, principal, Scope(town)),
        towns,
        plan_time=settings.plan_time,
        plan_times=settings.plan_times,
        replan_every_minutes=settings.replan_every_minutes,
        use_leader_lock=settings.scheduler_lock == "auto",
    )
