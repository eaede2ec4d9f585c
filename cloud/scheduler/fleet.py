"""Each town's vehicles (what they serve, capacity, shift, where they tip or refill) and calendar, read from the towns'
planning file (TOML). `load_town_planning(path)` is the entry; `DEFAULT_TOWN_PLANNING` is the file shipped for the
six towns. Every error names the file, the town and the field.

File layout (README "Plan a day" has a full example):

    [routing]                        # optional: how long PyVRP searches per town and task kind
    time_limit_s = 2.0
    max_iterations = 150
    [sites.transfer-station]         # places shared by the towns: disposal sites, water points
    name = "…"; latitude = 50.19; longitude = 9.17; unload_min = 15
    [towns."Bad Orb"]
    holidays = "HE"                  # Bundesland of the public holidays ("" for nationwide only)
    closed_every_year = ["12-24", "12-31"]
    closed_days = [2026-12-28]
    [towns."Bad Orb".sites.hydrant]  # places of this town only
    [[towns."Bad Orb".vehicles]]
    id = "rear-loader-residual"; serves = "residual"; capacity_l = 20000; shift = "06:00-14:30"
    reload_at = "transfer-station"; service_min = 1.5
    crew = "Kolonne Rest"            # who drives it (default: the vehicle id; copies of `count` > 1 get -1, -2, …)
    [[towns."Bad Orb".markets]]
    name = "Wochenmarkt"; weekdays = ["sa"]; hours = "07:00-13:00"; villages = ["Bad Orb"]; fill_jump = 0.3
"""

from __future__ import annotations

import math
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TypeVar

from cloud.scheduler.calendar import DEFAULT_SUBDIVISION, CalendarError, MarketDay, PlanningCalendar, TownCalendar
from flurfunk.contracts import Asset

DEFAULT_TOWN_PLANNING = Path(__file__).with_name("towns.toml")
MAX_FILE_BYTES = 1024 * 1024
MAX_VEHICLES_PER_TOWN = 100
MAX_CAPACITY_L = 1_000_000
WATER = "water"  # what a tanker `serves`; anything else is a waste type
DEFAULT_BIN_LITRES = 240  # a bin without a stated capacity counts as the common 240 L wheelie bin
DEFAULT_WASTE_TYPE = "residual"  # a bin without a waste type is a litter bin: residual waste
_WEEKDAYS = {"mo": 0, "tu": 1, "di": 1, "we": 2, "mi": 2, "th": 3, "do": 3, "fr": 4, "sa": 5, "su": 6, "so": 6}


class PlanningFileError(ValueError):
    """The towns' planning file cannot be used; the message names the file, the town and the field."""


@dataclass(frozen=True)
class Site:
    """A place a vehicle drives to mid-shift: a disposal site to tip its load, a hydrant or well to fill its tank."""

    id: str
    name: str
    latitude: float
    longitude: float
    unload_s: int = 900


@dataclass(frozen=True)
class FleetVehicle:
    """`count` identical vehicles of a town's Bauhof. `serves` is a waste type ("residual", "paper", …) or "water".

    `capacity_l` is litres of bin volume a collection vehicle takes before it must tip (compaction included), or
    litres of water in a tanker's tank. Each stop takes `service_s`; a watering stop also `litres / pump_l_per_min`.
    """

    id: str
    serves: str
    capacity_l: int
    shift_start: time = time(6, 0)
    shift_end: time = time(14, 30)
    count: int = 1
    reload_at: str | None = None  # a site id: where it tips (or refills) when full (empty), as often as needed
    service_s: int = 90
    pump_l_per_min: float = 100.0
    crew: str | None = None  # who drives it; None: named by the vehicle id

    @property
    def waters(self) -> bool:
        return self.serves == WATER

    def crew_of(self, copy: int = 0) -> str:
        """The crew of copy `copy` (0, 1, …) of this vehicle: its `crew` (or id), numbered when there are several,
        so two identical trucks never share a crew's page."""
        name = self.crew or self.id
        return name if self.count == 1 else f"{name}-{copy + 1}"


@dataclass(frozen=True)
class TownFleet:
    """A town's vehicles and the sites they may reload at (the town's own and the shared ones)."""

    municipality: str
    vehicles: tuple[FleetVehicle, ...]
    sites: Mapping[str, Site] = field(default_factory=dict)

    def vehicles_for(self, water: bool) -> tuple[FleetVehicle, ...]:
        return tuple(vehicle for vehicle in self.vehicles if vehicle.waters == water)


@dataclass(frozen=True)
class Fleet:
    """The towns' fleets and how long the route search may take per town and task kind.

    PyVRP stops after `max_iterations` or `time_limit_s` CPU seconds, whichever comes first: the iterations
    normally reach first, the plan is the same for the same `seed` on any machine.
    """

    towns: Mapping[str, TownFleet] = field(default_factory=dict)
    time_limit_s: float = 2.0
    max_iterations: int = 150
    seed: int = 1
    speed_kmh: float = 30.0

    def for_town(self, municipality: str) -> TownFleet | None:
        return self.towns.get(municipality)


@dataclass(frozen=True)
class TownPlanning:
    """What the towns' planning file holds: the fleets and the calendars."""

    fleet: Fleet
    calendar: PlanningCalendar


def load_town_planning(path: str | Path = DEFAULT_TOWN_PLANNING) -> TownPlanning:
    """Read the towns' planning file; the result is cached until the file changes."""
    file = Path(path)
    try:
        status = file.stat()
    except OSError as error:
        raise PlanningFileError(f"{file}: cannot read the towns' planning file: {error.strerror}") from error
    return _load_cached(str(file), status.st_mtime_ns, status.st_size)


def plan_day_arguments(path: str | Path | None) -> dict[str, Fleet | PlanningCalendar]:
    """`plan_day`'s `fleet` and `calendar` from the towns' planning file at `path`; None: none (plan as before)."""
    if path is None:
        return {}
    planning = load_town_planning(path)
    return {"fleet": planning.fleet, "calendar": planning.calendar}


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime_ns: int, size: int) -> TownPlanning:
    if size > MAX_FILE_BYTES:
        raise PlanningFileError(f"{path}: the file is {size} bytes; at most {MAX_FILE_BYTES} are read")
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise PlanningFileError(f"{path}: cannot read the towns' planning file: {error.strerror}") from error
    return parse_town_planning(raw, path)


def parse_town_planning(document: bytes | str, source: str = "<towns file>") -> TownPlanning:
    """Parse the TOML text of a towns' planning file; `source` names it in errors."""
    if len(document) > MAX_FILE_BYTES:
        raise PlanningFileError(f"{source}: the file is {len(document)} bytes; at most {MAX_FILE_BYTES} are read")
    try:
        body = tomllib.loads(document.decode() if isinstance(document, bytes) else document)
    except UnicodeDecodeError as error:
        raise PlanningFileError(f"{source}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    except tomllib.TOMLDecodeError as error:
        raise PlanningFileError(f"{source}: not valid TOML: {error}") from error
    return town_planning_from_mapping(body, source)


def town_planning_from_mapping(body: Mapping[str, object], source: str = "<towns file>") -> TownPlanning:
    """The planning of a decoded file (the TOML's tables as dicts)."""
    top = _Fields(body, _Where(source), {"routing", "sites", "towns"})
    routing = top.table("routing")
    routing_fields = _Fields(
        routing, _Where(source, field="routing"), {"time_limit_s", "max_iterations", "seed", "speed_kmh"}
    )
    time_limit_s = routing_fields.number("time_limit_s", 2.0, low=0.01, high=600.0)
    max_iterations = routing_fields.integer("max_iterations", 150, low=1, high=1_000_000)
    seed = routing_fields.integer("seed", 1, low=0, high=2**31 - 1)
    speed_kmh = routing_fields.number("speed_kmh", 30.0, low=1.0, high=130.0)
    shared_sites = _sites(top.table("sites"), _Where(source, field="sites"))

    fleets: dict[str, TownFleet] = {}
    calendars: dict[str, TownCalendar] = {}
    for town, town_body in top.table("towns").items():
        where = _Where(source, town=town)
        if not isinstance(town_body, Mapping):
            raise PlanningFileError(f"{where}: must be a table")
        town_fields = _Fields(
            town_body, where, {"holidays", "closed_days", "closed_every_year", "sites", "vehicles", "markets"}
        )
        subdivision = town_fields.string("holidays", DEFAULT_SUBDIVISION) or None
        closed_days = frozenset(town_fields.dates("closed_days"))
        closed_yearly = frozenset(_month_days(town_fields.strings("closed_every_year"), where.at("closed_every_year")))
        own_sites = _sites(town_fields.table("sites"), where.at("sites"))
        sites = {**shared_sites, **own_sites}
        vehicles = _vehicles(town_fields.tables("vehicles"), where, sites)
        markets = tuple(
            _market(entry, where.at(f"markets[{i}]")) for i, entry in enumerate(town_fields.tables("markets"))
        )
        calendar = TownCalendar(town, subdivision, closed_days, markets, closed_yearly)
        try:
            calendar.holiday(date(2026, 1, 1))
        except (NotImplementedError, KeyError, ValueError) as error:
            raise PlanningFileError(f"{where.at('holidays')}: {subdivision!r} is no German Bundesland code") from error
        calendars[town] = calendar
        if vehicles:
            fleets[town] = TownFleet(town, vehicles, sites)
    return TownPlanning(
        fleet=Fleet(fleets, time_limit_s, max_iterations, seed, speed_kmh),
        calendar=PlanningCalendar(calendars),
    )


def reload_positions(loads: Sequence[int], capacity_l: int | None) -> list[int]:
    """Where a vehicle that takes stops with `loads` (litres, in route order) must tip or refill: each position is
    the number of stops served before that trip to the site. A trip takes stops while they fit its capacity; a stop
    larger than the capacity gets a trip of its own. For a dispatcher's change, where the solver does not run."""
    if capacity_l is None:
        return []
    positions: list[int] = []
    load = 0
    for index, amount in enumerate(loads):
        if load > 0 and load + amount > capacity_l:
            positions.append(index)
            load = 0
        load += amount
    return positions


def trip_loads(loads: Sequence[int], positions: Sequence[int]) -> list[int]:
    """The load of each trip between the reload `positions` (as `reload_positions` gives them)."""
    edges = [0, *sorted(set(positions)), len(loads)]
    return [sum(loads[start:end]) for start, end in pairwise(edges) if end > start] or [0]


def _vehicles(
    entries: list[Mapping[str, object]], where: _Where, sites: Mapping[str, Site]
) -> tuple[FleetVehicle, ...]:
    if len(entries) > MAX_VEHICLES_PER_TOWN:
        raise PlanningFileError(f"{where.at('vehicles')}: at most {MAX_VEHICLES_PER_TOWN} vehicles per town")
    vehicles: list[FleetVehicle] = []
    for index, entry in enumerate(entries):
        here = where.at(f"vehicles[{index}]")
        fields = _Fields(
            entry,
            here,
            {"id", "serves", "capacity_l", "shift", "count", "reload_at", "service_min", "pump_l_per_min", "crew"},
        )
        vehicle_id = fields.identifier("id", required=True)
        if any(vehicle.id == vehicle_id for vehicle in vehicles):
            raise PlanningFileError(f"{here.at('id')}: {vehicle_id!r} is used by another vehicle of the town")
        shift_start, shift_end = fields.hours("shift", (time(6, 0), time(14, 30)))
        reload_at = fields.string("reload_at", None)
        if reload_at is not None and reload_at not in sites:
            known = ", ".join(sorted(sites)) or "none"
            raise PlanningFileError(f"{here.at('reload_at')}: no site {reload_at!r} (known: {known})")
        vehicles.append(
            FleetVehicle(
                id=vehicle_id,
                serves=fields.identifier("serves", required=True),
                capacity_l=fields.integer("capacity_l", None, low=1, high=MAX_CAPACITY_L),
                shift_start=shift_start,
                shift_end=shift_end,
                count=fields.integer("count", 1, low=1, high=MAX_VEHICLES_PER_TOWN),
                reload_at=reload_at,
                service_s=round(fields.number("service_min", 1.5, low=0.0, high=120.0) * 60),
                pump_l_per_min=fields.number("pump_l_per_min", 100.0, low=1.0, high=10_000.0),
                crew=_crew_name(fields.string("crew", None), here.at("crew")),
            )
        )
    crews: dict[str, str] = {}
    for index, vehicle in enumerate(vehicles):
        for copy in range(vehicle.count):
            crew = vehicle.crew_of(copy)
            if crew in crews:
                raise PlanningFileError(
                    f"{where.at(f'vehicles[{index}].crew')}: crew {crew!r} drives vehicle {crews[crew]!r} already"
                )
            crews[crew] = vehicle.id
    return tuple(vehicles)


def _crew_name(value: str | None, where: _Where) -> str | None:
    if value is None:
        return None
    name = value.strip()
    # -NN is added for copies; a crew name is at most 100 characters where it is stored (tasks, routes).
    if not 1 <= len(name) <= 90 or any(not character.isprintable() for character in name):
        raise PlanningFileError(f"{where}: must be 1-90 printable characters, got {value!r}")
    return name


def stop_load_l(kind: str, capacity_l: int | None, evidence: Mapping[str, object]) -> int:
    """What one stop puts on a vehicle, from its task: a bin's volume (capacity, 240 L if unknown) times its fill
    (held to 0-150 %, 100 % when unknown); a watering's litres. The planner's and a dispatcher's stops alike."""
    if kind == "water":
        litres = evidence.get("litres", 0.0)
        return max(round(float(litres)), 0) if isinstance(litres, int | float) and math.isfinite(litres) else 0
    fill = evidence.get("fill_ratio", 1.0)
    share = min(max(float(fill), 0.0), 1.5) if isinstance(fill, int | float) and math.isfinite(fill) else 1.0
    return round((capacity_l or DEFAULT_BIN_LITRES) * share)


def _sites(table: Mapping[str, object], where: _Where) -> dict[str, Site]:
    sites: dict[str, Site] = {}
    for site_id, body in table.items():
        here = where.at(site_id)
        if not isinstance(body, Mapping):
            raise PlanningFileError(f"{here}: must be a table")
        _check_identifier(site_id, here)
        fields = _Fields(body, here, {"name", "latitude", "longitude", "unload_min"})
        sites[site_id] = Site(
            id=site_id,
            name=fields.string("name", site_id) or site_id,
            latitude=fields.number("latitude", None, low=-90.0, high=90.0),
            longitude=fields.number("longitude", None, low=-180.0, high=180.0),
            unload_s=round(fields.number("unload_min", 15.0, low=0.0, high=600.0) * 60),
        )
    return sites


def _market(body: Mapping[str, object], where: _Where) -> MarketDay:
    fields = _Fields(
        body, where, {"name", "dates", "weekdays", "weeks_of_month", "hours", "villages", "assets", "fill_jump"}
    )
    weekdays: set[int] = set()
    for name in fields.strings("weekdays"):
        key = name.strip().lower()[:2]
        if key not in _WEEKDAYS:
            raise PlanningFileError(f"{where.at('weekdays')}: {name!r} is no weekday (mo, tu, we, th, fr, sa, su)")
        weekdays.add(_WEEKDAYS[key])
    weeks = fields.integers("weeks_of_month")
    start, end = fields.hours("hours", None)
    try:
        return MarketDay(
            name=fields.string("name", "Markt") or "Markt",
            start=start,
            end=end,
            fill_jump=fields.number("fill_jump", 0.0, low=0.0, high=5.0),
            dates=frozenset(fields.dates("dates")),
            weekdays=frozenset(weekdays),
            weeks_of_month=frozenset(weeks),
            villages=frozenset(fields.strings("villages")),
            assets=frozenset(fields.strings("assets")),
        )
    except CalendarError as error:
        raise PlanningFileError(f"{where}: {error}") from error


@dataclass(frozen=True)
class _Where:
    """Where in the file a value sits, for error messages: `file: town 'X': field 'vehicles[0].shift'`."""

    source: str
    town: str | None = None
    field: str = ""

    def at(self, name: str) -> _Where:
        return _Where(self.source, self.town, f"{self.field}.{name}" if self.field else name)

    def __str__(self) -> str:
        parts = [self.source]
        if self.town is not None:
            parts.append(f"town {self.town!r}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return ": ".join(parts)


class _Fields:
    """Typed access to one table's fields, refusing unknown ones (a typo must not be silently ignored)."""

    def __init__(self, body: Mapping[str, object], where: _Where, known: set[str]) -> None:
        unknown = sorted(str(key) for key in body if key not in known)
        if unknown:
            raise PlanningFileError(f"{where.at(unknown[0])}: unknown field (known: {', '.join(sorted(known))})")
        self.body = body
        self.where = where

    def _require(self, name: str) -> object:
        if name not in self.body:
            raise PlanningFileError(f"{self.where.at(name)}: missing")
        return self.body[name]

    def table(self, name: str) -> Mapping[str, object]:
        value = self.body.get(name, {})
        if not isinstance(value, Mapping):
            raise PlanningFileError(f"{self.where.at(name)}: must be a table")
        return value

    def tables(self, name: str) -> list[Mapping[str, object]]:
        value = self.body.get(name, [])
        if not isinstance(value, list) or not all(isinstance(entry, Mapping) for entry in value):
            raise PlanningFileError(f"{self.where.at(name)}: must be an array of tables ([[…]])")
        return value

    def string(self, name: str, default: str | None) -> str | None:
        if name not in self.body:
            return default
        value = self.body[name]
        if not isinstance(value, str) or len(value) > 200:
            raise PlanningFileError(f"{self.where.at(name)}: must be a text of at most 200 characters, got {value!r}")
        return value

    def identifier(self, name: str, required: bool) -> str:
        value = self.string(name, None) if not required else self._text(name)
        if value is None:
            raise PlanningFileError(f"{self.where.at(name)}: missing")
        _check_identifier(value, self.where.at(name))
        return value

    def _text(self, name: str) -> str:
        value = self._require(name)
        if not isinstance(value, str):
            raise PlanningFileError(f"{self.where.at(name)}: must be a text, got {value!r}")
        return value

    def number(self, name: str, default: float | None, low: float, high: float) -> float:
        value = self._require(name) if default is None else self.body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PlanningFileError(f"{self.where.at(name)}: must be a number, got {value!r}")
        if not low <= value <= high:
            raise PlanningFileError(f"{self.where.at(name)}: must lie in {low:g}..{high:g}, got {value!r}")
        return float(value)

    def integer(self, name: str, default: int | None, low: int, high: int) -> int:
        value = self._require(name) if default is None else self.body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlanningFileError(f"{self.where.at(name)}: must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise PlanningFileError(f"{self.where.at(name)}: must lie in {low}..{high}, got {value!r}")
        return value

    def strings(self, name: str) -> list[str]:
        value = self.body.get(name, [])
        if not isinstance(value, list) or not all(isinstance(entry, str) and len(entry) <= 200 for entry in value):
            raise PlanningFileError(f"{self.where.at(name)}: must be a list of texts")
        return value

    def integers(self, name: str) -> list[int]:
        value = self.body.get(name, [])
        if not isinstance(value, list) or not all(
            isinstance(entry, int) and not isinstance(entry, bool) for entry in value
        ):
            raise PlanningFileError(f"{self.where.at(name)}: must be a list of whole numbers")
        return value

    def dates(self, name: str) -> list[date]:
        value = self.body.get(name, [])
        if not isinstance(value, list):
            raise PlanningFileError(f"{self.where.at(name)}: must be a list of dates (2026-12-24)")
        days: list[date] = []
        for entry in value:
            if isinstance(entry, date) and not isinstance(entry, datetime):
                days.append(entry)
                continue
            try:
                days.append(date.fromisoformat(entry) if isinstance(entry, str) else _not_a_date(entry))
            except ValueError as error:
                raise PlanningFileError(f"{self.where.at(name)}: {entry!r} is not a date (2026-12-24)") from error
        return days

    def hours(self, name: str, default: tuple[time, time] | None) -> tuple[time, time]:
        if name not in self.body and default is not None:
            return default
        value = self._require(name)
        here = self.where.at(name)
        if not isinstance(value, str) or value.count("-") != 1:
            raise PlanningFileError(f"{here}: must be 'HH:MM-HH:MM', got {value!r}")
        first, last = (part.strip() for part in value.split("-"))
        try:
            start, end = time.fromisoformat(first), time.fromisoformat(last)
        except ValueError as error:
            raise PlanningFileError(f"{here}: must be 'HH:MM-HH:MM', got {value!r}") from error
        if not end > start:
            raise PlanningFileError(f"{here}: the end {last} must be after the start {first}")
        return start, end


def _month_days(entries: list[str], where: _Where) -> list[tuple[int, int]]:
    """'MM-DD' texts as (month, day); checked against a leap year, so 02-29 passes."""
    days = []
    for entry in entries:
        try:
            moment = date.fromisoformat(f"2028-{entry}")
        except ValueError as error:
            raise PlanningFileError(f"{where}: {entry!r} is not a day of the year (12-24)") from error
        days.append((moment.month, moment.day))
    return days


def _not_a_date(value: object) -> date:
    raise ValueError(f"{value!r} is not a date")


def _check_identifier(value: str, where: _Where) -> None:
    if not 1 <= len(value) <= 40 or not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in value):
        raise PlanningFileError(f"{where}: {value!r} must be 1-40 letters, digits, '-', '_' or '.'")


_Item = TypeVar("_Item")


def waste_type_of(asset: Asset) -> str:
    """A bin's waste type; a bin without one is a litter bin: residual waste."""
    return asset.waste_type or DEFAULT_WASTE_TYPE


def by_waste_type(items: Iterable[_Item], key: Callable[[_Item], Asset] = lambda item: item) -> dict[str, list[_Item]]:
    """Bins (or entries naming a bin) by waste type, types in name order: a truck carries one type."""
    groups: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        groups[waste_type_of(key(item))].append(item)
    return {waste_type: groups[waste_type] for waste_type in sorted(groups)}


__all__ = [
    "DEFAULT_BIN_LITRES",
    "DEFAULT_TOWN_PLANNING",
    "DEFAULT_WASTE_TYPE",
    "WATER",
    "Fleet",
    "FleetVehicle",
    "PlanningFileError",
    "Site",
    "TownFleet",
    "TownPlanning",
    "by_waste_type",
    "load_town_planning",
    "parse_town_planning",
    "plan_day_arguments",
    "reload_positions",
    "stop_load_l",
    "town_planning_from_mapping",
    "trip_loads",
    "waste_type_of",
]
