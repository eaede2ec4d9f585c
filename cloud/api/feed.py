"""The task feed: tasks and routes as JSON and GeoJSON, live changes as server-sent events, a crew's calendar
(iCal), work orders as CSV for the Bauhof's accounting, FIWARE NGSI-LD entities, a summary and metadata."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import math
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from cloud.api.deps import CloudContext, Context, Reader, town_scope
from cloud.store.operational import LatestState, Scope, StoredRoute, StoredTask, TaskEvent
from cloud.store.series import SeriesStoreUnavailableError
from flurfunk.contracts import Asset, AssetKind, Quantity, TaskKind, TaskState
from flurfunk.i18n import Language, text

router = APIRouter(prefix="/api/v1", tags=["feed"])

GEOJSON_MEDIA_TYPE = "application/geo+json"
ICAL_MEDIA_TYPE = "text/calendar; charset=utf-8"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
NGSI_LD_MEDIA_TYPE = "application/ld+json"
TOWN_ZONE = ZoneInfo("Europe/Berlin")  # route times are seconds since the towns' local midnight

MAX_FEED_DAYS = 370  # a calendar or CSV export covers at most about a year
SSE_POLL_S = 0.25  # how often a stream looks for new events (they live in the database, shared by all replicas)
SSE_KEEPALIVE_S = 15.0  # a comment line so proxies do not close an idle stream
SSE_RETRY_MS = 2000  # what the browser waits before it reconnects (with Last-Event-ID)


def task_item(stored: StoredTask, asset: Asset | None) -> dict[str, Any]:
    """A task as the feed shows it: the contract's fields, the planned day, and where the asset is."""
    return {
        **stored.task.model_dump(mode="json"),
        "day": stored.day.isoformat(),
        "pinned": stored.pinned,
        "asset_kind": asset.kind.value if asset else None,
        "village": asset.village if asset else None,
        "latitude": asset.latitude if asset else None,
        "longitude": asset.longitude if asset else None,
    }


def clock(seconds: int | None) -> str | None:
    """Seconds since local midnight as HH:MM (a route past midnight shows 24:10)."""
    if seconds is None:
        return None
    minutes = max(seconds, 0) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def reload_label(route: StoredRoute, language: Language) -> str:
    """The label of a trip to the site: "Entleeren an: …" (a truck tips) or "Nachfüllen an: …" (a tanker)."""
    action = "water" if route.kind is TaskKind.WATER else "collect"
    return text(f"route.reload.{action}", language, site=route.reload_site.name if route.reload_site else "")


def route_sequence(route: StoredRoute, language: Language) -> list[dict[str, Any]]:
    """The route in driving order: its stops (`type` stop: asset, load, `at` the planned time HH:MM) and trips to
    the reload site (`type` reload: site, name, where, the load tipped or the litres refilled, a label)."""
    sequence: list[dict[str, Any]] = []
    for visit in route.visits():
        if visit.site is None:
            sequence.append(
                {
                    "position": visit.position,
                    "type": "stop",
                    "asset": visit.asset,
                    "load_l": visit.load_l,
                    "at": clock(visit.at_s),
                }
            )
            continue
        sequence.append(
            {
                "position": visit.position,
                "type": "reload",
                "site": visit.site.id,
                "name": visit.site.name,
                "latitude": visit.site.latitude,
                "longitude": visit.site.longitude,
                "load_l": visit.load_l,
                "label": reload_label(route, language),
            }
        )
    return sequence


def route_summary(route: StoredRoute, language: Language) -> str | None:
    """One line on the vehicle, crew, times and trips to the site; None for a route planned without a fleet."""
    if route.vehicle is None:
        return None
    key = "route.vehicle.water" if route.kind is TaskKind.WATER else "route.vehicle"
    return text(
        key,
        language,
        vehicle=route.vehicle,
        crew=route.crew or "",
        start=clock(route.start_s) or "?",
        end=clock(route.end_s) or "?",
        trips=len(route.reload_after),
    )


def overload_l(route: StoredRoute) -> int:
    """Litres a trip carries beyond the vehicle's capacity (a dispatcher put more on a truck that cannot tip)."""
    if route.capacity_l is None or not route.trip_loads:
        return 0
    return max(max(route.trip_loads) - route.capacity_l, 0)


def late_text(route: StoredRoute, language: Language) -> str | None:
    """What is wrong with the route, if anything: it runs past the shift, or a trip carries more than fits."""
    problems = []
    if route.late_s > 0:
        problems.append(text("route.late", language, minutes=math.ceil(route.late_s / 60)))
    if overload_l(route) > 0:
        problems.append(text("route.overload", language, litres=overload_l(route)))
    return "; ".join(problems) or None


def route_item(route: StoredRoute, language: Language = "de") -> dict[str, Any]:
    """A route as the feed shows it: stops and polyline as planned, and with a fleet the vehicle, its capacity,
    times (HH:MM local), lateness, the load of each trip and the whole sequence with the trips to the site."""
    return {
        "id": route.id,
        "municipality": route.municipality,
        "kind": route.kind.value,
        "day": route.day.isoformat(),
        "stops": route.stops,
        "km": route.km,
        "polyline": [[lat, lon] for lat, lon in route.polyline],
        "crew": route.crew,
        "vehicle": route.vehicle,
        "capacity_l": route.capacity_l,
        "start": clock(route.start_s),
        "end": clock(route.end_s),
        "late_s": route.late_s,
        "overload_l": overload_l(route),
        "late": late_text(route, language),
        "trip_loads": route.trip_loads,
        "reloads": len(route.reload_after),
        "summary": route_summary(route, language),
        "sequence": route_sequence(route, language),
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
    crew: str | None = Query(default=None, max_length=100),
) -> list[dict[str, Any]]:
    """Tasks, filtered by any of municipality, day, kind, state and crew; most urgent first within a day and town."""
    return feed_tasks(context, town_scope(principal, municipality), day=day, kind=kind, state=state, crew=crew)


def crew_routes(context: CloudContext, scope: Scope, day: date | None, crew: str | None) -> list[StoredRoute]:
    return [r for r in context.store.routes(day=day, scope=scope) if crew is None or r.crew == crew]


@router.get("/feed/routes")
def list_routes(
    context: Context,
    principal: Reader,
    day: date | None = None,
    municipality: str | None = None,
    crew: str | None = Query(default=None, max_length=100),
    lang: Literal["de", "en"] | None = None,
) -> list[dict[str, Any]]:
    """Routes with their stops (asset ids in visiting order), length in km and polyline as [[lat, lon], …]; with a
    fleet also the vehicle, its crew, times, lateness and `sequence`: stops and trips to the disposal site or
    hydrant in driving order, with loads (labels German by default, `lang=en`)."""
    language = lang or context.settings.language
    return [route_item(r, language) for r in crew_routes(context, town_scope(principal, municipality), day, crew)]


@router.get("/feed/routes.geojson")
def routes_geojson(
    context: Context,
    principal: Reader,
    day: date | None = None,
    municipality: str | None = None,
    crew: str | None = Query(default=None, max_length=100),
    lang: Literal["de", "en"] | None = None,
) -> JSONResponse:
    """Routes as LineStrings, tasks as Points and each trip to a disposal site or hydrant as a Point
    (`feature: reload`, with its place in the route and load) in one FeatureCollection (GeoJSON order:
    longitude, latitude)."""
    scope = town_scope(principal, municipality)
    language = lang or context.settings.language
    features: list[dict[str, Any]] = []
    for route in crew_routes(context, scope, day, crew):
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
                    "crew": route.crew,
                    "vehicle": route.vehicle,
                    "start": clock(route.start_s),
                    "end": clock(route.end_s),
                    "late_s": route.late_s,
                    "trip_loads": route.trip_loads,
                    "summary": route_summary(route, language),
                },
            }
        )
        for visit in route_sequence(route, language):
            if visit["type"] != "reload":
                continue
            features.append(
                {
                    "type": "Feature",
                    "id": f"reload:{route.id}:{visit['position']}",
                    "geometry": {"type": "Point", "coordinates": [visit["longitude"], visit["latitude"]]},
                    "properties": {"feature": "reload", "route_id": route.id}
                    | {key: visit[key] for key in ("position", "site", "name", "load_l", "label")},
                }
            )
    for item in feed_tasks(context, scope, day=day, crew=crew):
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


# -- live updates: server-sent events ----------------------------------------------------------------------------


def sse_message(event: TaskEvent) -> str:
    """One event in the text/event-stream format: `id` (for Last-Event-ID), `event` and one `data` line of JSON."""
    data = {
        "id": event.id,
        "action": event.action,
        "municipality": event.municipality,
        "day": event.day.isoformat(),
        "task_id": event.task_id,
        "at": event.at.isoformat(),
        "task": event.payload if event.task_id is not None else None,
    }
    kind = "plan" if event.action == "planned" else "task"
    # json.dumps escapes newlines, so the data stays on one line as the format needs.
    return f"id: {event.id}\nevent: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _event_id(raw: str | None, where: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{where} must be a non-negative event id, got {raw[:40]!r}")
    return int(raw)


# Not in the OpenAPI schema: a generated client (or schemathesis) cannot consume an endless stream; README documents it.
@router.get("/feed/events", response_class=StreamingResponse, include_in_schema=False)
async def task_events(
    request: Request,
    context: Context,
    principal: Reader,
    municipality: str | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: str | None = Query(
        default=None, description="event id to start after (for clients that cannot send a header)"
    ),
    max_s: float = Query(default=300.0, gt=0, le=3600, description="the stream ends after this; clients reconnect"),
) -> StreamingResponse:
    """Task changes of the caller's towns as `text/event-stream`: one `task` event per change (added, moved,
    changed) with the task as JSON, one `plan` event per town when a day is replanned. Without Last-Event-ID the
    stream starts with the next change; with it (or `after`), it first sends what the client missed."""
    scope = town_scope(principal, municipality)
    start = _event_id(last_event_id, "Last-Event-ID")
    if start is None:
        start = _event_id(after, "after")
    if start is None:
        start = await run_in_threadpool(context.store.last_task_event_id)

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_s
        quiet_since = loop.time()
        position = start
        yield f"retry: {SSE_RETRY_MS}\n\n"
        while loop.time() < deadline:
            if await request.is_disconnected():
                return
            events = await run_in_threadpool(context.store.task_events, position, scope, 200)
            for event in events:
                position = event.id
                yield sse_message(event)
            if events:
                quiet_since = loop.time()
                continue
            if loop.time() - quiet_since >= SSE_KEEPALIVE_S:
                quiet_since = loop.time()
                yield ": keep-alive\n\n"
            await asyncio.sleep(SSE_POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


# -- a crew's calendar: iCalendar (RFC 5545) -----------------------------------------------------------------------


def ical_text(value: str) -> str:
    """A TEXT value escaped as RFC 5545 3.3.11 says: backslash, semicolon, comma and newlines."""
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def fold_line(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 3.1): CRLF and one space, never inside a UTF-8 character."""
    encoded = line.encode("utf-8")
    if len(encoded) <= 75:
        return line + "\r\n"
    parts: list[str] = []
    current = ""
    limit = 75
    for character in line:
        if len((current + character).encode("utf-8")) > limit:
            parts.append(current)
            current = character
            limit = 74  # continuation lines start with a space
        else:
            current += character
    parts.append(current)
    return "\r\n ".join(parts) + "\r\n"


def _ical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _local_moment(day: date, seconds: int) -> datetime:
    return datetime.combine(day, datetime.min.time(), TOWN_ZONE) + timedelta(seconds=seconds)


def route_event_lines(route: StoredRoute, language: Language, stamp: datetime) -> list[str]:
    """A route planned with a fleet as one VEVENT from leaving the yard to coming back: the vehicle in the summary,
    the stops and trips to the disposal site or hydrant in driving order in the description."""
    if route.start_s is None or route.end_s is None:
        return []
    steps = []
    for visit in route_sequence(route, language):
        name = visit["label"] if visit["type"] == "reload" else visit["asset"]
        if visit.get("at"):
            name = f"{visit['at']} {name}"
        load = f" ({text('route.load', language, load=visit['load_l'])})" if visit["load_l"] is not None else ""
        steps.append(f"{visit['position'] + 1}. {name}{load}")
    description = "\n".join(line for line in (route_summary(route, language), late_text(route, language)) if line)
    summary = text("feed.ical.route", language, vehicle=route.vehicle or route.kind.value, stops=len(route.stops))
    return [
        "BEGIN:VEVENT",
        f"UID:route-{route.id}@flurfunk",
        f"DTSTAMP:{_ical_time(stamp)}",
        f"DTSTART:{_ical_time(_local_moment(route.day, route.start_s))}",
        f"DTEND:{_ical_time(_local_moment(route.day, max(route.end_s, route.start_s)))}",
        f"SUMMARY:{ical_text(summary)}",
        f"DESCRIPTION:{ical_text(description + chr(10) + chr(10).join(steps))}",
        f"LOCATION:{ical_text(route.municipality)}",
        "STATUS:CONFIRMED",
        "END:VEVENT",
    ]


def crew_calendar(
    crew: str,
    tasks: Iterable[StoredTask],
    assets: dict[str, Asset],
    language: Language,
    stamp: datetime,
    routes: Iterable[StoredRoute] = (),
) -> str:
    """A VCALENDAR with one VEVENT per task (times in UTC, UID from the task id, stable across exports) and one per
    route planned with a fleet (its stops and trips to the site in order)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Flurfunk//Bauhof-Aufgaben//DE",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ical_text(text('feed.ical.calendar', language, crew=crew))}",
    ]
    for stored in tasks:
        task = stored.task
        asset = assets.get(task.asset)
        place = f"{asset.village}, {task.municipality}" if asset else task.municipality
        summary = text(
            "feed.ical.summary", language, kind=text(f"task.kind.{task.kind.value}", language), asset=task.asset
        )
        state = text(f"task.state.{task.state.value}", language, skip_reason=task.skip_reason or "")
        lines += [
            "BEGIN:VEVENT",
            f"UID:{task.id}@flurfunk",
            f"DTSTAMP:{_ical_time(stamp)}",
            f"DTSTART:{_ical_time(task.due_from)}",
            f"DTEND:{_ical_time(task.due_until)}",
            f"SUMMARY:{ical_text(summary)}",
            f"DESCRIPTION:{ical_text(f'{task.reason} ({state})')}",
            f"LOCATION:{ical_text(place)}",
            f"STATUS:{'CANCELLED' if task.state is TaskState.CANCELLED else 'CONFIRMED'}",
            f"PRIORITY:{max(1, 9 - task.priority // 12)}",  # iCal: 1 most urgent .. 9 least; ours: 100 most urgent
        ]
        if asset is not None:
            lines.append(f"GEO:{asset.latitude:.6f};{asset.longitude:.6f}")
        lines.append("END:VEVENT")
    for route in routes:
        lines += route_event_lines(route, language, stamp)
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) for line in lines)


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)  # days outside are typos, and date.max overflows


def check_day(day: date, name: str = "day") -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"{name} must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def _day_range(start: date | None, end: date | None, default_back: int, default_ahead: int) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    for value, name in ((start, "start"), (end, "end")):
        if value is not None:
            check_day(value, name)
    first = start or today - timedelta(days=default_back)
    last = end or today + timedelta(days=default_ahead)
    if last <= first:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "end must be after start")
    if (last - first).days > MAX_FEED_DAYS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"at most {MAX_FEED_DAYS} days at once")
    return first, last


@router.get("/feed/crew.ics", response_class=Response)
def crew_ics(
    context: Context,
    principal: Reader,
    crew: str | None = Query(default=None, min_length=1, max_length=100),
    municipality: str | None = None,
    start: date | None = None,
    end: date | None = None,
    lang: Literal["de", "en"] | None = None,
) -> Response:
    """A crew's tasks (without `crew`: every crew's of the caller's towns) as an iCalendar feed (RFC 5545), days in
    [start, end) (default: a week back, 60 days ahead)."""
    scope = town_scope(principal, municipality)
    first, last = _day_range(start, end, 7, 60)
    stored = context.store.tasks(crew=crew, start=first, end=last, scope=scope)
    assets = {asset.id: asset for asset in context.store.assets({s.task.asset for s in stored}, scope)}
    routes = [r for r in context.store.routes(start=first, end=last, scope=scope) if crew is None or r.crew == crew]
    name = crew or scope.municipality or "Bauhof"
    body = crew_calendar(name, stored, assets, lang or context.settings.language, datetime.now(UTC), routes)
    filename = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "crew"
    return Response(
        body.encode("utf-8"),
        media_type=ICAL_MEDIA_TYPE,
        headers={"Content-Disposition": f'inline; filename="{filename}.ics"'},
    )


# -- work orders for the accounting software: CSV ------------------------------------------------------------------

# Columns, in order (German headers as the Bauhof's software and Excel show them):
# Auftragsnummer (work-order number, stable: FF- + 10 hex of the task id's SHA-256), Aufgabe (task id), Datum
# (DD.MM.YYYY), Gemeinde, Ortsteil, Kolonne (crew), Art (kind, German), Objekt (asset id), Kostenstelle (cost
# centre, from settings.cost_centres), Planminuten (planned minutes: service time plus the task's share of its
# route's driving), Liter (water, for watering), Status, Grund (reason), Fahrzeug (vehicle), Tourposition (place in
# the route's driving order, 1 first), Ladung (litres the stop adds to the vehicle, or a trip tips or refills).
# A trip to the disposal site or hydrant is a row of its own (Art "Entleeren"/"Nachfüllen", Objekt the site id).
CSV_COLUMNS = (
    "Auftragsnummer",
    "Aufgabe",
    "Datum",
    "Gemeinde",
    "Ortsteil",
    "Kolonne",
    "Art",
    "Objekt",
    "Kostenstelle",
    "Planminuten",
    "Liter",
    "Status",
    "Grund",
    "Fahrzeug",
    "Tourposition",
    "Ladung",
)

# Minutes on site per task, by kind; watering adds the time to pump its litres.
SERVICE_MINUTES = {TaskKind.COLLECT: 3.0, TaskKind.WATER: 4.0, TaskKind.INSPECT: 15.0, TaskKind.MAINTAIN: 30.0}
PUMP_LITRES_PER_MINUTE = 25.0
DRIVING_KMH = 30.0  # average speed between stops across villages


def work_order_number(task_id: str) -> str:
    return "FF-" + hashlib.sha256(task_id.encode()).hexdigest()[:10].upper()


def planned_minutes(stored: StoredTask, route: StoredRoute | None) -> int:
    """Service minutes by kind (+ litres / pump rate for watering) + the route's driving minutes per stop."""
    task = stored.task
    minutes = SERVICE_MINUTES[task.kind]
    litres = task.evidence.get("litres")
    if task.kind is TaskKind.WATER and isinstance(litres, int | float):
        minutes += float(litres) / PUMP_LITRES_PER_MINUTE
    if route is not None and route.stops:
        minutes += route.km / DRIVING_KMH * 60.0 / len(route.stops)
    return max(1, round(minutes))


def cost_centre(cost_centres: dict[str, str], municipality: str, kind: TaskKind) -> str:
    """`Town/kind`, then `kind`, then `Town` from the settings; without any: `<town>-<kind>` for a person to map."""
    for key in (f"{municipality}/{kind.value}", kind.value, municipality):
        if key in cost_centres:
            return cost_centres[key]
    return f"{municipality}-{kind.value}"


def _csv_cell(value: str) -> str:
    # Excel runs a cell starting with = + - @ as a formula; a leading apostrophe keeps it text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def work_orders_csv(
    tasks: Iterable[StoredTask],
    assets: dict[str, Asset],
    routes: dict[str, StoredRoute],
    cost_centres: dict[str, str],
    language: Language,
) -> bytes:
    """Semicolon-separated, UTF-8 with BOM and CRLF: what German Excel opens without an import dialog. One row per
    task, then one per trip of each route to its disposal site or hydrant."""
    tasks = list(tasks)
    routed = {stored.task.route_id for stored in tasks}
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    places = {(route.id, visit.asset): visit for route in routes.values() for visit in route.visits() if visit.asset}
    for stored in tasks:
        task = stored.task
        asset = assets.get(task.asset)
        litres = task.evidence.get("litres")
        route = routes.get(task.route_id or "")
        place = places.get((task.route_id or "", task.asset))
        row = [
            work_order_number(task.id),
            task.id,
            stored.day.strftime("%d.%m.%Y"),
            task.municipality,
            asset.village if asset else "",
            task.crew or "",
            text(f"task.kind.{task.kind.value}", language),
            task.asset,
            cost_centre(cost_centres, task.municipality, task.kind),
            str(planned_minutes(stored, route)),
            f"{float(litres):.0f}" if isinstance(litres, int | float) else "",
            text(f"task.state.{task.state.value}", language, skip_reason=task.skip_reason or ""),
            task.reason,
            (route.vehicle or "") if route is not None else "",
            str(place.position + 1) if place is not None else "",
            str(place.load_l) if place is not None and place.load_l is not None else "",
        ]
        writer.writerow([_csv_cell(cell) for cell in row])
    for route in routes.values():
        if route.id not in routed:
            continue
        action = "water" if route.kind is TaskKind.WATER else "collect"
        for visit in route.visits():
            if visit.site is None:
                continue
            order = f"{route.id}#{visit.position + 1}"
            row = [
                work_order_number(order),
                order,
                route.day.strftime("%d.%m.%Y"),
                route.municipality,
                "",
                route.crew or "",
                text(f"feed.csv.reload.{action}", language),
                visit.site.id,
                cost_centre(cost_centres, route.municipality, route.kind),
                str(max(1, round(visit.site.unload_s / 60))),
                str(visit.load_l) if route.kind is TaskKind.WATER and visit.load_l is not None else "",
                "",
                reload_label(route, language),
                route.vehicle or "",
                str(visit.position + 1),
                str(visit.load_l) if visit.load_l is not None else "",
            ]
            writer.writerow([_csv_cell(cell) for cell in row])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


@router.get("/feed/tasks.csv", response_class=Response)
def tasks_csv(
    context: Context,
    principal: Reader,
    municipality: str | None = None,
    day: date | None = None,
    start: date | None = None,
    end: date | None = None,
    crew: str | None = Query(default=None, max_length=100),
    lang: Literal["de", "en"] | None = None,
) -> Response:
    """Work orders (one row per task) for `day`, or days in [start, end) (default: today), as CSV; columns in
    `CSV_COLUMNS`."""
    scope = town_scope(principal, municipality)
    if day is not None:
        first, last = check_day(day), day + timedelta(days=1)
    elif start is None and end is None:
        first = datetime.now(UTC).date()
        last = first + timedelta(days=1)
    else:
        first, last = _day_range(start, end, 0, 1)
    stored = context.store.tasks(crew=crew, start=first, end=last, scope=scope)
    assets = {asset.id: asset for asset in context.store.assets({s.task.asset for s in stored}, scope)}
    routes = {r.id: r for d in {s.day for s in stored} for r in context.store.routes(day=d, scope=scope)}
    body = work_orders_csv(stored, assets, routes, context.settings.cost_centres, lang or context.settings.language)
    return Response(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="flurfunk-auftraege-{first.isoformat()}.csv"'},
    )


# -- FIWARE smart data models: NGSI-LD (normalized) ------------------------------------------------------------------

NGSI_LD_CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
WASTE_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.WasteManagement/master/context.jsonld"
PARKS_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.ParksAndGardens/master/context.jsonld"
TRANSPORTATION_CONTEXT = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"
)
NgsiType = Literal["WasteContainer", "GreenspaceRecord", "Vehicle"]


def _property(value: Any, observed_at: datetime | None = None, unit_code: str | None = None) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": "Property", "value": value}
    if observed_at is not None:
        prop["observedAt"] = observed_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if unit_code is not None:
        prop["unitCode"] = unit_code  # UN/CEFACT common codes
    return prop


def _date_time(moment: datetime) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": moment.astimezone(UTC).isoformat()}}


def _point(asset: Asset) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [asset.longitude, asset.latitude]}}


def waste_container(asset: Asset, latest: dict[Quantity, LatestState], next_collection: datetime | None) -> dict:
    """A bin as a WasteContainer (smart-data-models WasteManagement): fillingLevel in parts per one."""
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:WasteContainer:{asset.id}",
        "type": "WasteContainer",
        "name": _property(asset.id),
        "location": _point(asset),
        "areaServed": _property(asset.village),
        "address": _property({"addressLocality": asset.municipality, "addressCountry": "DE"}),
    }
    if asset.capacity_l is not None:
        entity["binCapacity"] = _property(asset.capacity_l, unit_code="LTR")
    fill = latest.get(Quantity.FILL_RATIO)
    if fill is not None:
        entity["fillingLevel"] = _property(round(min(max(fill.value, 0.0), 1.0), 4), fill.time)
        entity["refDevice"] = {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{fill.device}"}
    if next_collection is not None:
        entity["nextActuationDeadline"] = _date_time(next_collection)
    entity["@context"] = [WASTE_CONTEXT, NGSI_LD_CORE_CONTEXT]
    return entity


def greenspace_record(asset: Asset, latest: dict[Quantity, LatestState]) -> dict | None:
    """A tree's or green space's newest soil readings as a GreenspaceRecord (ParksAndGardens); None without any."""
    vwc = latest.get(Quantity.SOIL_VWC)
    temperature = latest.get(Quantity.SOIL_TEMPERATURE_C)
    observed = [state for state in (vwc, temperature) if state is not None]
    if not observed:
        return None
    newest = max(state.time for state in observed)
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:GreenspaceRecord:{asset.id}",
        "type": "GreenspaceRecord",
        "dateObserved": _date_time(newest),
        "location": _point(asset),
        "refGreenspace": {"type": "Relationship", "object": f"urn:ngsi-ld:Greenspace:{asset.id}"},
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{observed[0].device}"},
    }
    if vwc is not None:
        entity["soilMoistureVwc"] = _property(round(min(max(vwc.value, 0.0), 1.0), 4), vwc.time)
    if temperature is not None:
        entity["soilTemperature"] = _property(temperature.value, temperature.time, unit_code="CEL")
    entity["@context"] = [PARKS_CONTEXT, NGSI_LD_CORE_CONTEXT]
    return entity


def route_vehicle(route: StoredRoute, language: Language) -> dict[str, Any] | None:
    """A route's vehicle on its day as a Vehicle (smart-data-models Transportation): the service it provides, the
    trips it makes, and, as the Flurfunk property `plannedSequence`, its stops and trips to the disposal site or
    hydrant in driving order with loads (litres). None for a route planned without a fleet."""
    if route.vehicle is None:
        return None
    water = route.kind is TaskKind.WATER
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Vehicle:{route.municipality}:{route.vehicle}:{route.id}",
        "type": "Vehicle",
        "name": _property(route.vehicle),
        "vehicleType": _property("tanker" if water else "lorry"),
        "category": _property(["municipalServices"]),
        "serviceProvided": _property(["parksAndGardens" if water else "garbageCollection"]),
        "currentTripCount": _property(len(route.reload_after) + 1),
        "areaServed": _property(route.municipality),
        "plannedSequence": _property(
            [
                {key: value for key, value in visit.items() if key != "label" and value is not None}
                for visit in route_sequence(route, language)
            ]
        ),
    }
    if route.capacity_l is not None:
        entity["cargoCapacity"] = _property(route.capacity_l, unit_code="LTR")
    entity["@context"] = [TRANSPORTATION_CONTEXT, NGSI_LD_CORE_CONTEXT]
    return entity


@router.get("/feed/ngsi-ld/entities")
def ngsi_ld_entities(
    context: Context,
    principal: Reader,
    type: NgsiType = "WasteContainer",  # the NGSI-LD API's own parameter name
    municipality: str | None = None,
    day: date | None = None,
) -> JSONResponse:
    """The caller's bins (`type=WasteContainer`), soil records (`type=GreenspaceRecord`) or today's route vehicles
    (`type=Vehicle`, with their planned sequence) as NGSI-LD normalized entities with their @context, as an NGSI-LD
    broker's `GET /ngsi-ld/v1/entities?type=` answers."""
    scope = town_scope(principal, municipality)
    if type == "Vehicle":
        today = datetime.now(TOWN_ZONE).date()
        language = context.settings.language
        vehicles = [route_vehicle(route, language) for route in context.store.routes(day=day or today, scope=scope)]
        return JSONResponse([v for v in vehicles if v is not None], media_type=NGSI_LD_MEDIA_TYPE)
    wanted = {AssetKind.BIN} if type == "WasteContainer" else {AssetKind.TREE, AssetKind.GREEN_SPACE}
    assets = [a for a in context.store.assets(scope=scope) if a.kind in wanted]
    latest = context.store.latest({a.id for a in assets}, scope)
    entities: list[dict[str, Any]] = []
    if type == "WasteContainer":
        today = datetime.now(UTC).date()
        next_collection: dict[str, datetime] = {}
        for stored in context.store.tasks(
            kind=TaskKind.COLLECT, start=today, end=today + timedelta(days=8), scope=scope
        ):
            if stored.task.state in (TaskState.PLANNED, TaskState.ASSIGNED, TaskState.IN_PROGRESS):
                next_collection.setdefault(stored.task.asset, stored.task.due_until)
        entities = [waste_container(a, latest.get(a.id, {}), next_collection.get(a.id)) for a in assets]
    else:
        entities = [e for a in assets if (e := greenspace_record(a, latest.get(a.id, {}))) is not None]
    return JSONResponse(entities, media_type=NGSI_LD_MEDIA_TYPE)
