"""Routes for the works yard's vehicles with PyVRP: several depots and vehicles, capacity, time windows, optional stops
with prizes, must-go stops and disposal trips (reloads). `routing.build_route` stays the fast one-vehicle fallback.

Entry: `solve_routes(problem, time_limit_s, seed, *, max_iterations=None, clock="wall") -> RoutingSolution`, where
`RoutingProblem(depots=(RouteDepot…), vehicles=(Vehicle…), stops=(Stop…), road_factor, speed_kmh, travel_table)`.
The solution lists, per used vehicle, its `VehicleRoute` (ordered `Visit`s with arrival/service times and load,
`Reload`s, distance_m/km, duration_s, pickup/delivery), and the `Unserved` optional stops with an `UnservedReason`.
`RoutingSettings` (env `FLURFUNK_ROUTING_*`) holds the road factor, speed, time limit, seed and the OSRM table source.

- Units are integers, as PyVRP wants them: metres, seconds (since the day's midnight, local time) and load units
  (litres or kg; the problem decides, one unit for all its stops and vehicles).
- The objective is road metres driven (plus each vehicle's `fixed_cost_m` when it leaves the yard) minus the
  `prize_m` of the optional stops served: a stop with `prize_m=800` is worth 800 m of extra driving.
- Travel: from coordinates (haversine × `road_factor`, at `speed_kmh`) by default, or from a road table (OSRM table
  API response, `load_osrm_table` / `parse_osrm_table`) when `RoutingProblem.travel_table` is set.
- Waste types: a vehicle serves one waste type. Stops and vehicles are split by `waste_type` and each part is solved
  as its own problem (the time limit shared by stop count); a stop without waste type (watering, inspection) goes to
  a vehicle without one. Separate problems are smaller and keep a glass stop off a paper truck by construction,
  where one problem with a load dimension per type would only keep it off by penalty.
- Reloads: a vehicle with `reload_depot_ids` may drive to one of those depots (a disposal site, or a hydrant for a
  water tanker) in mid-shift to empty (pickups) or refill (deliveries), at most `max_reloads` times.
- Determinism: the same problem and seed give the same solution whenever an iteration limit (`max_iterations`)
  stops the search before the time limit; a search stopped by the clock alone depends on the machine's speed.
  A vehicle ends its shift at `end_depot_id` (default: its start depot) with what it carries: set the end depot to
  the disposal site when trucks must not park loaded.
- Unserved optional stops come back with a reason: not worth the detour, capacity, time window, or no vehicle. The
  reason is found by trying the stop in its cheapest insertion places (and in an idle vehicle), not proven.
"""

from __future__ import annotations

import enum
import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.scheduler.geo import distance_matrix_km

MAX_STOPS = 5000
MAX_DEPOTS = 100
MAX_VEHICLES = 1000
MAX_TABLE_BYTES = 64 * 1024 * 1024
MAX_TABLE_PLACES = 6000
DAY_SECONDS = 24 * 3600
MAX_TIME_S = 7 * DAY_SECONDS  # a plan spans a day; a week leaves room for night shifts without admitting nonsense
MAX_LOAD = 10_000_000  # litres/kg on one stop or vehicle
MAX_PRIZE_M = 10_000_000
MAX_LEG_M = 10_000_000  # 10,000 km: more is a unit error (km given as mm), not a road
MAX_LEG_S = 7 * DAY_SECONDS
UNREACHABLE_M = MAX_LEG_M  # OSRM answers null for a pair without a road between them

# How many of an unserved stop's cheapest insertion places are checked for capacity and time: enough to tell why it
# stayed out, few enough that a day with hundreds of unserved bins is explained in milliseconds.
_INSERTION_CANDIDATES = 8


class RoutingInputError(ValueError):
    """The routing problem cannot be solved as given (unknown depot, duplicate ids, a value out of range)."""


class TravelTableError(ValueError):
    """A road table (OSRM table response) is malformed, too large, or does not cover the places asked for."""


class UnservedReason(enum.StrEnum):
    """Why an optional stop was left out of every route."""

    NOT_WORTH_DETOUR = "not_worth_detour"  # it fits, but the extra driving costs more than its prize
    CAPACITY = "capacity"  # no vehicle has room for it (even with its reloads)
    TIME_WINDOW = "time_window"  # no vehicle can reach it within its window and the crews' shifts
    NO_VEHICLE = "no_vehicle"  # no vehicle serves its waste type


@dataclass(frozen=True)
class RouteDepot:
    """A place where vehicles start, end or reload: a town's Bauhof, a disposal site, a water point.

    `unload_s` is the time a reload visit takes there (tipping the load, filling the tank).
    """

    id: str
    latitude: float | None = None
    longitude: float | None = None
    unload_s: int = 0

    def __post_init__(self) -> None:
        _check_id("depot", self.id)
        _check_coordinates(f"depot {self.id!r}", self.latitude, self.longitude)
        _check_int(f"depot {self.id!r} unload_s", self.unload_s, 0, MAX_LEG_S)


@dataclass(frozen=True)
class Vehicle:
    """`count` identical vehicles of one yard: capacity, the crew's shift and where they may reload."""

    id: str
    start_depot_id: str
    capacity: int
    shift_start_s: int = 6 * 3600
    shift_end_s: int = 15 * 3600
    count: int = 1
    end_depot_id: str | None = None  # None: back to the start depot
    waste_type: str | None = None  # None: serves only stops without a waste type
    reload_depot_ids: tuple[str, ...] = ()
    max_reloads: int | None = None  # None: as many as the shift allows
    fixed_cost_m: int = 0  # metres-equivalent of taking one more vehicle out

    def __post_init__(self) -> None:
        _check_id("vehicle", self.id)
        name = f"vehicle {self.id!r}"
        _check_int(f"{name} capacity", self.capacity, 0, MAX_LOAD)
        _check_int(f"{name} count", self.count, 1, MAX_VEHICLES)
        _check_int(f"{name} shift_start_s", self.shift_start_s, 0, MAX_TIME_S)
        _check_int(f"{name} shift_end_s", self.shift_end_s, self.shift_start_s, MAX_TIME_S)
        _check_int(f"{name} fixed_cost_m", self.fixed_cost_m, 0, MAX_PRIZE_M)
        if self.max_reloads is not None:
            _check_int(f"{name} max_reloads", self.max_reloads, 0, 1000)
        if not isinstance(self.reload_depot_ids, tuple):
            raise RoutingInputError(f"{name}: reload_depot_ids must be a tuple of depot ids")

    @property
    def end_depot(self) -> str:
        return self.end_depot_id if self.end_depot_id is not None else self.start_depot_id


@dataclass(frozen=True)
class Stop:
    """A place to serve: a bin to empty (`pickup`), a tree to water (`delivery`), an asset to inspect.

    Required stops are always routed; optional ones (`required=False`) only when their `prize_m` outweighs the detour.
    A time window is (`window_start_s`, `window_end_s`): service must begin inside it.
    """

    id: str
    latitude: float | None = None
    longitude: float | None = None
    pickup: int = 0
    delivery: int = 0
    service_s: int = 0
    window_start_s: int = 0
    window_end_s: int = MAX_TIME_S
    required: bool = True
    prize_m: int = 0
    waste_type: str | None = None

    def __post_init__(self) -> None:
        _check_id("stop", self.id)
        name = f"stop {self.id!r}"
        _check_coordinates(name, self.latitude, self.longitude)
        _check_int(f"{name} pickup", self.pickup, 0, MAX_LOAD)
        _check_int(f"{name} delivery", self.delivery, 0, MAX_LOAD)
        _check_int(f"{name} service_s", self.service_s, 0, MAX_LEG_S)
        _check_int(f"{name} window_start_s", self.window_start_s, 0, MAX_TIME_S)
        _check_int(f"{name} window_end_s", self.window_end_s, self.window_start_s, MAX_TIME_S)
        _check_int(f"{name} prize_m", self.prize_m, 0, MAX_PRIZE_M)


@dataclass(frozen=True, eq=False)
class TravelTable:
    """Road distances (m) and durations (s) between places, row = from, column = to, in the order of `place_ids`."""

    place_ids: tuple[str, ...]
    distances_m: np.ndarray
    durations_s: np.ndarray
    _index: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        count = len(self.place_ids)
        if count > MAX_TABLE_PLACES:
            raise TravelTableError(f"a road table may cover at most {MAX_TABLE_PLACES} places, got {count}")
        index = {place_id: position for position, place_id in enumerate(self.place_ids)}
        if len(index) != count:
            duplicate = next(pid for pid, n in _counts(self.place_ids).items() if n > 1)
            raise TravelTableError(f"place {duplicate!r} appears more than once in the road table")
        distances = np.asarray(self.distances_m, dtype=np.int64)
        durations = np.asarray(self.durations_s, dtype=np.int64)
        for name, matrix, limit in (("distances", distances, MAX_LEG_M), ("durations", durations, MAX_LEG_S)):
            if matrix.shape != (count, count):
                raise TravelTableError(f"{name} must be {count}×{count} for {count} places, got {matrix.shape}")
            if count and (matrix.min() < 0 or matrix.max() > limit):
                raise TravelTableError(f"{name} must lie in 0..{limit}, got {matrix.min()}..{matrix.max()}")
        object.__setattr__(self, "distances_m", distances)
        object.__setattr__(self, "durations_s", durations)
        object.__setattr__(self, "_index", index)

    def submatrices(self, place_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Distances and durations among `place_ids`, in that order."""
        missing = [place_id for place_id in place_ids if place_id not in self._index]
        if missing:
            shown = ", ".join(repr(place_id) for place_id in missing[:5])
            raise TravelTableError(f"the road table has no row for {len(missing)} place(s): {shown}")
        rows = np.array([self._index[place_id] for place_id in place_ids], dtype=np.intp)
        grid = np.ix_(rows, rows)
        return self.distances_m[grid], self.durations_s[grid]


@dataclass(frozen=True)
class RoutingProblem:
    """One day's routing question: the yards, the vehicles and the stops, and how to measure travel between them."""

    depots: tuple[RouteDepot, ...]
    vehicles: tuple[Vehicle, ...]
    stops: tuple[Stop, ...]
    road_factor: float = 1.3  # road km per great-circle km; rural Hesse measures 1.2–1.4
    speed_kmh: float = 30.0  # average speed of a refuse truck between stops, stopping and village streets included
    travel_table: TravelTable | None = None

    def __post_init__(self) -> None:
        if len(self.stops) > MAX_STOPS:
            raise RoutingInputError(f"a routing problem may have at most {MAX_STOPS} stops, got {len(self.stops)}")
        if not 1 <= len(self.depots) <= MAX_DEPOTS:
            raise RoutingInputError(f"a routing problem needs 1..{MAX_DEPOTS} depots, got {len(self.depots)}")
        if sum(vehicle.count for vehicle in self.vehicles) > MAX_VEHICLES:
            raise RoutingInputError(f"a routing problem may have at most {MAX_VEHICLES} vehicles")
        if not (math.isfinite(self.road_factor) and 1.0 <= self.road_factor <= 5.0):
            raise RoutingInputError(f"road_factor must lie in 1..5, got {self.road_factor!r}")
        if not (math.isfinite(self.speed_kmh) and 1.0 <= self.speed_kmh <= 130.0):
            raise RoutingInputError(f"speed_kmh must lie in 1..130, got {self.speed_kmh!r}")
        place_ids = [depot.id for depot in self.depots] + [stop.id for stop in self.stops]
        for place_id, count in _counts(place_ids).items():
            if count > 1:
                raise RoutingInputError(f"place id {place_id!r} is used by more than one depot or stop")
        depot_ids = {depot.id for depot in self.depots}
        for place_id, count in _counts(vehicle.id for vehicle in self.vehicles).items():
            if count > 1:
                raise RoutingInputError(f"vehicle id {place_id!r} appears more than once")
        for vehicle in self.vehicles:
            for role, depot_id in (
                ("start depot", vehicle.start_depot_id),
                ("end depot", vehicle.end_depot),
                *(("reload depot", reload_id) for reload_id in vehicle.reload_depot_ids),
            ):
                if depot_id not in depot_ids:
                    raise RoutingInputError(f"vehicle {vehicle.id!r}: {role} {depot_id!r} is not among the depots")
        if self.travel_table is None:
            for place in (*self.depots, *self.stops):
                if place.latitude is None:
                    raise RoutingInputError(f"{place.id!r} has no coordinates and there is no road table")


@dataclass(frozen=True)
class Visit:
    """A stop on a route: when the vehicle arrives, when service begins and ends, and its load after the stop."""

    stop_id: str
    trip: int  # 0 for the first trip; one more after each reload
    arrival_s: int
    service_start_s: int
    departure_s: int
    load_after: int


@dataclass(frozen=True)
class Reload:
    """A mid-shift visit to a reload depot: tip the collected load (or refill the tank) and start the next trip."""

    depot_id: str
    trip: int  # the trip that ends here
    arrival_s: int
    departure_s: int
    load_before: int
    load_after: int


@dataclass(frozen=True)
class VehicleRoute:
    """What one vehicle does in the day: its stops in order, its reloads, and the totals."""

    vehicle_id: str
    vehicle_index: int  # 0..count-1 among the vehicle's identical copies
    start_depot_id: str
    end_depot_id: str
    visits: tuple[Visit, ...]
    reloads: tuple[Reload, ...]
    start_s: int
    end_s: int
    distance_m: int
    duration_s: int
    pickup: int  # total load collected over all trips
    delivery: int  # total load delivered over all trips
    time_warp_s: int  # > 0: late somewhere (only when the must-go stops cannot all be served in time)
    excess_load: int  # > 0: overloaded on some trip (same)

    @property
    def km(self) -> float:
        return self.distance_m / 1000.0

    @property
    def trips(self) -> int:
        return len(self.reloads) + 1


@dataclass(frozen=True)
class Unserved:
    """An optional stop left out, why, and what serving it would have cost (the cheapest feasible detour, m)."""

    stop_id: str
    reason: UnservedReason
    prize_m: int
    detour_m: int | None  # None when no feasible place to insert it was found


@dataclass(frozen=True)
class RoutingSolution:
    """The routes of the used vehicles, the unserved stops and the search's bookkeeping."""

    routes: tuple[VehicleRoute, ...]
    unserved: tuple[Unserved, ...]
    feasible: bool  # False: some must-go stop made a route late or overloaded, or has no vehicle at all
    unroutable_required: tuple[str, ...]  # must-go stops no vehicle serves (their waste type has no vehicle)
    solve_s: float
    iterations: int

    @property
    def distance_m(self) -> int:
        return sum(route.distance_m for route in self.routes)

    @property
    def km(self) -> float:
        return self.distance_m / 1000.0

    def route_of(self, stop_id: str) -> VehicleRoute | None:
        """The route serving `stop_id`, or None."""
        for route in self.routes:
            if any(visit.stop_id == stop_id for visit in route.visits):
                return route
        return None


def solve_routes(
    problem: RoutingProblem,
    time_limit_s: float,
    seed: int,
    *,
    max_iterations: int | None = None,
    clock: Literal["wall", "cpu"] = "wall",
) -> RoutingSolution:
    """Routes for `problem` found by PyVRP within `time_limit_s` seconds (shared by the waste types' sub-problems).

    With `max_iterations`, each sub-problem also stops after that many iterations: the result is then the same for the
    same seed on any machine, as long as the time limit does not strike first. `clock="cpu"` counts the process's
    CPU seconds instead of wall-clock seconds: for benchmarks on a shared machine, where other work steals the core.
    """
    if not (math.isfinite(time_limit_s) and 0 < time_limit_s <= 3600):
        raise RoutingInputError(f"time_limit_s must lie in (0, 3600], got {time_limit_s!r}")
    if clock not in ("wall", "cpu"):
        raise RoutingInputError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    if max_iterations is not None and not (isinstance(max_iterations, int) and max_iterations >= 1):
        raise RoutingInputError(f"max_iterations must be a positive integer, got {max_iterations!r}")
    started = time.perf_counter()
    distances, durations = travel_matrices(problem)
    depot_count = len(problem.depots)

    stops_by_type: dict[str | None, list[int]] = defaultdict(list)
    for position, stop in enumerate(problem.stops):
        stops_by_type[stop.waste_type].append(position)
    vehicles_by_type: dict[str | None, list[Vehicle]] = defaultdict(list)
    for vehicle in problem.vehicles:
        vehicles_by_type[vehicle.waste_type].append(vehicle)

    routes: list[VehicleRoute] = []
    unserved: list[Unserved] = []
    unroutable: list[str] = []
    feasible = True
    iterations = 0
    total_stops = max(len(problem.stops), 1)
    # Sorted so the order of sub-problems (and with it each one's share of the time) never depends on dict order.
    for waste_type in sorted(stops_by_type, key=lambda kind: (kind is not None, kind or "")):
        stop_positions = stops_by_type[waste_type]
        vehicles = vehicles_by_type.get(waste_type, [])
        if not vehicles:
            for position in stop_positions:
                stop = problem.stops[position]
                if stop.required:
                    unroutable.append(stop.id)
                    feasible = False
                else:
                    unserved.append(Unserved(stop.id, UnservedReason.NO_VEHICLE, stop.prize_m, None))
            continue
        share = time_limit_s * len(stop_positions) / total_stops
        part = _SubProblem(problem, vehicles, stop_positions, distances, durations, depot_count)
        part_routes, part_unserved, part_feasible, part_iterations = part.solve(share, seed, max_iterations, clock)
        routes.extend(part_routes)
        unserved.extend(part_unserved)
        feasible = feasible and part_feasible
        iterations += part_iterations
    return RoutingSolution(
        routes=tuple(routes),
        unserved=tuple(unserved),
        feasible=feasible,
        unroutable_required=tuple(unroutable),
        solve_s=time.perf_counter() - started,
        iterations=iterations,
    )


def travel_matrices(problem: RoutingProblem) -> tuple[np.ndarray, np.ndarray]:
    """Integer metres and seconds between all places: the depots first, then the stops, in the problem's order."""
    place_ids = [depot.id for depot in problem.depots] + [stop.id for stop in problem.stops]
    if problem.travel_table is not None:
        return problem.travel_table.submatrices(place_ids)
    points = [(place.latitude, place.longitude) for place in (*problem.depots, *problem.stops)]
    distances = np.rint(distance_matrix_km(points, problem.road_factor) * 1000.0).astype(np.int64)
    metres_per_second = problem.speed_kmh / 3.6
    durations = np.rint(distances / metres_per_second).astype(np.int64)
    return distances, durations


class _SubProblem:
    """The stops of one waste type and the vehicles that serve it, as one PyVRP instance."""

    def __init__(
        self,
        problem: RoutingProblem,
        vehicles: Sequence[Vehicle],
        stop_positions: Sequence[int],
        distances: np.ndarray,
        durations: np.ndarray,
        depot_count: int,
    ) -> None:
        import pyvrp  # imported here: only the cloud extra installs it, and the fallback router must work without

        self.problem = problem
        self.vehicles = list(vehicles)
        self.stops = [problem.stops[position] for position in stop_positions]
        depot_index = {depot.id: index for index, depot in enumerate(problem.depots)}
        # Locations: every depot (indices 0..D-1), then this part's stops; the matrices follow the same order.
        rows = np.concatenate([np.arange(depot_count), depot_count + np.asarray(stop_positions, dtype=np.intp)])
        grid = np.ix_(rows, rows)
        self.distances = np.ascontiguousarray(distances[grid])
        durations_part = np.ascontiguousarray(durations[grid])
        self.depot_count = depot_count
        locations = [
            pyvrp.Location(x=_coordinate(place.longitude), y=_coordinate(place.latitude), name=place.id)
            for place in (*problem.depots, *self.stops)
        ]
        depots = [
            pyvrp.Depot(location=index, service_duration=depot.unload_s, name=depot.id)
            for index, depot in enumerate(problem.depots)
        ]
        clients = [
            pyvrp.Client(
                location=depot_count + index,
                delivery=[stop.delivery],
                pickup=[stop.pickup],
                service_duration=stop.service_s,
                tw_early=stop.window_start_s,
                tw_late=stop.window_end_s,
                prize=stop.prize_m,
                required=stop.required,
                name=stop.id,
            )
            for index, stop in enumerate(self.stops)
        ]
        vehicle_types = [
            pyvrp.VehicleType(
                num_available=vehicle.count,
                capacity=[vehicle.capacity],
                start_depot=depot_index[vehicle.start_depot_id],
                end_depot=depot_index[vehicle.end_depot],
                fixed_cost=vehicle.fixed_cost_m,
                tw_early=vehicle.shift_start_s,
                tw_late=vehicle.shift_end_s,
                reload_depots=[depot_index[reload_id] for reload_id in vehicle.reload_depot_ids],
                max_reloads=vehicle.max_reloads if vehicle.max_reloads is not None else _UNLIMITED_RELOADS,
                name=vehicle.id,
            )
            for vehicle in self.vehicles
        ]
        self.data = pyvrp.ProblemData(locations, clients, depots, vehicle_types, [self.distances], [durations_part])

    def solve(
        self, time_limit_s: float, seed: int, max_iterations: int | None, clock: str
    ) -> tuple[list[VehicleRoute], list[Unserved], bool, int]:
        import pyvrp
        from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

        stop: object = MaxRuntime(time_limit_s) if clock == "wall" else _MaxCpuTime(time_limit_s)
        if max_iterations is not None:
            stop = MultipleCriteria([stop, MaxIterations(max_iterations)])
        result = pyvrp.solve(self.data, stop, seed=seed, collect_stats=False, display=False)
        solution = result.best
        routes = [
            self._route(route, used)
            for route, used in zip(solution.routes(), self._vehicle_indices(solution), strict=True)
        ]
        served = {activity.idx for route in solution.routes() for activity in route.schedule() if activity.is_client()}
        unserved = [
            self._why_unserved(client, solution)
            for client in range(len(self.stops))
            if client not in served and not self.stops[client].required
        ]
        return routes, unserved, bool(solution.is_feasible()), int(result.num_iterations)

    def _vehicle_indices(self, solution: object) -> list[int]:
        """Number the used copies of each vehicle 0, 1, … in route order."""
        seen: dict[int, int] = defaultdict(int)
        indices = []
        for route in solution.routes():  # type: ignore[attr-defined]
            vehicle_type = route.vehicle_type()
            indices.append(seen[vehicle_type])
            seen[vehicle_type] += 1
        return indices

    def _route(self, route: object, vehicle_index: int) -> VehicleRoute:
        vehicle = self.vehicles[route.vehicle_type()]  # type: ignore[attr-defined]
        schedule = list(route.schedule())  # type: ignore[attr-defined]
        trip_pickups: dict[int, int] = defaultdict(int)
        trip_deliveries: dict[int, int] = defaultdict(int)
        for activity in schedule:
            if activity.is_client():
                stop = self.stops[activity.idx]
                trip_pickups[activity.trip] += stop.pickup
                trip_deliveries[activity.trip] += stop.delivery
        visits: list[Visit] = []
        reloads: list[Reload] = []
        load = trip_deliveries[0]
        for activity in schedule[1:-1]:
            arrival = activity.start_time - activity.wait_duration
            if activity.is_client():
                stop = self.stops[activity.idx]
                load += stop.pickup - stop.delivery
                visits.append(
                    Visit(stop.id, activity.trip, arrival, activity.start_time, activity.end_time, load_after=load)
                )
            else:
                # A depot inside the schedule is a reload; its `trip` is the trip it starts.
                next_load = trip_deliveries[activity.trip]
                reloads.append(
                    Reload(
                        self.problem.depots[activity.idx].id,
                        activity.trip - 1,
                        arrival,
                        activity.end_time,
                        load_before=load,
                        load_after=next_load,
                    )
                )
                load = next_load
        return VehicleRoute(
            vehicle_id=vehicle.id,
            vehicle_index=vehicle_index,
            start_depot_id=vehicle.start_depot_id,
            end_depot_id=vehicle.end_depot,
            visits=tuple(visits),
            reloads=tuple(reloads),
            start_s=int(route.start_time()),  # type: ignore[attr-defined]
            end_s=int(route.end_time()),  # type: ignore[attr-defined]
            distance_m=int(route.distance()),  # type: ignore[attr-defined]
            duration_s=int(route.duration()),  # type: ignore[attr-defined]
            pickup=sum(trip_pickups.values()),
            delivery=sum(trip_deliveries.values()),
            time_warp_s=int(route.time_warp()),  # type: ignore[attr-defined]
            excess_load=int(sum(route.excess_load())),  # type: ignore[attr-defined]
        )

    def _why_unserved(self, client: int, solution: object) -> Unserved:
        """Explain an optional stop left out: try it in its cheapest places in the routes (and in an idle vehicle)."""
        import pyvrp

        stop = self.stops[client]
        if stop.pickup > max(v.capacity for v in self.vehicles) or stop.delivery > max(
            v.capacity for v in self.vehicles
        ):
            return Unserved(stop.id, UnservedReason.CAPACITY, stop.prize_m, None)
        location = self.depot_count + client
        candidates: list[tuple[int, list[object], int]] = []  # (detour m, inner activities with the stop, type)
        used_per_type: dict[int, int] = defaultdict(int)
        client_activity = pyvrp.Activity(pyvrp.ActivityType.CLIENT, client)
        for route in solution.routes():  # type: ignore[attr-defined]
            vehicle_type = route.vehicle_type()
            used_per_type[vehicle_type] += 1
            schedule = list(route.schedule())
            inner = [pyvrp.Activity(activity.type, activity.idx) for activity in schedule[1:-1]]
            path = np.array([self._location(activity) for activity in schedule], dtype=np.intp)
            detours = self.distances[path[:-1], location] + self.distances[location, path[1:]]
            detours = detours - self.distances[path[:-1], path[1:]]
            for position in np.argsort(detours, kind="stable")[:_INSERTION_CANDIDATES]:
                with_stop = [*inner[:position], client_activity, *inner[position:]]
                candidates.append((int(detours[position]), with_stop, vehicle_type))
        for vehicle_type, vehicle in enumerate(self.vehicles):
            if used_per_type[vehicle_type] < vehicle.count:
                start = self.problem.depots.index(self._depot(vehicle.start_depot_id))
                end = self.problem.depots.index(self._depot(vehicle.end_depot))
                detour = self.distances[start, location] + self.distances[location, end] + vehicle.fixed_cost_m
                candidates.append((int(detour), [client_activity], vehicle_type))
        candidates.sort(key=lambda candidate: candidate[0])
        blocking: list[UnservedReason] = []
        for detour, activities, vehicle_type in candidates[: 2 * _INSERTION_CANDIDATES]:
            trial = pyvrp.Route(self.data, activities, vehicle_type)
            late, overloaded = trial.has_time_warp(), trial.has_excess_load()
            if not late and not overloaded:
                return Unserved(stop.id, UnservedReason.NOT_WORTH_DETOUR, stop.prize_m, detour)
            if late != overloaded:
                blocking.append(UnservedReason.TIME_WINDOW if late else UnservedReason.CAPACITY)
        reason = blocking[0] if blocking else UnservedReason.CAPACITY
        return Unserved(stop.id, reason, stop.prize_m, None)

    def _location(self, activity: object) -> int:
        if activity.is_client():  # type: ignore[attr-defined]
            return self.depot_count + activity.idx  # type: ignore[attr-defined]
        return activity.idx  # type: ignore[attr-defined]

    def _depot(self, depot_id: str) -> RouteDepot:
        return next(depot for depot in self.problem.depots if depot.id == depot_id)


_UNLIMITED_RELOADS = 2**63 - 1


class _MaxCpuTime:
    """PyVRP stopping criterion: stop once this process has used `limit_s` CPU seconds since the first call."""

    def __init__(self, limit_s: float) -> None:
        self._limit_s = limit_s
        self._started: float | None = None

    def __call__(self, best_cost: float) -> bool:
        now = time.process_time()
        if self._started is None:
            self._started = now
        return now - self._started > self._limit_s


class RoutingSettings(BaseSettings):
    """How the route engine measures travel and how long it searches; env prefix `FLURFUNK_ROUTING_`."""

    model_config = SettingsConfigDict(env_prefix="FLURFUNK_ROUTING_", extra="forbid")

    road_factor: float = Field(default=1.3, ge=1.0, le=5.0, description="road km per great-circle km")
    speed_kmh: float = Field(default=30.0, ge=1.0, le=130.0, description="average speed between stops")
    osrm_table: str = Field(
        default="",
        description="road table: a file with an OSRM table response (and `place_ids`), or an OSRM server's base URL "
        "(http://host:5000, asked for the places of each problem); empty: coordinates × road_factor",
    )
    osrm_profile: str = Field(default="driving", pattern=r"^[a-z][a-z0-9_-]{0,30}$")
    time_limit_s: float = Field(default=10.0, gt=0, le=3600)
    seed: int = Field(default=1, ge=0)
    max_iterations: int | None = Field(default=None, ge=1, description="also stop after this many iterations")

    def travel_table(self, places: Sequence[RouteDepot | Stop]) -> TravelTable | None:
        """The configured road table for these places, or None when travel comes from coordinates."""
        if not self.osrm_table:
            return None
        if self.osrm_table.startswith(("http://", "https://")):
            coordinates = []
            for place in places:
                if place.latitude is None or place.longitude is None:
                    raise RoutingInputError(f"{place.id!r} has no coordinates to ask the OSRM server about")
                coordinates.append((place.latitude, place.longitude))
            url = osrm_table_url(self.osrm_table, coordinates, self.osrm_profile)
            return load_osrm_table(url, [place.id for place in places])
        return load_osrm_table(self.osrm_table)


def parse_osrm_table(document: bytes | str, place_ids: Sequence[str] | None = None) -> TravelTable:
    """A road table from an OSRM table API response (`{"durations": [[...]], "distances": [[...]]}`).

    The rows are the places in the order they were asked for: give their ids as `place_ids`, or store them in the
    document under the extra key `place_ids` (how Flurfunk saves a table for a town's fixed set of places).
    OSRM's `null` (no road between two places) becomes a very long leg, so the solver avoids it.
    """
    if len(document) > MAX_TABLE_BYTES:
        raise TravelTableError(f"road table is {len(document)} bytes; at most {MAX_TABLE_BYTES} are read")
    try:
        body = json.loads(document)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TravelTableError(f"road table is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise TravelTableError("road table must be a JSON object with 'durations' and 'distances'")
    if "code" in body and body["code"] != "Ok":
        raise TravelTableError(f"OSRM answered code {body['code']!r}: {body.get('message', 'no message')}")
    if place_ids is None:
        place_ids = body.get("place_ids")
        if not isinstance(place_ids, list) or not all(isinstance(pid, str) for pid in place_ids):
            raise TravelTableError("road table has no 'place_ids' list of strings and none were given")
    ids = tuple(place_ids)
    matrices = []
    for key, limit in (("distances", UNREACHABLE_M), ("durations", MAX_LEG_S)):
        if key not in body:
            raise TravelTableError(f"road table has no {key!r} (ask OSRM with annotations=duration,distance)")
        matrices.append(_matrix(body[key], key, len(ids), limit))
    return TravelTable(ids, matrices[0], matrices[1])


def load_osrm_table(
    source: str | Path, place_ids: Sequence[str] | None = None, *, timeout_s: float = 30.0
) -> TravelTable:
    """Read a road table from a file, or fetch it from an OSRM server's table service (http:// or https:// URL).

    For a URL, it is used as given (build it with `osrm_table_url`), and `place_ids` must name the places in the
    order of the coordinates in it.
    """
    text = str(source)
    if text.startswith(("http://", "https://")):
        import httpx

        with httpx.Client(timeout=timeout_s) as client, client.stream("GET", text) as response:
            response.raise_for_status()
            chunks = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > MAX_TABLE_BYTES:
                    raise TravelTableError(f"road table from {text} exceeds {MAX_TABLE_BYTES} bytes")
                chunks.append(chunk)
        return parse_osrm_table(b"".join(chunks), place_ids)
    path = Path(text.removeprefix("file://"))
    try:
        size = path.stat().st_size
    except OSError as error:
        raise TravelTableError(f"cannot read road table {path}: {error.strerror}") from error
    if size > MAX_TABLE_BYTES:
        raise TravelTableError(f"road table {path} is {size} bytes; at most {MAX_TABLE_BYTES} are read")
    return parse_osrm_table(path.read_bytes(), place_ids)


def osrm_table_url(base_url: str, coordinates: Sequence[tuple[float, float]], profile: str = "driving") -> str:
    """The OSRM table service URL for (latitude, longitude) points, asking for durations and distances."""
    if not 1 <= len(coordinates) <= MAX_TABLE_PLACES:
        raise TravelTableError(f"an OSRM table needs 1..{MAX_TABLE_PLACES} places, got {len(coordinates)}")
    # OSRM wants longitude first.
    points = ";".join(f"{longitude:.6f},{latitude:.6f}" for latitude, longitude in coordinates)
    return f"{base_url.rstrip('/')}/table/v1/{profile}/{points}?annotations=duration,distance"


def _matrix(rows: object, key: str, count: int, limit: int) -> np.ndarray:
    if not isinstance(rows, list) or len(rows) != count:
        got = len(rows) if isinstance(rows, list) else type(rows).__name__
        raise TravelTableError(f"{key} must have {count} rows, one per place, got {got}")
    matrix = np.empty((count, count), dtype=np.int64)
    for row_number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != count:
            raise TravelTableError(f"{key} row {row_number} must have {count} entries")
        for column, value in enumerate(row):
            if value is None:
                matrix[row_number, column] = limit
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise TravelTableError(f"{key}[{row_number}][{column}] must be a number or null, got {value!r}")
            if not 0 <= value <= limit:
                raise TravelTableError(f"{key}[{row_number}][{column}] = {value} lies outside 0..{limit}")
            matrix[row_number, column] = round(value)
    return matrix


def _check_id(kind: str, value: object) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise RoutingInputError(f"{kind} id must be a string of 1..200 characters, got {value!r}")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RoutingInputError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def _check_coordinates(name: str, latitude: float | None, longitude: float | None) -> None:
    if (latitude is None) != (longitude is None):
        raise RoutingInputError(f"{name}: give both latitude and longitude, or neither")
    if latitude is None or longitude is None:
        return
    if not (
        math.isfinite(latitude) and -90 <= latitude <= 90 and math.isfinite(longitude) and -180 <= longitude <= 180
    ):
        raise RoutingInputError(f"{name}: ({latitude!r}, {longitude!r}) is not a latitude/longitude in degrees")


def _coordinate(value: float | None) -> float:
    return 0.0 if value is None else value


def _counts(values: object) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:  # type: ignore[attr-defined]
        counts[value] += 1
    return counts


__all__ = [
    "MAX_STOPS",
    "Reload",
    "RouteDepot",
    "RoutingInputError",
    "RoutingProblem",
    "RoutingSettings",
    "RoutingSolution",
    "Stop",
    "TravelTable",
    "TravelTableError",
    "Unserved",
    "UnservedReason",
    "Vehicle",
    "VehicleRoute",
    "Visit",
    "load_osrm_table",
    "osrm_table_url",
    "parse_osrm_table",
    "solve_routes",
    "travel_matrices",
]
