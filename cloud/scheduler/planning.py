"""The first planner: a day's tasks from the latest state of each asset, one route per town and kind, and the
fixed-round baseline to compare it with."""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from cloud.scheduler.calendar import PlanningCalendar, TownCalendar, is_round_day
from cloud.scheduler.fill import BinHistory, FillHistoryError, FillModel, fit_fill_model
from cloud.scheduler.fleet import by_waste_type, stop_load_l, waste_type_of
from cloud.scheduler.geo import distance_matrix_km
from cloud.scheduler.routing import build_route, insertion_detours, nearest_neighbour, route_points, two_opt
from cloud.scheduler.water import WateringInput, WaterNeed, assess_watering
from edge.anomaly.flags import SENSOR_FAULT, fault_types_in
from flurfunk.contracts import Asset, AssetKind, Depot, Quantity, Task, TaskKind
from flurfunk.i18n import MESSAGES, Language, text

if TYPE_CHECKING:
    from cloud.scheduler.fleet import Fleet, TownFleet

LOCAL_ZONE = ZoneInfo("Europe/Berlin")
WORKDAY_START = time(6, 0)
WORKDAY_END = time(15, 0)

# Street trees are the Bauhof's to water until year 3–5 after planting (FACTS.md, Berlin practice).
YOUNG_TREE_YEARS = 5
OLD_TREE_LITRES = 80.0
GREEN_SPACE_LITRES = 400.0  # assets carry no area yet; a fixed amount per green space
WATERING_SEASON_MONTHS = frozenset(range(5, 10))  # May to September, for the fixed-round baseline

PRIORITY_NEW_TREE = 90  # first summer: the root ball dries out in days
PRIORITY_YOUNG_TREE = 80
PRIORITY_OLD_TREE = 50
PRIORITY_GREEN_SPACE = 40
PRIORITY_INSPECT = 30

MAX_BASELINE_DAYS = 3660  # ten years; more is a typo, not a question
MAX_WATERING_HORIZON_DAYS = 14  # the water balance's longest horizon

_ROUTED_KINDS: tuple[TaskKind, ...] = (TaskKind.COLLECT, TaskKind.WATER)
_WATERED_KINDS = frozenset({AssetKind.TREE, AssetKind.GREEN_SPACE})


class SchedulerError(ValueError):
    """The planner's input cannot be planned (bad settings, duplicate assets, a town without depot)."""


class MissingDepotError(SchedulerError):
    """Assets must be routed in a town that has no depot."""


@dataclass(frozen=True)
class LatestValue:
    """The latest reading of one quantity of one asset."""

    value: float
    time: datetime
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise SchedulerError(f"latest value must be a finite number, got {self.value!r}")
        if self.time.tzinfo is None:
            raise SchedulerError(f"latest value time {self.time.isoformat()} carries no time zone")


@dataclass(frozen=True)
class PlanSettings:
    """Thresholds and costs of the planner; the defaults follow field practice (see FACTS.md)."""

    # A town's collection round runs on its collection weekdays (Monday = 0); with three or four days to the next
    # round, a bin over 60 % may overflow before it, so it goes now; 40-60 % goes along when the detour is cheap.
    # On other days only a bin about to overflow gets an (emergency) round.
    collection_weekdays: tuple[int, ...] = (0, 3)
    # Set, the water tanker goes only on these weekdays (a run on a closed day moves to the next working day, as a
    # round does), and a site is due when it would pass its trigger before the next run: the balance's horizon is
    # the days to that run. None: any working day, with the horizon the watering input gives.
    watering_weekdays: tuple[int, ...] | None = None
    collect_threshold: float = 0.6
    collect_opportunistic: float = 0.4
    overflow_threshold: float = 0.9
    opportunistic_detour_km: float = 0.5  # "near the route": the extra road km to insert the bin stays below this
    dry_soil_vwc: float = 0.15  # m³/m³ below which a tree/green space is watered
    battery_low_v: float = 3.0
    battery_low_pct: float = 15.0
    road_factor: float = 1.3  # road km ≈ great-circle km × factor
    stale_after: timedelta = timedelta(hours=6)  # latest values older than this are not acted on
    fixed_collection_interval_days: int = 7  # baseline
    fixed_watering_interval_days: int = 7  # baseline
    # With fill histories (forecasts): a bin goes when it is expected to reach `forecast_must_fill` before the
    # end of the next run; from `forecast_may_fill` on it is an optional stop whose prize (km of detour it is
    # worth) grows linearly with the expected fill up to `max_prize_km` at the must level.
    forecast_must_fill: float = 1.0
    forecast_may_fill: float = 0.7
    max_prize_km: float = 1.5
    prize_lookahead_days: float = 0.0  # judge optional bins by their fill this much after the next run ends
    # Off round days an extra run goes out only for bins expected past this before the next working day ends
    # (None: forecast_must_fill); above 1 it lets a bin overflow a little rather than send a truck for it alone.
    emergency_fill: float | None = None
    # Off round days, with this set, urgent bins are not must-go one by one: a village gets an extra run when its
    # urgent bins' prizes (this many km each, more the further past full they are expected) outweigh the round
    # trip to it; a lone urgent bin far out waits for the round.
    emergency_prize_km: float | None = None
    # With a time limit, each route is ordered by PyVRP (cloud.scheduler.routing_vrp) instead of nearest neighbour
    # and 2-opt; `vrp_max_iterations` makes it deterministic for the seed whenever it stops before the clock.
    vrp_time_limit_s: float | None = None
    vrp_seed: int = 1
    vrp_max_iterations: int | None = None

    def __post_init__(self) -> None:
        if not self.collection_weekdays or not set(self.collection_weekdays) <= set(range(7)):
            raise SchedulerError(f"collection_weekdays must name weekdays 0-6, got {self.collection_weekdays}")
        if self.watering_weekdays is not None and (
            not self.watering_weekdays or not set(self.watering_weekdays) <= set(range(7))
        ):
            raise SchedulerError(f"watering_weekdays must name weekdays 0-6, got {self.watering_weekdays}")
        if not self.collect_threshold <= self.overflow_threshold:
            raise SchedulerError(
                f"need collect_threshold ({self.collect_threshold}) <= overflow_threshold ({self.overflow_threshold})"
            )
        if not 0 < self.collect_opportunistic <= self.collect_threshold:
            raise SchedulerError(
                f"need 0 < collect_opportunistic ({self.collect_opportunistic}) <= "
                f"collect_threshold ({self.collect_threshold})"
            )
        if self.opportunistic_detour_km < 0:
            raise SchedulerError(f"opportunistic_detour_km must not be negative, got {self.opportunistic_detour_km}")
        if self.road_factor <= 0:
            raise SchedulerError(f"road_factor must be positive, got {self.road_factor}")
        if self.stale_after <= timedelta(0):
            raise SchedulerError(f"stale_after must be positive, got {self.stale_after}")
        if self.fixed_collection_interval_days < 1 or self.fixed_watering_interval_days < 1:
            raise SchedulerError("fixed round intervals must be at least one day")
        if not 0 < self.forecast_may_fill < self.forecast_must_fill <= 1.2 or self.max_prize_km < 0:
            raise SchedulerError(
                f"need 0 < forecast_may_fill ({self.forecast_may_fill}) < forecast_must_fill "
                f"({self.forecast_must_fill}) <= 1.2 and max_prize_km >= 0"
            )


@dataclass(frozen=True)
class RouteReload:
    """A trip to a disposal site (or a tank refill at a hydrant) after the route's first `after_stop` stops."""

    after_stop: int
    site: str


@dataclass(frozen=True)
class Route:
    """One vehicle's round in one town on one day: depot → stops (asset ids, in order) → depot.

    Planned with a fleet, it also names the vehicle, its reloads, the load of each trip (litres of bin volume or of
    water) and when (seconds since local midnight) it leaves, begins each stop, returns and how late it runs.
    """

    id: str
    municipality: str
    kind: TaskKind
    day: date
    stops: list[str]
    km: float
    polyline: list[tuple[float, float]]  # (latitude, longitude): depot, stops (and reload sites), depot
    vehicle: str | None = None
    reloads: tuple[RouteReload, ...] = ()
    trip_loads: tuple[int, ...] = ()
    service_starts_s: tuple[int, ...] = ()
    start_s: int | None = None
    end_s: int | None = None
    late_s: int = 0  # > 0: the must-go stops do not fit the shift (or the markets' hours) by this much


@dataclass(frozen=True)
class DayPlan:
    """A day's tasks, their routes, and the (asset id, reason) of every reading that was not acted on."""

    tasks: list[Task]
    routes: list[Route]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def plan_day(
    day: date,
    depots: Sequence[Depot],
    assets: Sequence[Asset],
    latest: Mapping[str, Mapping[Quantity, LatestValue]],
    settings: PlanSettings = PlanSettings(),
    language: Language = "de",
    *,
    as_of: datetime | None = None,
    bin_history: Mapping[str, BinHistory] | None = None,
    watering: WateringInput | None = None,
    fleet: Fleet | None = None,
    calendar: PlanningCalendar | TownCalendar | None = None,
) -> DayPlan:
    """Tasks and routes for `day` from each asset's latest values.

    Readings older than `settings.stale_after` before `as_of` (default: the start of the day's work, 06:00 local)
    or carrying any flag are not acted on and come back in `DayPlan.skipped`. Tasks of a town without a depot are
    planned but not routed (route_id None).

    A bin with a fill history in `bin_history` is planned by its forecast (`cloud.scheduler.fill`): must-go when
    expected to reach `settings.forecast_must_fill` before the next run ends, an optional stop with a prize on
    round days from `forecast_may_fill` on. A tree or green space among `watering.sites` is planned by the FAO-56
    water balance (`cloud.scheduler.water`) instead of the soil-moisture threshold.

    With a `fleet` (`cloud.scheduler.fleet`), each town that has vehicles is routed with them by PyVRP: per waste
    type, within capacity (reload trips to the disposal site or hydrant), shifts and market hours; must-go stops
    required, optional ones kept only where the solver serves them; a route per vehicle. Stops left out come back in
    `skipped` with the reason. With a `calendar` (`cloud.scheduler.calendar`), holidays and the Bauhof's closed days
    get no regular round (it moves to the next working day), the lookahead skips them, and market days block their
    bins during market hours and add the expected fill. Without either, the plan is what it always was.
    """
    if isinstance(calendar, PlanningCalendar):
        return _plan_per_town(
            day, depots, assets, latest, settings, language, as_of, bin_history, watering, fleet, calendar
        )
    town_calendar = calendar
    due_from, due_until = work_window(day)
    reference = _require_aware(as_of, "as_of") if as_of is not None else due_from
    assets_by_id = _unique_assets(assets)
    depot_by_town = _depots_by_town(depots)
    window = _Window(day, due_from, due_until)

    tasks: list[Task] = []
    reader = _Reader(reference, settings, language)
    must_collect: dict[str, list[Asset]] = defaultdict(list)
    maybe_collect: dict[str, list[tuple[Asset, LatestValue]]] = defaultdict(list)
    to_water: dict[str, list[Asset]] = defaultdict(list)
    pending: dict[tuple[TaskKind, str], Task] = {}

    round_day = is_round_day(day, settings.collection_weekdays, town_calendar)
    must_threshold = settings.collect_threshold if round_day else settings.overflow_threshold
    histories = bin_history or {}
    prized: dict[str, list[tuple[Asset, _BinForecast]]] = defaultdict(list)
    urgent: dict[str, list[tuple[Asset, _BinForecast]]] = defaultdict(list)
    gather_urgent = not round_day and settings.emergency_prize_km is not None
    # On a round day a bin goes if it would pass the must level before the next round; on other days only if it
    # would pass it before the next working day ends: an emergency run waits as long as it can, to gather more.
    next_run_end = _next_run_end(day, settings, town_calendar) if round_day else _next_workday_end(day, town_calendar)
    must_fill = settings.forecast_must_fill
    if not round_day and settings.emergency_fill is not None:
        must_fill = settings.emergency_fill
    watering_closed = town_calendar is not None and not town_calendar.is_working_day(day)
    water_today = _is_watering_day(day, settings.watering_weekdays, town_calendar)
    balanced = {site.asset for site in watering.sites} if watering is not None else set()
    if watering is not None and settings.watering_weekdays is not None:
        horizon_days = watering_horizon_days(day, settings.watering_weekdays, town_calendar)
        if horizon_days != watering.horizon_days:
            watering = replace(watering, horizon_days=horizon_days)
    elif watering is not None and town_calendar is not None and not watering_closed:
        watering = _horizon_past_closed_days(day, watering, town_calendar)
    needs: dict[str, WaterNeed] = assess_watering(day, watering) if watering is not None and water_today else {}
    for asset_id in sorted(assets_by_id):
        asset = assets_by_id[asset_id]
        values = latest.get(asset_id, {})
        if asset.kind is AssetKind.BIN and asset_id in histories:
            forecast = _forecast_bin(
                asset, histories[asset_id], reference, next_run_end, settings.prize_lookahead_days, reader
            )
            forecast = _with_markets(forecast, asset, town_calendar, day, next_run_end)
            if forecast is None:
                pass
            elif gather_urgent and forecast.fill_next >= must_fill:
                urgent[asset.municipality].append((asset, forecast))
            elif (round_day and forecast.fill_now >= settings.overflow_threshold) or forecast.fill_next >= must_fill:
                pending[(TaskKind.COLLECT, asset.id)] = _forecast_task(asset, forecast, None, window, language)
                must_collect[asset.municipality].append(asset)
            elif round_day and forecast.fill_later >= settings.forecast_may_fill:
                prized[asset.municipality].append((asset, forecast))
        elif asset.kind in _WATERED_KINDS and asset_id in balanced:
            need = needs.get(asset_id)  # none on a day the tanker does not go
            if need is None or need.litres <= 0:
                pass
            elif watering_closed:
                reader.skip_closed(asset, day, town_calendar)
            else:
                pending[(TaskKind.WATER, asset.id)] = _balance_task(asset, need, window, language)
                to_water[asset.municipality].append(asset)
        elif asset.kind is AssetKind.BIN:
            fill = reader.usable(asset, values, Quantity.FILL_RATIO, required=True)
            if fill is not None and fill.value >= must_threshold:
                pending[(TaskKind.COLLECT, asset.id)] = _collect_task(
                    asset, fill, must_threshold, round_day, window, language
                )
                must_collect[asset.municipality].append(asset)
            elif round_day and fill is not None and fill.value >= settings.collect_opportunistic:
                maybe_collect[asset.municipality].append((asset, fill))
        elif asset.kind in _WATERED_KINDS:
            soil = reader.usable(asset, values, Quantity.SOIL_VWC, required=True)
            dry = soil is not None and soil.value < settings.dry_soil_vwc
            if dry and not water_today and settings.watering_weekdays is not None:
                reader.skip_no_watering_day(asset, next_watering_day(day, settings.watering_weekdays, town_calendar))
            elif dry and watering_closed:
                reader.skip_closed(asset, day, town_calendar)
            elif soil is not None and soil.value < settings.dry_soil_vwc:
                pending[(TaskKind.WATER, asset.id)] = _water_task(asset, soil, settings, window, language)
                to_water[asset.municipality].append(asset)

        battery_v = reader.usable(asset, values, Quantity.BATTERY_V, required=False)
        battery_pct = reader.usable(asset, values, Quantity.BATTERY_PCT, required=False)
        inspect = _battery_task(asset, battery_v, battery_pct, settings, window, language)
        inspect = _with_sensor_faults(inspect, asset, values, window, language)
        if inspect is not None:
            tasks.append(inspect)

    for town, candidates in urgent.items():
        depot = depot_by_town.get(town)
        if depot is None:
            continue
        for asset, forecast in _emergency_villages(depot, candidates, must_fill, settings):
            pending[(TaskKind.COLLECT, asset.id)] = _forecast_task(asset, forecast, None, window, language)
            must_collect[town].append(asset)

    routes: list[Route] = []
    route_skips: list[tuple[str, str]] = []
    for town in sorted(set(must_collect) | set(to_water)):
        depot = depot_by_town.get(town)
        if depot is None:
            continue
        # A truck carries one waste type: optional bins ride along only on their own type's round, and a type
        # without a must-go bin drives no round for optional ones.
        chosen: list[tuple[Asset, LatestValue, float]] = []
        with_prize: list[tuple[Asset, _BinForecast, float]] = []
        must_by_type = by_waste_type(must_collect[town])
        maybe_by_type = by_waste_type(maybe_collect[town], key=lambda entry: entry[0])
        prized_by_type = by_waste_type(prized[town], key=lambda entry: entry[0])
        for waste_type, must_go in must_by_type.items():
            taken = _choose_opportunistic(depot, must_go, maybe_by_type.get(waste_type, []), settings)
            chosen += taken
            on_route = must_go + [asset for asset, _, _ in taken]
            with_prize += _choose_prized(depot, on_route, prized_by_type.get(waste_type, []), settings)
        for asset, fill, detour_km in chosen:
            pending[(TaskKind.COLLECT, asset.id)] = _opportunistic_task(
                asset, fill, detour_km, settings, window, language
            )
        for asset, forecast, detour_km in with_prize:
            pending[(TaskKind.COLLECT, asset.id)] = _forecast_task(asset, forecast, detour_km, window, language)
        to_collect = must_collect[town] + [asset for asset, _, _ in chosen] + [a for a, _, _ in with_prize]
        town_fleet = fleet.for_town(town) if fleet is not None else None
        if fleet is not None and town_fleet is not None:
            optional = [(asset, settings.opportunistic_detour_km) for asset, _, _ in chosen]
            optional += [(asset, _prize_km(forecast, settings)) for asset, forecast, _ in with_prize]
            routes += _fleet_routes(
                day,
                depot,
                fleet,
                town_fleet,
                must_collect[town],
                optional,
                to_water[town],
                pending,
                settings,
                town_calendar,
                language,
                route_skips,
            )
            continue
        for waste_type, group in by_waste_type(to_collect).items():
            routes.append(_route(day, town, TaskKind.COLLECT, depot, group, settings, waste_type=waste_type))
        if to_water[town]:
            routes.append(_route(day, town, TaskKind.WATER, depot, to_water[town], settings))

    route_of_stop = {(route.kind, stop): route.id for route in routes for stop in route.stops}
    for (kind, asset_id), task in pending.items():
        assigned_route = route_of_stop.get((kind, asset_id))
        tasks.append(task.model_copy(update={"route_id": assigned_route}) if assigned_route else task)

    tasks.sort(key=lambda task: (task.municipality, task.kind.value, task.asset))
    return DayPlan(tasks=tasks, routes=routes, skipped=reader.skipped + route_skips)


def fixed_schedule_km(
    day_count: int,
    depots: Sequence[Depot],
    assets: Sequence[Asset],
    settings: PlanSettings = PlanSettings(),
    start: date | None = None,
) -> float:
    """Road km that fixed rounds would drive in `day_count` days from `start` (default: today, UTC).

    Every town empties all its bins on one round per `fixed_collection_interval_days` and waters all its trees and
    green spaces on one round per `fixed_watering_interval_days` (rounds falling in May to September only). Towns
    take turns: the i-th town (by name) has its first round on day i of the interval, as a Bauhof gives each town
    its own weekday. Each round is depot → all assets of the kind → depot, built like the planner's routes, and
    a collection round per waste type, as the planner's (a truck carries one type).
    """
    if not 0 <= day_count <= MAX_BASELINE_DAYS:
        raise SchedulerError(f"day_count must be between 0 and {MAX_BASELINE_DAYS}, got {day_count}")
    first_day = start if start is not None else datetime.now(UTC).date()
    depot_by_town = _depots_by_town(depots)
    bins: dict[str, list[Asset]] = defaultdict(list)
    watered: dict[str, list[Asset]] = defaultdict(list)
    for asset in _unique_assets(assets).values():
        if asset.kind is AssetKind.BIN:
            bins[asset.municipality].append(asset)
        elif asset.kind in _WATERED_KINDS:
            watered[asset.municipality].append(asset)

    towns = sorted(set(bins) | set(watered))
    missing = [town for town in towns if town not in depot_by_town]
    if missing:
        raise MissingDepotError(f"no depot for {', '.join(missing)}: their fixed rounds cannot be routed")

    total_km = 0.0
    for turn, town in enumerate(towns):
        depot = depot_by_town[town]
        # One round per waste type, as the planner routes them (a truck carries one type): like for like.
        collection_km = sum(
            build_route(depot, group, settings.road_factor)[1] for group in by_waste_type(bins[town]).values()
        )
        watering_km = build_route(depot, watered[town], settings.road_factor)[1]
        for offset in range(day_count):
            day = first_day + timedelta(days=offset)
            if (offset - turn) % settings.fixed_collection_interval_days == 0:
                total_km += collection_km
            if (offset - turn) % settings.fixed_watering_interval_days == 0 and day.month in WATERING_SEASON_MONTHS:
                total_km += watering_km
    return total_km


def work_window(day: date) -> tuple[datetime, datetime]:
    """The day's due window, 06:00–15:00 Berlin time, as UTC datetimes."""
    start = datetime.combine(day, WORKDAY_START, tzinfo=LOCAL_ZONE).astimezone(UTC)
    end = datetime.combine(day, WORKDAY_END, tzinfo=LOCAL_ZONE).astimezone(UTC)
    return start, end


def task_id(day: date, kind: TaskKind, asset_id: str) -> str:
    """A task id that depends only on (day, kind, asset): a replan replaces a task instead of duplicating it."""
    readable = f"{day:%Y%m%d}-{kind.value}-{asset_id}"
    if len(readable) <= 64:
        return readable
    # '~' never occurs in an asset id, so a shortened id cannot equal a readable one.
    digest = hashlib.sha256(f"{day.isoformat()}|{kind.value}|{asset_id}".encode()).hexdigest()[:12]
    return f"{readable[:51]}~{digest}"


def route_id(
    day: date,
    kind: TaskKind,
    municipality: str,
    vehicle: str | None = None,
    copy: int = 0,
    *,
    waste_type: str | None = None,
) -> str:
    """A route id that depends only on (day, kind, town) and, where the town has several vehicles for the kind, on
    the vehicle and which of its identical copies (0, 1, …) drives it; planned without a fleet, a collection round
    per waste type names its type. At most 64 characters."""
    if vehicle is None and waste_type is None:
        digest = hashlib.sha256(municipality.encode()).hexdigest()[:6]
        return f"{day:%Y%m%d}-{kind.value}-{_slug(municipality)[:32]}-{digest}"
    if vehicle is None:
        digest = hashlib.sha256(f"{municipality}|{waste_type}".encode()).hexdigest()[:8]
        return f"{day:%Y%m%d}-{kind.value}-{_slug(municipality)[:20]}-{_slug(waste_type or '')[:12]}-{digest}"[:64]
    digest = hashlib.sha256(f"{municipality}|{vehicle}|{copy}".encode()).hexdigest()[:8]
    return f"{day:%Y%m%d}-{kind.value}-{_slug(municipality)[:14]}-{_slug(vehicle)[:14]}-{copy}-{digest}"[:64]


def watering_litres(asset: Asset, day: date) -> float:
    """Litres for one watering: young trees 200 L (years 0–1), 150 L (2–3), 100 L (4–5); older trees 80 L;
    green spaces a fixed 400 L. A tree without planting year counts as old."""
    if asset.kind is AssetKind.GREEN_SPACE:
        return GREEN_SPACE_LITRES
    age = tree_age_years(asset, day)
    if age is None or age > YOUNG_TREE_YEARS:
        return OLD_TREE_LITRES
    if age <= 1:
        return 200.0
    return 150.0 if age <= 3 else 100.0


def tree_age_years(asset: Asset, day: date) -> int | None:
    """Whole years since planting (0 in the planting year); None when the planting year is unknown."""
    if asset.planting_year is None:
        return None
    return max(0, day.year - asset.planting_year)


@dataclass(frozen=True)
class _Window:
    day: date
    due_from: datetime
    due_until: datetime


class _Reader:
    """Hands out latest values the planner may act on and notes, per asset, why the others were skipped."""

    def __init__(self, reference: datetime, settings: PlanSettings, language: Language) -> None:
        self.reference = reference
        self.settings = settings
        self.language = language
        self.skipped: list[tuple[str, str]] = []

    def usable(
        self, asset: Asset, values: Mapping[Quantity, LatestValue], quantity: Quantity, required: bool
    ) -> LatestValue | None:
        """The latest value if it may be acted on; else None, noting why (an absent optional value is no news)."""
        latest_value = values.get(quantity)
        name = text(f"plan.quantity.{quantity.value}", self.language)
        if latest_value is None:
            if required:
                self._skip(asset, "plan.skip.missing", quantity=name)
            return None
        if latest_value.flags:
            self._skip(asset, "plan.skip.flagged", quantity=name, flags=", ".join(sorted(latest_value.flags)))
            return None
        age = self.reference - latest_value.time
        if age > self.settings.stale_after:
            hour = timedelta(hours=1)
            self._skip(
                asset, "plan.skip.stale", quantity=name, age_h=age / hour, limit_h=self.settings.stale_after / hour
            )
            return None
        return latest_value

    def skip_closed(self, asset: Asset, day: date, calendar: TownCalendar | None) -> None:
        """A watering due on a closed day: it moves to the next working day."""
        if calendar is None:
            return
        reason = calendar.holiday(day, self.language) or text("plan.calendar.weekend", self.language)
        self._skip(asset, "plan.skip.water_closed_day", reason=reason, next_day=calendar.next_working_day(day))

    def skip_no_watering_day(self, asset: Asset, next_day: date) -> None:
        """A dry tree on a day the tanker does not go: it waits for the next watering day."""
        self._skip(asset, "plan.skip.water_not_watering_day", next_day=next_day)

    def _skip(self, asset: Asset, key: str, **values: object) -> None:
        self.skipped.append((asset.id, text(key, self.language, asset=asset.id, **values)))


def _collect_task(
    asset: Asset, fill: LatestValue, threshold: float, round_day: bool, window: _Window, language: Language
) -> Task:
    reason = text(
        "task.collect.reason" if round_day else "task.collect.overflow",
        language,
        asset=asset.id,
        fill_pct=fill.value * 100,
        threshold_pct=threshold * 100,
    )
    evidence = {"fill_ratio": fill.value, "threshold": threshold, "reading_time": _iso(fill.time)}
    return _task(asset, TaskKind.COLLECT, _fill_priority(fill.value), reason, evidence, window)


def _opportunistic_task(
    asset: Asset, fill: LatestValue, detour_km: float, settings: PlanSettings, window: _Window, language: Language
) -> Task:
    reason = text(
        "task.collect.opportunistic", language, asset=asset.id, fill_pct=fill.value * 100, detour_m=detour_km * 1000
    )
    evidence = {
        "fill_ratio": fill.value,
        "threshold": settings.collect_opportunistic,
        "detour_km": round(detour_km, 3),
        "max_detour_km": settings.opportunistic_detour_km,
        "reading_time": _iso(fill.time),
    }
    return _task(asset, TaskKind.COLLECT, _fill_priority(fill.value), reason, evidence, window)


def _water_task(asset: Asset, soil: LatestValue, settings: PlanSettings, window: _Window, language: Language) -> Task:
    litres = watering_litres(asset, window.day)
    age = tree_age_years(asset, window.day) if asset.kind is AssetKind.TREE else None
    if asset.kind is AssetKind.GREEN_SPACE:
        priority = PRIORITY_GREEN_SPACE
    elif age is not None and age <= YOUNG_TREE_YEARS:
        priority = PRIORITY_YOUNG_TREE
    else:
        priority = PRIORITY_OLD_TREE
    reason = text(
        "task.water.reason",
        language,
        asset=asset.id,
        vwc_pct=soil.value * 100,
        threshold_pct=settings.dry_soil_vwc * 100,
        litres=litres,
    )
    evidence: dict[str, float | str] = {
        "soil_vwc": soil.value,
        "threshold": settings.dry_soil_vwc,
        "litres": litres,
        "reading_time": _iso(soil.time),
    }
    if age is not None:
        evidence["tree_age_years"] = float(age)
    return _task(asset, TaskKind.WATER, priority, reason, evidence, window)


def _battery_task(
    asset: Asset,
    battery_v: LatestValue | None,
    battery_pct: LatestValue | None,
    settings: PlanSettings,
    window: _Window,
    language: Language,
) -> Task | None:
    low_v = battery_v is not None and battery_v.value < settings.battery_low_v
    low_pct = battery_pct is not None and battery_pct.value < settings.battery_low_pct
    evidence: dict[str, float | str] = {}
    reason = ""
    if low_pct and battery_pct is not None:
        evidence |= {"battery_pct": battery_pct.value, "threshold_pct": settings.battery_low_pct}
        evidence["reading_time"] = _iso(battery_pct.time)
        reason = text(
            "task.inspect.battery_low_pct",
            language,
            asset=asset.id,
            battery_pct=battery_pct.value,
            threshold_pct=settings.battery_low_pct,
        )
    if low_v and battery_v is not None:  # the voltage is the more direct measure: its reason wins
        evidence |= {"battery_v": battery_v.value, "threshold_v": settings.battery_low_v}
        evidence["reading_time"] = _iso(battery_v.time)
        reason = text(
            "task.inspect.battery_low_v",
            language,
            asset=asset.id,
            battery_v=battery_v.value,
            threshold_v=settings.battery_low_v,
        )
    if not evidence:
        return None
    return _task(asset, TaskKind.INSPECT, PRIORITY_INSPECT, reason, evidence, window)


def _with_sensor_faults(
    inspect: Task | None, asset: Asset, values: Mapping[Quantity, LatestValue], window: _Window, language: Language
) -> Task | None:
    """The inspect task, raised (or extended) when a latest reading is flagged as a sensor fault: such a reading
    is not acted on, but the sensor needs a look."""
    faulty = sorted((q, v) for q, v in values.items() if SENSOR_FAULT in v.flags)
    if not faulty:
        return inspect
    quantity, latest_value = faulty[0]
    faults = ", ".join(fault_types_in(latest_value.flags)) or ", ".join(sorted(latest_value.flags))
    reason = text(
        "task.inspect.sensor_fault",
        language,
        asset=asset.id,
        quantity=text(f"plan.quantity.{quantity.value}", language)
        if f"plan.quantity.{quantity.value}" in MESSAGES
        else quantity.value,
        faults=faults,
    )
    evidence: dict[str, float | str] = {
        "fault_quantity": quantity.value,
        "faults": faults,
        "reading_value": latest_value.value,
        "reading_time": _iso(latest_value.time),
    }
    if inspect is not None:
        return inspect.model_copy(
            update={"reason": f"{reason} {inspect.reason}"[:500], "evidence": {**inspect.evidence, **evidence}}
        )
    return _task(asset, TaskKind.INSPECT, PRIORITY_INSPECT, reason, evidence, window)


def _task(
    asset: Asset, kind: TaskKind, priority: int, reason: str, evidence: dict[str, float | str], window: _Window
) -> Task:
    return Task(
        id=task_id(window.day, kind, asset.id),
        kind=kind,
        asset=asset.id,
        municipality=asset.municipality,
        due_from=window.due_from,
        due_until=window.due_until,
        priority=priority,
        reason=reason,
        evidence=evidence,
    )


def _fill_priority(fill_ratio: float) -> int:
    # The fuller the bin, the sooner: 80 % full is priority 80, full or overfull is 100.
    return int(min(100, max(1, round(fill_ratio * 100))))


def _choose_opportunistic(
    depot: Depot,
    must_go: Sequence[Asset],
    candidates: Sequence[tuple[Asset, LatestValue]],
    settings: PlanSettings,
) -> list[tuple[Asset, LatestValue, float]]:
    """Half-full bins worth taking along: greedily insert the one with the cheapest detour into the town's
    collection route while that detour stays below `opportunistic_detour_km`. No route, no detour: a town
    without a must-go bin gets no opportunistic ones either."""
    if not must_go or not candidates:
        return []
    ordered_must = sorted(must_go, key=lambda asset: asset.id)
    ordered_candidates = sorted(candidates, key=lambda entry: entry[0].id)
    points = [(depot.latitude, depot.longitude)]
    points += [(asset.latitude, asset.longitude) for asset in ordered_must]
    points += [(asset.latitude, asset.longitude) for asset, _ in ordered_candidates]
    distances = distance_matrix_km(points, settings.road_factor)
    order = list(two_opt(distances, nearest_neighbour(distances[: len(ordered_must) + 1, : len(ordered_must) + 1])))
    remaining = list(range(len(ordered_must) + 1, len(points)))
    chosen: list[tuple[Asset, LatestValue, float]] = []
    while remaining:
        detours, positions = insertion_detours(distances, np.array(order, dtype=np.intp), np.array(remaining))
        best = int(np.argmin(detours))  # ties go to the lower asset id
        if detours[best] >= settings.opportunistic_detour_km:
            break
        node = remaining.pop(best)
        order.insert(int(positions[best]), node)
        asset, fill = ordered_candidates[node - len(ordered_must) - 1]
        chosen.append((asset, fill, float(detours[best])))
    return chosen


@dataclass(frozen=True)
class _BinForecast:
    fill_now: float  # expected at the start of the day's work
    fill_next: float  # expected at the end of the next run, if not emptied today
    daily_rate: float
    fill_later: float  # expected `prize_lookahead_days` after that: what an optional stop's prize grows with


def _next_run_end(day: date, settings: PlanSettings, calendar: TownCalendar | None = None) -> datetime:
    """The end of the next collection run after `day` (a bin not emptied today waits until then); with a calendar,
    a round that falls on a holiday runs on the next working day, so a bin before a long weekend waits longer."""
    following = day + timedelta(days=1)
    for _ in range(400):
        if is_round_day(following, settings.collection_weekdays, calendar):
            break
        following += timedelta(days=1)
    return work_window(following)[1]


def _is_watering_day(day: date, watering_weekdays: tuple[int, ...] | None, calendar: TownCalendar | None) -> bool:
    """Whether the tanker may go on `day`: any day without watering weekdays; with them, on those weekdays and the
    working day a run moves to from a holiday, and on a closed watering weekday too, so the plan says the run
    moved (the due trees come back in `skipped`)."""
    if watering_weekdays is None or is_round_day(day, watering_weekdays, calendar):
        return True
    return calendar is not None and day.weekday() in watering_weekdays and not calendar.is_working_day(day)


def next_watering_day(day: date, watering_weekdays: tuple[int, ...], calendar: TownCalendar | None = None) -> date:
    """The tanker's next run after `day`: the next watering weekday, or with a calendar the working day a run on
    a holiday moves to; at most `MAX_WATERING_HORIZON_DAYS` ahead (the balance looks no further)."""
    following = day + timedelta(days=1)
    while (following - day).days < MAX_WATERING_HORIZON_DAYS:
        if is_round_day(following, watering_weekdays, calendar):
            break
        following += timedelta(days=1)
    return following


def watering_horizon_days(day: date, watering_weekdays: tuple[int, ...], calendar: TownCalendar | None = None) -> int:
    """Days from `day` to the tanker's next run: what a site watered today must last (the balance's horizon)."""
    return (next_watering_day(day, watering_weekdays, calendar) - day).days


def _horizon_past_closed_days(day: date, watering: WateringInput, calendar: TownCalendar) -> WateringInput:
    """A watering run due on a holiday or closed day moves to the next working day, so a tree watered today must
    last until then: the balance's horizon reaches past closed days at its end (Wednesday's run after a holiday
    Wednesday is Thursday's)."""
    next_run = day + timedelta(days=watering.horizon_days)
    while not calendar.is_working_day(next_run) and (next_run - day).days < 14:
        next_run += timedelta(days=1)
    horizon_days = (next_run - day).days
    return watering if horizon_days == watering.horizon_days else replace(watering, horizon_days=horizon_days)


def _next_workday_end(day: date, calendar: TownCalendar | None = None) -> datetime:
    if calendar is not None:
        return work_window(calendar.next_working_day(day))[1]
    following = day + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return work_window(following)[1]


def _forecast_bin(
    asset: Asset,
    history: BinHistory,
    reference: datetime,
    next_run_end: datetime,
    lookahead_days: float,
    reader: _Reader,
) -> _BinForecast | None:
    if history.times_s.size == 0:
        reader._skip(asset, "plan.skip.missing", quantity=text("plan.quantity.fill_ratio", reader.language))
        return None
    age = reference - datetime.fromtimestamp(float(history.times_s[-1]), UTC)
    if age > reader.settings.stale_after:
        hour = timedelta(hours=1)
        reader._skip(
            asset,
            "plan.skip.stale",
            quantity=text("plan.quantity.fill_ratio", reader.language),
            age_h=age / hour,
            limit_h=reader.settings.stale_after / hour,
        )
        return None
    try:
        model: FillModel = fit_fill_model(history)
    except FillHistoryError as error:
        reader.skipped.append((asset.id, str(error)))
        return None
    fill_now = model.fill_at(reference.timestamp())
    fill_next = model.fill_at(next_run_end.timestamp())
    fill_later = model.fill_at(next_run_end.timestamp() + lookahead_days * 86400.0) if lookahead_days else fill_next
    return _BinForecast(fill_now, fill_next, model.daily_rate, fill_later)


def _emergency_villages(
    depot: Depot, urgent: Sequence[tuple[Asset, _BinForecast]], must_fill: float, settings: PlanSettings
) -> list[tuple[Asset, _BinForecast]]:
    """The urgent bins of the villages worth an extra run: prizes summed per village against its round trip."""
    by_village: dict[tuple[str, str], list[tuple[Asset, _BinForecast]]] = defaultdict(list)
    for asset, forecast in urgent:  # a truck carries one waste type: a run per village and type
        by_village[(asset.village, waste_type_of(asset))].append((asset, forecast))
    base_prize = settings.emergency_prize_km or 0.0
    chosen: list[tuple[Asset, _BinForecast]] = []
    for village in sorted(by_village):
        members = sorted(by_village[village], key=lambda entry: entry[0].id)
        prize = sum(base_prize * min(1.0 + 5.0 * max(f.fill_next - must_fill, 0.0), 3.0) for _, f in members)
        round_trip_km = build_route(depot, [asset for asset, _ in members], settings.road_factor)[1]
        if prize >= round_trip_km:
            chosen.extend(members)
    return chosen


def _choose_prized(
    depot: Depot,
    on_route: Sequence[Asset],
    candidates: Sequence[tuple[Asset, _BinForecast]],
    settings: PlanSettings,
) -> list[tuple[Asset, _BinForecast, float]]:
    """Optional bins worth their detour: each is worth `prize_km` of extra road, growing with the fill expected at
    the next run; greedily insert the one with the best prize minus detour while that stays positive. A town
    without a must-go bin drives no round for optional ones."""
    if not on_route or not candidates:
        return []
    span = settings.forecast_must_fill - settings.forecast_may_fill
    ordered_route = sorted(on_route, key=lambda asset: asset.id)
    ordered_candidates = sorted(candidates, key=lambda entry: entry[0].id)
    prizes = np.array(
        [
            settings.max_prize_km * min(max((f.fill_later - settings.forecast_may_fill) / span, 0.0), 1.0)
            for _, f in ordered_candidates
        ]
    )
    points = [(depot.latitude, depot.longitude)]
    points += [(asset.latitude, asset.longitude) for asset in ordered_route]
    points += [(asset.latitude, asset.longitude) for asset, _ in ordered_candidates]
    distances = distance_matrix_km(points, settings.road_factor)
    head = len(ordered_route) + 1
    order = list(two_opt(distances, nearest_neighbour(distances[:head, :head])))
    remaining = list(range(head, len(points)))
    chosen: list[tuple[Asset, _BinForecast, float]] = []
    while remaining:
        detours, positions = insertion_detours(distances, np.array(order, dtype=np.intp), np.array(remaining))
        gains = prizes[np.array(remaining) - head] - detours
        best = int(np.argmax(gains))  # ties go to the lower asset id
        if gains[best] <= 0:
            break
        node = remaining.pop(best)
        order.insert(int(positions[best]), node)
        asset, forecast = ordered_candidates[node - head]
        chosen.append((asset, forecast, float(detours[best])))
    return chosen


def _forecast_task(
    asset: Asset, forecast: _BinForecast, detour_km: float | None, window: _Window, language: Language
) -> Task:
    values = {
        "asset": asset.id,
        "fill_pct": forecast.fill_now * 100,
        "forecast_pct": forecast.fill_next * 100,
        "rate_pct": forecast.daily_rate * 100,
    }
    if detour_km is None:
        reason = text("task.collect.forecast", language, **values)
    else:
        reason = text("task.collect.forecast_optional", language, detour_m=detour_km * 1000, **values)
    evidence: dict[str, float | str] = {
        "fill_ratio": round(forecast.fill_now, 3),
        "fill_ratio_next_run": round(forecast.fill_next, 3),
        "fill_rate_per_day": round(forecast.daily_rate, 4),
    }
    if detour_km is not None:
        evidence["detour_km"] = round(detour_km, 3)
    return _task(asset, TaskKind.COLLECT, _fill_priority(forecast.fill_next), reason, evidence, window)


def _balance_task(asset: Asset, need: WaterNeed, window: _Window, language: Language) -> Task:
    if asset.kind is AssetKind.GREEN_SPACE:
        priority = PRIORITY_GREEN_SPACE
    else:
        priority = PRIORITY_YOUNG_TREE if need.young else PRIORITY_OLD_TREE
        if need.young and need.years_since_planting == 0:
            priority = PRIORITY_NEW_TREE
    reason = text(
        "task.water.balance",
        language,
        asset=asset.id,
        depletion_mm=need.depletion_mm,
        raw_mm=need.readily_available_mm,
        tension_kpa=need.tension_kpa,
        litres=need.litres,
    )
    evidence: dict[str, float | str] = {
        "depletion_mm": round(need.depletion_mm, 1),
        "readily_available_mm": round(need.readily_available_mm, 1),
        "tension_kpa": round(need.tension_kpa, 1),
        "litres": need.litres,
        "sensed": "sensor" if need.sensed else "site class",
    }
    if need.weather_days_estimated > 0:
        reason += " " + text("task.water.weather_estimated", language, days=need.weather_days_estimated)
        evidence["weather_days_estimated"] = need.weather_days_estimated
    return _task(asset, TaskKind.WATER, priority, reason, evidence, window)


def _route(
    day: date,
    town: str,
    kind: TaskKind,
    depot: Depot,
    stops: Sequence[Asset],
    settings: PlanSettings,
    *,
    waste_type: str | None = None,
) -> Route:
    if settings.vrp_time_limit_s is not None and len(stops) > 3:
        ordered, km = _vrp_route(depot, stops, settings)
    else:
        ordered, km = build_route(depot, stops, settings.road_factor)
    return Route(
        id=route_id(day, kind, town, waste_type=waste_type),
        municipality=town,
        kind=kind,
        day=day,
        stops=[asset.id for asset in ordered],
        km=km,
        polyline=route_points(depot, ordered),
    )


def _plan_per_town(
    day: date,
    depots: Sequence[Depot],
    assets: Sequence[Asset],
    latest: Mapping[str, Mapping[Quantity, LatestValue]],
    settings: PlanSettings,
    language: Language,
    as_of: datetime | None,
    bin_history: Mapping[str, BinHistory] | None,
    watering: WateringInput | None,
    fleet: Fleet | None,
    calendar: PlanningCalendar,
) -> DayPlan:
    """plan_day town by town, each with its own calendar (its round days, closed days and markets differ)."""
    by_town: dict[str, list[Asset]] = defaultdict(list)
    for asset in _unique_assets(assets).values():
        by_town[asset.municipality].append(asset)
    tasks: list[Task] = []
    routes: list[Route] = []
    skipped: list[tuple[str, str]] = []
    for town in sorted(by_town):
        town_watering = (
            replace(watering, sites=[site for site in watering.sites if site.municipality == town])
            if watering is not None
            else None
        )
        part = plan_day(
            day,
            depots,
            by_town[town],
            latest,
            settings,
            language,
            as_of=as_of,
            bin_history=bin_history,
            watering=town_watering,
            fleet=fleet,
            calendar=calendar.for_town(town),
        )
        tasks += part.tasks
        routes += part.routes
        skipped += part.skipped
    tasks.sort(key=lambda task: (task.municipality, task.kind.value, task.asset))
    return DayPlan(tasks=tasks, routes=routes, skipped=skipped)


def _with_markets(
    forecast: _BinForecast | None, asset: Asset, calendar: TownCalendar | None, day: date, next_run_end: datetime
) -> _BinForecast | None:
    """The forecast with the fill the markets until the next run are expected to add (a market square's bins)."""
    if forecast is None or calendar is None or not calendar.markets:
        return forecast
    jump = calendar.market_jump(asset, day, next_run_end.astimezone(LOCAL_ZONE).date())
    if jump == 0:
        return forecast
    return replace(forecast, fill_next=forecast.fill_next + jump, fill_later=forecast.fill_later + jump)


def _prize_km(forecast: _BinForecast, settings: PlanSettings) -> float:
    """What an optional bin is worth in km of detour: growing with its expected fill up to `max_prize_km`."""
    span = settings.forecast_must_fill - settings.forecast_may_fill
    return settings.max_prize_km * min(max((forecast.fill_later - settings.forecast_may_fill) / span, 0.0), 1.0)


def _fleet_routes(
    day: date,
    depot: Depot,
    fleet: Fleet,
    town_fleet: TownFleet,
    must_collect: Sequence[Asset],
    optional: Sequence[tuple[Asset, float]],
    to_water: Sequence[Asset],
    pending: dict[tuple[TaskKind, str], Task],
    settings: PlanSettings,
    calendar: TownCalendar | None,
    language: Language,
    skips: list[tuple[str, str]],
) -> list[Route]:
    """The town's collection and watering routes with its vehicles; an optional stop no vehicle takes loses its
    task, and every stop left out is noted in `skips` with the reason."""
    from cloud.scheduler.fleet_routes import FleetStop, route_with_fleet  # PyVRP: a heavy import

    def load(kind: TaskKind, asset: Asset) -> int:  # the rule a dispatcher's stop is loaded by, too
        return stop_load_l(kind.value, asset.capacity_l, pending[(kind, asset.id)].evidence)

    stops_by_kind = {
        TaskKind.COLLECT: [FleetStop(asset, load(TaskKind.COLLECT, asset)) for asset in must_collect]
        + [
            FleetStop(asset, load(TaskKind.COLLECT, asset), required=False, prize_km=prize) for asset, prize in optional
        ],
        TaskKind.WATER: [FleetStop(asset, load(TaskKind.WATER, asset)) for asset in to_water],
    }
    routes: list[Route] = []
    for kind in _ROUTED_KINDS:
        if not stops_by_kind[kind]:
            continue
        result = route_with_fleet(
            day, kind, depot, town_fleet, fleet, stops_by_kind[kind], settings.road_factor, calendar, language
        )
        routes += result.routes
        skips += result.unserved + result.unrouted
        for asset_id, _ in result.unserved:
            pending.pop((kind, asset_id), None)
    return routes


def _vrp_route(depot: Depot, stops: Sequence[Asset], settings: PlanSettings) -> tuple[list[Asset], float]:
    """One vehicle's order through `stops` by PyVRP; imported late, as PyVRP is a heavy import."""
    from cloud.scheduler.routing_vrp import (
        MAX_LOAD,
        MAX_TIME_S,
        RouteDepot,
        RoutingProblem,
        Stop,
        Vehicle,
        solve_routes,
    )

    by_id = {asset.id: asset for asset in stops}
    problem = RoutingProblem(
        depots=(RouteDepot("depot", depot.latitude, depot.longitude),),
        vehicles=(Vehicle("truck", "depot", MAX_LOAD, shift_start_s=0, shift_end_s=MAX_TIME_S),),
        stops=tuple(Stop(asset.id, asset.latitude, asset.longitude) for asset in sorted(stops, key=lambda a: a.id)),
        road_factor=max(settings.road_factor, 1.0),
    )
    solution = solve_routes(
        problem, settings.vrp_time_limit_s or 1.0, settings.vrp_seed, max_iterations=settings.vrp_max_iterations
    )
    if not solution.routes:
        return build_route(depot, stops, settings.road_factor)
    route = solution.routes[0]
    return [by_id[visit.stop_id] for visit in route.visits], route.km


def _unique_assets(assets: Iterable[Asset]) -> dict[str, Asset]:
    by_id: dict[str, Asset] = {}
    for asset in assets:
        if asset.id in by_id:
            raise SchedulerError(f"asset {asset.id!r} appears more than once")
        by_id[asset.id] = asset
    return by_id


def _depots_by_town(depots: Iterable[Depot]) -> dict[str, Depot]:
    # One depot per town for now; with several, the first by name serves (the PyVRP planner will use them all).
    by_town: dict[str, Depot] = {}
    for depot in sorted(depots, key=lambda depot: (depot.municipality, depot.name)):
        by_town.setdefault(depot.municipality, depot)
    return by_town


def _require_aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise SchedulerError(f"{name} {moment.isoformat()} carries no time zone")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _slug(name: str) -> str:
    folded = name.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    ascii_only = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return "-".join("".join(ch if ch.isalnum() else " " for ch in ascii_only).split())
