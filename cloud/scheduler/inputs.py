"""What the forecast planner reads from the series store: each bin's fill history (`BinHistory`) and, per town,
the weather station's days, the soil sensors' days and the sites (`WateringInput`).

Assets without enough history are left out, so `plan_day` plans them by their latest values (the first planner's
rules); `PlanInputs.fallback` says why, and `explain_fallbacks` puts that into the tasks' reasons. The store holds
no weather forecast: the balance runs without forecast rain and the water tasks say so.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from cloud.scheduler.fill import BinHistory, FillHistoryError
from cloud.scheduler.planning import PlanSettings, work_window
from cloud.scheduler.policy import MEASURED_POLICY, WateringPolicy
from cloud.scheduler.water import (
    DailyWeather,
    SoilObservation,
    TownWeather,
    WateringInput,
    WateringSite,
    WaterInputError,
    young_tree_site,
)
from cloud.store.series import SeriesArrays, SeriesPoint, SeriesStore
from flurfunk.contracts import Asset, AssetKind, Quantity, Task, TaskKind
from flurfunk.i18n import Language, text

logger = logging.getLogger("cloud.scheduler.inputs")

LOCAL_ZONE = ZoneInfo("Europe/Berlin")
HISTORY_DAYS = 14  # as the overflow alert's forecast: two weeks show a bin's weekly rhythm
# A forecast needs fill gains from consecutive days: readings on at least three local days.
MIN_BIN_DAYS = 3
MIN_BIN_READINGS = 12
MIN_WEATHER_DAYS = 3  # fewer measured days and the balance is mostly its starting assumption
MIN_STATION_HOURS = 18  # a station day counts when its temperature covers this many hours
# Assets carry no elevation yet; it only matters where the station measures no pressure (Hesse: 100-600 m).
DEFAULT_ELEVATION_M = 250.0
STATION_WIND_HEIGHT_M = 2.0
MAX_REASON_CHARS = 500  # Task.reason's limit

# Assets carry no soil or pit data yet: nominal sites (as the operations bench's planner uses) until they do.
# Young trees: their planting year's nominal root zone and crown (`young_tree_site`); old trees and green spaces:
# (root depth m, area m², crop factor); loam, full sun.
OLD_TREE_SITE = (1.0, 10.0, 0.6)
GREEN_SPACE_SITE = (0.15, 60.0, 0.8)
NOMINAL_SOIL = "loam"
YOUNG_TREE_YEARS = 5

# The cloud plans with the policy bench/operations.py measured against fixed rounds (cloud.scheduler.policy):
# collection settings and the tanker's weekdays, and the watering policy the balance's input is built with.
CLOUD_PLAN_SETTINGS: PlanSettings = MEASURED_POLICY.settings
CLOUD_WATERING_POLICY: WateringPolicy = MEASURED_POLICY.watering

_SOIL_QUANTITIES = (Quantity.SOIL_VWC, Quantity.SOIL_TENSION_KPA)
_WATERED_KINDS = frozenset({AssetKind.TREE, AssetKind.GREEN_SPACE})
_STATION_QUANTITIES = (
    Quantity.AIR_TEMPERATURE_C,
    Quantity.HUMIDITY_PCT,
    Quantity.WIND_SPEED_MS,
    Quantity.SOLAR_RADIATION_W_M2,
    Quantity.PRESSURE_HPA,
    Quantity.RAIN_MM,
)


@dataclass(frozen=True)
class PlanInputs:
    """Everything `plan_day` takes beyond the latest values, and why some assets get the latest-value rules."""

    bin_history: dict[str, BinHistory]
    watering: WateringInput | None
    fallback: dict[str, str] = field(default_factory=dict)  # asset id -> reason text (in the plan's language)
    notes: list[str] = field(default_factory=list)  # plan-wide remarks (no forecast source)
    has_rain_forecast: bool = False


def read_plan_inputs(
    series: SeriesStore,
    day: date,
    assets: Sequence[Asset],
    *,
    language: Language = "de",
    history_days: int = HISTORY_DAYS,
    watered_litres: Mapping[str, Mapping[date, float]] | None = None,
) -> PlanInputs:
    """The fill histories and the water-balance input for planning `day`, from the last `history_days` days.

    Readings up to the end of the day's work window count, so an intraday replan sees the morning's readings.
    Weather and soil count by whole local days before `day`. The balance's input follows `CLOUD_WATERING_POLICY`;
    `plan_day` with `CLOUD_PLAN_SETTINGS` waters only on its weekdays, with the horizon to the next run.
    """
    if not 1 <= history_days <= 366:
        raise ValueError(f"history_days must be 1-366, got {history_days}")
    day_end = work_window(day)[1]
    start = datetime.combine(day - timedelta(days=history_days), datetime.min.time(), LOCAL_ZONE).astimezone(UTC)
    fallback: dict[str, str] = {}

    bin_history: dict[str, BinHistory] = {}
    bins = [asset for asset in assets if asset.kind is AssetKind.BIN]
    fills = series.query_many([asset.id for asset in bins], Quantity.FILL_RATIO, start, day_end) if bins else {}
    for asset in bins:
        history, reason = _bin_history(asset, fills.get(asset.id), language)
        if history is not None:
            bin_history[asset.id] = history
        elif reason is not None:
            fallback[asset.id] = reason

    watered = [asset for asset in assets if asset.kind in _WATERED_KINDS]
    watering: WateringInput | None = None
    if watered:
        watering = _watering_input(series, day, watered, assets, start, language, watered_litres or {}, fallback)
    notes = [text("plan.note.no_rain_forecast", language)] if watering is not None else []
    logger.info(
        "plan inputs day=%s bins_by_forecast=%d sites_by_balance=%d by_latest_value=%d",
        day,
        len(bin_history),
        len(watering.sites) if watering else 0,
        len(fallback),
    )
    return PlanInputs(bin_history=bin_history, watering=watering, fallback=fallback, notes=notes)


def explain_fallbacks(tasks: Iterable[Task], inputs: PlanInputs, language: Language = "de") -> list[Task]:
    """The tasks with the plan's basis in their evidence (`planned_by`) and, where the latest-value rules served
    for lack of history, or the balance ran without a rain forecast, that said in the reason."""
    no_forecast = text("plan.note.no_rain_forecast", language)
    balanced = {site.asset for site in inputs.watering.sites} if inputs.watering is not None else set()
    explained: list[Task] = []
    for task in tasks:
        addition: str | None = None
        if task.kind is TaskKind.COLLECT:
            basis = "forecast" if task.asset in inputs.bin_history else "latest_value"
            addition = inputs.fallback.get(task.asset)
        elif task.kind is TaskKind.WATER:
            basis = "water_balance" if task.asset in balanced else "latest_value"
            addition = inputs.fallback.get(task.asset)
            if basis == "water_balance" and not inputs.has_rain_forecast:
                addition = no_forecast
        else:
            explained.append(task)
            continue
        update: dict[str, object] = {"evidence": {**task.evidence, "planned_by": basis}}
        if addition:
            update["reason"] = f"{task.reason} {addition}"[:MAX_REASON_CHARS]
        explained.append(task.model_copy(update=update))
    return explained


# --- bins ---------------------------------------------------------------------------------------------------------


def _bin_history(asset: Asset, series: SeriesArrays | None, language: Language) -> tuple[BinHistory | None, str | None]:
    times = series.times_s if series is not None else np.empty(0)
    fills = series.values if series is not None else np.empty(0)
    days = 0
    if times.size:
        # Local days by the zone offset of the last reading: a clock change inside the history moves a day's
        # edge by an hour, which does not matter for counting days (and is ~10x faster than a zone per point).
        last = datetime.fromtimestamp(float(times[-1]), UTC)
        offset = last.astimezone(LOCAL_ZONE).utcoffset() or timedelta(0)
        days = int(np.unique(np.floor((times + offset.total_seconds()) / 86_400.0)).size)
    if times.size < MIN_BIN_READINGS or days < MIN_BIN_DAYS:
        reason = text("plan.fallback.bin_history", language, readings=int(times.size), days=days, min_days=MIN_BIN_DAYS)
        return None, reason
    try:
        return BinHistory(asset.id, times, fills), None
    except FillHistoryError as error:
        logger.warning("fill history of bin %s not usable: %s", asset.id, error)
        return None, str(error)


# --- trees and green spaces ----------------------------------------------------------------------------------------


def _watering_input(
    series: SeriesStore,
    day: date,
    watered: Sequence[Asset],
    assets: Sequence[Asset],
    start: datetime,
    language: Language,
    watered_litres: Mapping[str, Mapping[date, float]],
    fallback: dict[str, str],
) -> WateringInput | None:
    end = datetime.combine(day, datetime.min.time(), LOCAL_ZONE).astimezone(UTC)  # whole days before `day`
    stations: dict[str, list[Asset]] = defaultdict(list)
    for asset in sorted(assets, key=lambda a: a.id):
        if asset.kind is AssetKind.WEATHER_STATION:
            stations[asset.municipality].append(asset)

    weather: dict[str, TownWeather] = {}
    for town in sorted({asset.municipality for asset in watered}):
        station_days: list[DailyWeather] = []
        station: Asset | None = None
        for candidate in stations.get(town, []):  # the first station of the town with enough days serves
            station, station_days = candidate, station_weather_days(series, candidate.id, start, end)
            if len(station_days) >= MIN_WEATHER_DAYS:
                break
        if station is not None and len(station_days) >= MIN_WEATHER_DAYS:
            weather[town] = TownWeather(
                latitude_deg=station.latitude, elevation_m=DEFAULT_ELEVATION_M, measured=station_days
            )
            continue
        if station is None:
            reason = text("plan.fallback.no_station", language, municipality=town)
        else:
            reason = text(
                "plan.fallback.weather_days",
                language,
                municipality=town,
                days=len(station_days),
                min_days=MIN_WEATHER_DAYS,
            )
        fallback.update({asset.id: reason for asset in watered if asset.municipality == town})

    sites: list[WateringSite] = []
    for asset in watered:
        if asset.municipality not in weather:
            continue
        if asset.planting_year is not None and asset.planting_year > day.year:
            # Not planted yet by its record (or a typo): no site to balance; the latest soil moisture serves.
            reason = text("plan.fallback.planting_year", language, planting_year=asset.planting_year, year=day.year)
            fallback[asset.id] = reason
            continue
        sites.append(nominal_site(asset, day))
    if not sites:
        return None
    soil: dict[str, list[SoilObservation]] = {}
    site_ids = [site.asset for site in sites]
    readings = {quantity: series.query_many(site_ids, quantity, start, end) for quantity in _SOIL_QUANTITIES}
    for site in sites:
        observations = _soil_days(site.asset, {q: readings[q].get(site.asset) for q in _SOIL_QUANTITIES})
        if observations:
            soil[site.asset] = observations
    policy = CLOUD_WATERING_POLICY
    horizon_days = policy.horizon_days(day)  # plan_day refines it with the town's calendar
    return policy.watering_input(sites, weather, soil=soil, watered_litres=watered_litres, horizon_days=horizon_days)


def nominal_site(asset: Asset, day: date) -> WateringSite:
    """The site the balance assumes for an asset: a young tree's root zone and crown by its planting year, nominal
    pit and crop for old trees and green spaces (assets carry no soil, pit or exposure data yet). A planting year
    after `day`'s is refused (WaterInputError)."""
    planted = asset.planting_year
    if asset.kind is AssetKind.TREE and planted is not None and day.year - planted <= YOUNG_TREE_YEARS:
        return young_tree_site(asset.id, asset.municipality, NOMINAL_SOIL, asset.planting_year, day.year)
    if asset.kind is AssetKind.GREEN_SPACE:
        depth, area, crop = GREEN_SPACE_SITE
    else:
        depth, area, crop = OLD_TREE_SITE
    return WateringSite(
        asset=asset.id,
        municipality=asset.municipality,
        soil=NOMINAL_SOIL,
        root_depth_m=depth,
        area_m2=area,
        crop_factor=crop,
        planting_year=asset.planting_year,
        is_tree=asset.kind is AssetKind.TREE,
    )


def station_weather_days(series: SeriesStore, station: str, start: datetime, end: datetime) -> list[DailyWeather]:
    """A station's complete local days in [start, end), oldest first: temperature and humidity extremes, mean wind,
    solar energy and pressure from hourly medians (a stray reading moves no median), rain summed over reports.
    A day lacking humidity, wind or radiation keeps them None, and the balance uses Hargreaves for it."""
    hourly: dict[Quantity, dict[date, dict[datetime, float]]] = {}
    for quantity in _STATION_QUANTITIES:
        if quantity is Quantity.RAIN_MM:
            continue
        hourly[quantity] = _hourly_medians(series.query(station, quantity, start, end))
    rain: dict[date, float] = defaultdict(float)
    for point in series.query(station, Quantity.RAIN_MM, start, end):
        rain[_local_day(point.time)] += max(point.value, 0.0)

    days: list[DailyWeather] = []
    for local_day, temperatures in sorted(hourly[Quantity.AIR_TEMPERATURE_C].items()):
        if len(temperatures) < MIN_STATION_HOURS:
            continue
        # Each hour's median held to the physical range: a faulty sensor must not make Penman–Monteith refuse the day.
        humidity = [min(max(v, 0.0), 100.0) for v in hourly[Quantity.HUMIDITY_PCT].get(local_day, {}).values()]
        wind = [min(max(v, 0.0), 60.0) for v in hourly[Quantity.WIND_SPEED_MS].get(local_day, {}).values()]
        solar = [max(v, 0.0) for v in hourly[Quantity.SOLAR_RADIATION_W_M2].get(local_day, {}).values()]
        pressure = [v for v in hourly[Quantity.PRESSURE_HPA].get(local_day, {}).values() if 500.0 <= v <= 1_100.0]
        full = len(temperatures)
        try:
            days.append(
                DailyWeather(
                    day=local_day,
                    temperature_max_c=max(temperatures.values()),
                    temperature_min_c=min(temperatures.values()),
                    rain_mm=min(rain.get(local_day, 0.0), 500.0),
                    humidity_max_pct=max(humidity) if len(humidity) >= full else None,
                    humidity_min_pct=min(humidity) if len(humidity) >= full else None,
                    wind_ms=statistics.fmean(wind) if len(wind) >= full else None,
                    wind_height_m=STATION_WIND_HEIGHT_M,
                    # Mean irradiance (W/m²) over the day's hours times a day's seconds: MJ/m² per day.
                    solar_radiation_mj=min(statistics.fmean(solar) * 0.0864, 45.0) if len(solar) >= full else None,
                    pressure_kpa=statistics.median(pressure) / 10.0 if pressure else None,
                )
            )
        except WaterInputError as error:
            logger.warning("weather day skipped station=%s day=%s: %s", station, local_day, error)
    return days


def soil_observations(series: SeriesStore, asset: str, start: datetime, end: datetime) -> list[SoilObservation]:
    """One observation per local day from a site's soil sensor: the median of the day's last three readings
    (the state at the day's end, which the balance compares with; one stray reading does not count). Tension
    wins over water content where a site has both."""
    return _soil_days(asset, {q: series.query_many([asset], q, start, end).get(asset) for q in _SOIL_QUANTITIES})


def _soil_days(asset: str, series: Mapping[Quantity, SeriesArrays | None]) -> list[SoilObservation]:
    by_day: dict[date, SoilObservation] = {}
    for quantity in _SOIL_QUANTITIES:  # tension last: it wins where a site has both
        readings: dict[date, list[float]] = defaultdict(list)
        arrays = series.get(quantity)
        for point in arrays.points() if arrays is not None else ():
            readings[_local_day(point.time)].append(point.value)
        for local_day, values in readings.items():
            value = statistics.median(values[-3:])
            try:
                if quantity is Quantity.SOIL_VWC:
                    by_day[local_day] = SoilObservation(local_day, vwc=min(max(value, 0.0), 0.7))
                else:
                    by_day[local_day] = SoilObservation(local_day, tension_kpa=min(max(value, 0.0), 10_000.0))
            except WaterInputError as error:
                logger.warning("soil day skipped asset=%s day=%s: %s", asset, local_day, error)
    return [by_day[local_day] for local_day in sorted(by_day)]


def _hourly_medians(points: Sequence[SeriesPoint]) -> dict[date, dict[datetime, float]]:
    by_hour: dict[datetime, list[float]] = defaultdict(list)
    for point in points:
        by_hour[point.time.replace(minute=0, second=0, microsecond=0)].append(point.value)
    by_day: dict[date, dict[datetime, float]] = defaultdict(dict)
    for hour, values in by_hour.items():
        by_day[_local_day(hour)][hour] = statistics.median(values)
    return by_day


def _local_day(moment: datetime) -> date:
    return moment.astimezone(LOCAL_ZONE).date()
