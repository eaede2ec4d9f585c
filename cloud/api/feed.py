"""The task feed: tasks and routes as JSON and GeoJSON, a summary of what the cloud holds, and its metadata."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse

from cloud.api.deps import CloudContext, Context, Reader, town_scope
from cloud.store.operational import Scope, StoredRoute, StoredTask
from cloud.store.series import SeriesStoreUnavailableError
from flurfunk.contracts import Asset, TaskKind, TaskState

router = APIRouter(prefix="/api/v1", tags=["feed"])

GEOJSON_MEDIA_TYPE = "application/geo+json"


def task_item(stored: StoredTask, asset: Asset | None) -> dict[str, Any]:
    """A task as the feed shows it: the contract's fields, the planned day, and where the asset is."""
    return {
        **stored.task.model_dump(mode="json"),
        "day": stored.day.isoformat(),
        "asset_kind": asset.kind.value if asset else None,
        "village": asset.village if asset else None,
        "latitude": asset.latitude if asset else None,
        "longitude": asset.longitude if asset else None,
    }


def route_item(route: StoredRoute) -> dict[str, Any]:
    return {
        "id": route.id,
        "municipality": route.municipality,
        "kind": route.kind.value,
        "day": route.day.isoformat(),
        "stops": route.stops,
        "km": route.km,
        "polyline": [[lat, lon] for lat, lon in route.polyline],
    }


def feed_tasks(context: CloudContext, scope: Scope, **filters: Any) -> list[dict[str, Any]]:
    stored = context.store.tasks(scope=scope, **filters)
    assets = {asset.id: asset for asset in context.store.assets({s.task.asset for s in stored}, scope)}
    return [task_item(s, assets.get(s.task.asset)) for s in stored]


def readings_stored(context: CloudContext) -> int:
    try:
        return context.series.count()
    except SeriesStoreUnavailableError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"time-series store unavailable: {error}") from error


@router.get("/feed/tasks")
def list_tasks(
    context: Context,
    principal: Reader,
    municipality: str | None = None,
    day: date | None = None,
    kind: TaskKind | None = None,
    state: TaskState | None = None,
) -> list[dict[str, Any]]:
    """Tasks, filtered by any of municipality, day, kind and state; most urgent first within a day and town."""
    return feed_tasks(context, town_scope(principal, municipality), day=day, kind=kind, state=state)


@router.get("/feed/routes")
def list_routes(
    context: Context, principal: Reader, day: date | None = None, municipality: str | None = None
) -> list[dict[str, Any]]:
    """Routes with their stops (asset ids in visiting order), length in km and polyline as [[lat, lon], …]."""
    return [route_item(r) for r in context.store.routes(day=day, scope=town_scope(principal, municipality))]


@router.get("/feed/routes.geojson")
def routes_geojson(
    context: Context, principal: Reader, day: date | None = None, municipality: str | None = None
) -> JSONResponse:
    """Routes as LineStrings and tasks as Points in one FeatureCollection (GeoJSON order: longitude, latitude)."""
    scope = town_scope(principal, municipality)
    features: list[dict[str, Any]] = []
    for route in context.store.routes(day=day, scope=scope):
        features.append(
            {
                "type": "Feature",
                "id": f"route:{route.id}",
                "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in route.polyline]},
                "properties": {
                    "feature": "route",
                    "id": route.id,
                    "municipality": route.municipality,
                    "kind": route.kind.value,
                    "day": route.day.isoformat(),
                    "km": route.km,
                    "stops": route.stops,
                },
            }
        )
    for item in feed_tasks(context, scope, day=day):
        if item["latitude"] is None:
            continue  # the asset left the inventory: nothing to place on a map
        features.append(
            {
                "type": "Feature",
                "id": f"task:{item['id']}",
                "geometry": {"type": "Point", "coordinates": [item["longitude"], item["latitude"]]},
                "properties": {"feature": "task"}
                | {
                    key: item[key]
                    for key in (
                        "id",
                        "kind",
                        "asset",
                        "municipality",
                        "village",
                        "day",
                        "state",
                        "priority",
                        "reason",
                        "route_id",
                    )
                },
            }
        )
    return JSONResponse({"type": "FeatureCollection", "features": features}, media_type=GEOJSON_MEDIA_TYPE)


@router.get("/summary")
def summary(context: Context, principal: Reader, day: date | None = None) -> dict[str, Any]:
    """Readings stored, each gateway's acknowledged sequence and last status, tasks and km per town and kind.

    Gateways, tasks and km are the caller's towns'; `readings_stored` counts the whole series store."""
    scope = principal.scope
    km_by_municipality = context.store.km_planned(day, scope)
    return {
        "readings_stored": readings_stored(context),
        "gateways": [
            {
                "id": g.id,
                "acked_seq": g.acked_seq,
                "last_seen": g.last_seen.isoformat() if g.last_seen else None,
                "status": g.status.model_dump(mode="json") if g.status else None,
            }
            for g in context.store.gateways(scope)
        ],
        "tasks": context.store.task_counts(day, scope),
        "km_planned": round(sum(km_by_municipality.values()), 3),
        "km_planned_by_municipality": {m: round(km, 3) for m, km in km_by_municipality.items()},
    }


@router.get("/meta")
def meta(context: Context, principal: Reader) -> dict[str, Any]:
    """How many readings the cloud holds and the time of the newest one (of the caller's towns)."""
    latest = context.store.latest_reading_time(principal.scope)
    return {"readings": readings_stored(context), "latest_reading_time": latest.isoformat() if latest else None}
