"""A town's routes for one task kind with its fleet (`cloud.scheduler.fleet`): vehicles per waste type, capacity,
shifts, disposal trips or tank refills, market-hour time windows; solved by PyVRP (`cloud.scheduler.routing_vrp`).

`plan_day(..., fleet=…)` calls `route_with_fleet` once per town and kind; it is pure apart from PyVRP's search.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time

from cloud.scheduler.calendar import TownCalendar
from cloud.scheduler.fleet import Fleet, FleetVehicle, Site, TownFleet, waste_type_of
from cloud.scheduler.planning import Route, RouteReload, route_id
from cloud.scheduler.routing_vrp import (
    RouteDepot,
    RoutingProblem,
    Stop,
    UnservedReason,
    Vehicle,
    VehicleRoute,
    solve_routes,
)
from flurfunk.contracts import Asset, Depot, TaskKind
from flurfunk.i18n import MESSAGES, Language, text

# Place ids of the yard and the sites carry '@', which no asset id may hold, so they never meet a stop's id.
_YARD = "@bauhof"
_SITE = "@site:"


@dataclass(frozen=True)
class FleetStop:
    """An asset to serve: `load_l` is the bin volume to take up (collect) or the litres to pour (water)."""

    asset: Asset
    load_l: int
    required: bool = True
    prize_km: float = 0.0  # an optional stop is worth this many km of extra driving


@dataclass(frozen=True)
class FleetRoute(Route):
    """A route planned with the fleet: the planner's `Route` plus what the store keeps so the feed, the pages and a
    dispatcher's later change can show and recompute it — the vehicle copy's crew, its capacity and reload site,
    the load and service time of each stop (in route order), its shift end and the speed it was planned with."""

    crew: str | None = None
    capacity_l: int | None = None
    reload_site: Site | None = None
    stop_loads: tuple[int, ...] = ()
    stop_service_s: tuple[int, ...] = ()
    shift_end_s: int | None = None
    speed_kmh: float | None = None


@dataclass(frozen=True)
class FleetRoutes:
    """The routes of one town and kind, the optional stops left out (asset id, why) and the required stops that no
    vehicle serves (they stay planned without a route)."""

    routes: list[Route]
    unserved: list[tuple[str, str]] = field(default_factory=list)
    unrouted: list[tuple[str, str]] = field(default_factory=list)


def route_with_fleet(
    day: date,
    kind: TaskKind,
    depot: Depot,
    town_fleet: TownFleet,
    fleet: Fleet,
    stops: Sequence[FleetStop],
    road_factor: float,
    calendar: TownCalendar | None = None,
    language: Language = "de",
) -> FleetRoutes:
    """Route `stops` of one kind (collect or water) with the town's vehicles for it."""
    town = depot.municipality
    water = kind is TaskKind.WATER
    vehicles = town_fleet.vehicles_for(water)
    by_id = {stop.asset.id: stop for stop in stops}
    waste_of = {stop.asset.id: None if water else waste_type_of(stop.asset) for stop in stops}
    served_types = {None if water else vehicle.serves for vehicle in vehicles}
    result = FleetRoutes(routes=[])
    routable = []
    for stop in sorted(stops, key=lambda entry: entry.asset.id):
        if waste_of[stop.asset.id] in served_types:
            routable.append(stop)
            continue
        reason = text(
            "plan.skip.unserved.no_vehicle",
            language,
            asset=stop.asset.id,
            kind=_kind_label(kind, waste_of[stop.asset.id], language),
        )
        (result.unrouted if stop.required else result.unserved).append((stop.asset.id, reason))
    if not routable:
        return result

    reload_sites = sorted({vehicle.reload_at for vehicle in vehicles if vehicle.reload_at is not None})
    depots = (
        RouteDepot(_YARD, depot.latitude, depot.longitude),
        *(
            RouteDepot(
                _SITE + site_id,
                town_fleet.sites[site_id].latitude,
                town_fleet.sites[site_id].longitude,
                unload_s=town_fleet.sites[site_id].unload_s,
            )
            for site_id in reload_sites
        ),
    )
    problem = RoutingProblem(
        depots=depots,
        vehicles=tuple(_vehicle(vehicle, water) for vehicle in vehicles),
        stops=tuple(_stop(stop, waste_of[stop.asset.id], vehicles, water, day, calendar) for stop in routable),
        road_factor=max(road_factor, 1.0),
        speed_kmh=fleet.speed_kmh,
    )
    # CPU seconds, not wall: on a loaded server the iterations, not the clock, should end the search (determinism).
    solution = solve_routes(problem, fleet.time_limit_s, fleet.seed, max_iterations=fleet.max_iterations, clock="cpu")

    single = sum(vehicle.count for vehicle in vehicles) == 1
    site_points = {place.id: (place.latitude or 0.0, place.longitude or 0.0) for place in depots}
    vehicle_of = {vehicle.id: vehicle for vehicle in vehicles}
    service_of = {stop.id: stop.service_s for stop in problem.stops}
    for vehicle_route in solution.routes:
        rid = (
            route_id(day, kind, town)
            if single
            else route_id(day, kind, town, vehicle=vehicle_route.vehicle_id, copy=vehicle_route.vehicle_index)
        )
        route = _route(rid, day, kind, town, vehicle_route, by_id, site_points)
        vehicle = vehicle_of[vehicle_route.vehicle_id]
        result.routes.append(
            FleetRoute(
                **{name: getattr(route, name) for name in Route.__dataclass_fields__},
                crew=vehicle.crew_of(vehicle_route.vehicle_index),
                capacity_l=vehicle.capacity_l,
                reload_site=town_fleet.sites.get(vehicle.reload_at) if vehicle.reload_at is not None else None,
                stop_loads=tuple(by_id[stop].load_l for stop in route.stops),
                stop_service_s=tuple(service_of[stop] for stop in route.stops),
                shift_end_s=_seconds(vehicle.shift_end),
                speed_kmh=fleet.speed_kmh,
            )
        )
    result.routes.sort(key=lambda route: route.id)
    shifts = {vehicle.serves: f"{vehicle.shift_start:%H:%M}–{vehicle.shift_end:%H:%M}" for vehicle in vehicles}
    for unserved in solution.unserved:
        stop_type = waste_of[unserved.stop_id]
        reason = text(
            f"plan.skip.unserved.{unserved.reason.value}",
            language,
            asset=unserved.stop_id,
            kind=_kind_label(kind, stop_type, language),
            shift=shifts.get(stop_type or "water", ""),
        )
        result.unserved.append((unserved.stop_id, reason))
    return result


def _vehicle(vehicle: FleetVehicle, water: bool) -> Vehicle:
    return Vehicle(
        id=vehicle.id,
        start_depot_id=_YARD,
        capacity=vehicle.capacity_l,
        shift_start_s=_seconds(vehicle.shift_start),
        shift_end_s=_seconds(vehicle.shift_end),
        count=vehicle.count,
        waste_type=None if water else vehicle.serves,
        reload_depot_ids=(_SITE + vehicle.reload_at,) if vehicle.reload_at is not None else (),
    )


def _stop(
    stop: FleetStop,
    waste_type: str | None,
    vehicles: Sequence[FleetVehicle],
    water: bool,
    day: date,
    calendar: TownCalendar | None,
) -> Stop:
    serving = [vehicle for vehicle in vehicles if water or vehicle.serves == waste_type]
    service_s = max(vehicle.service_s for vehicle in serving)
    if water:  # pouring takes as long as the slowest pump needs for the litres
        service_s += round(stop.load_l / min(vehicle.pump_l_per_min for vehicle in serving) * 60)
    blocked_until = calendar.unreachable_until(stop.asset, day) if calendar is not None else None
    return Stop(
        id=stop.asset.id,
        latitude=stop.asset.latitude,
        longitude=stop.asset.longitude,
        pickup=0 if water else stop.load_l,
        delivery=stop.load_l if water else 0,
        service_s=service_s,
        window_start_s=_seconds(blocked_until) if blocked_until is not None else 0,
        required=stop.required,
        prize_m=round(stop.prize_km * 1000) if not stop.required else 0,
        waste_type=waste_type,
    )


def _route(
    rid: str,
    day: date,
    kind: TaskKind,
    town: str,
    vehicle_route: VehicleRoute,
    by_id: dict[str, FleetStop],
    site_points: dict[str, tuple[float, float]],
) -> Route:
    """The planner's Route: the stops in order, the yard and each reload site in the polyline where it is visited."""
    polyline = [site_points[vehicle_route.start_depot_id]]
    reloads: list[RouteReload] = []
    pending = list(vehicle_route.reloads)
    trip_loads: dict[int, int] = defaultdict(int)
    for position, visit in enumerate(vehicle_route.visits):
        while pending and pending[0].trip < visit.trip:
            reload = pending.pop(0)
            polyline.append(site_points[reload.depot_id])
            reloads.append(RouteReload(after_stop=position, site=reload.depot_id.removeprefix(_SITE)))
        asset = by_id[visit.stop_id].asset
        polyline.append((asset.latitude, asset.longitude))
        trip_loads[visit.trip] += by_id[visit.stop_id].load_l
    for reload in pending:  # a last trip to the site before going home
        polyline.append(site_points[reload.depot_id])
        reloads.append(RouteReload(after_stop=len(vehicle_route.visits), site=reload.depot_id.removeprefix(_SITE)))
    polyline.append(site_points[vehicle_route.end_depot_id])
    return Route(
        id=rid,
        municipality=town,
        kind=kind,
        day=day,
        stops=[visit.stop_id for visit in vehicle_route.visits],
        km=vehicle_route.km,
        polyline=polyline,
        vehicle=vehicle_route.vehicle_id,
        reloads=tuple(reloads),
        trip_loads=tuple(trip_loads[trip] for trip in range(vehicle_route.trips)),
        service_starts_s=tuple(visit.service_start_s for visit in vehicle_route.visits),
        start_s=vehicle_route.start_s,
        end_s=vehicle_route.end_s,
        late_s=vehicle_route.time_warp_s,
    )


def _kind_label(kind: TaskKind, waste_type: str | None, language: Language) -> str:
    if waste_type is None:
        return text(f"task.kind.{kind.value}", language)
    key = f"plan.waste.{waste_type}"
    return text(key, language) if key in MESSAGES else waste_type


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


__all__ = [
    "FleetRoute",
    "FleetRoutes",
    "FleetStop",
    "UnservedReason",
    "route_with_fleet",
]
