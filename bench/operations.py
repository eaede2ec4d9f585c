"""Eight summer weeks of the six towns run twice: Flurfunk's daily plans against the fixed rounds towns drive today.

Run: `.venv/bin/python bench/operations.py` (two to four minutes on the shared 2-core VM). The ground truth is the
calibrated simulation (edge/sim physics and world; README "How the simulation is calibrated"): bins fill by site,
weekday, hour and events; soil dries by the root-zone physics under the region's weather with a three-week hot dry
spell. Both runs see the same weather, the same deposits and the same sensor noise, and both drive one truck per
waste type; only the crews' work differs. The planner gets what a real deployment has: hourly ultrasonic readings
(noisy, stray echoes), daily soil-moisture readings from a third of the young trees, the weather stations' days, a
three-day forecast, the towns' fête calendar (villages and days, not the deposits) and the site register (each
tree's planting year, soil, sun or shade: its year's nominal root zone and crown, not the tree's own spread around
them).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.scheduler.calendar import MarketDay, PlanningCalendar, TownCalendar
from cloud.scheduler.fill import BinHistory
from cloud.scheduler.fleet import by_waste_type, waste_type_of
from cloud.scheduler.planning import PlanSettings, plan_day
from cloud.scheduler.policy import MEASURED_POLICY, PlanningPolicy, WateringPolicy
from cloud.scheduler.routing import build_route
from cloud.scheduler.water import (
    CROP_FACTOR_PER_CROWN_M2,
    SOIL_CLASSES,
    DailyWeather,
    SoilObservation,
    TownWeather,
    WateringInput,
    WateringSite,
    young_tree_root_zone,
    young_tree_site,
)
from edge.sim import physics
from edge.sim.physics import STEP_S, RootZone
from edge.sim.world import WASTE_TYPES, FillEvent, World, bin_usage, build_world, fill_events
from flurfunk.contracts import Asset, AssetKind, TaskKind

SEED = 7
SCALE = 4.2  # 1,512 bins, 504 street trees, 101 green spaces
START = date(2026, 6, 29)  # a Monday; eight weeks to 23 August
WARMUP_DAYS = 21  # fixed rounds before the start give the planner its first three weeks of history
DAYS = 56
DRY_SPELL = (14, 35)  # days after START: three weeks without rain, 2.5 K warmer
SPELL_LAG_DAYS = 7  # the soil lags the weather: the week after the spell still counts as its weeks
HISTORY_DAYS = 21
STEPS_PER_DAY = 86400 // STEP_S
DAY_START_UTC_H = 4  # 06:00 CEST: the day's work starts, plans are made
WORK_STEP = 4 * 3600 // STEP_S  # crews empty and water at 10:00 CEST
CEST_H = 2
TRUCK_LOOSE_L = 40_000  # a 20 m³ rear loader compacts about 2:1
TANKER_L = 5_000
FIXED_WATER_L = 100.0
SENSED_SHARE = 0.33
WIND_SENSOR_HEIGHT_M = 3.0
YOUNG_YEARS = 5
STRESS_KPA = 80.0

_SOIL_SHARES = {"sandy_loam": 0.3, "loam": 0.5, "silt_loam": 0.2}


@dataclass
class Tally:
    km: float = 0.0
    collection_km: float = 0.0
    extra_run_km: float = 0.0  # collection off the regular round days
    watering_km: float = 0.0
    trips: int = 0
    overflow_bin_days: int = 0
    fill_at_emptying: list[float] = field(default_factory=list)
    emptyings: int = 0
    water_l: float = 0.0
    stress_days: int = 0
    stress_days_dry_spell: int = 0
    stress_days_old: int = 0
    stress_days_by_age: np.ndarray = field(default_factory=lambda: np.zeros(YOUNG_YEARS + 1, dtype=int))
    water_l_by_age: np.ndarray = field(default_factory=lambda: np.zeros(YOUNG_YEARS + 1))
    plan_s: list[float] = field(default_factory=list)


class Weather:
    """The region's weather for the whole run, 10-minute steps per town, and its daily summaries."""

    def __init__(
        self, world: World, first_day: date, days: int, seed: int, dry_spell: tuple[int, int] | None = DRY_SPELL
    ) -> None:
        rng = np.random.default_rng([seed, 0x3EA7])
        towns = world.towns
        stations = {a.municipality: a for a in world.assets if a.kind is AssetKind.WEATHER_STATION}
        self.latitude = np.array([stations[t.municipality].latitude for t in towns])
        longitude = np.array([stations[t.municipality].longitude for t in towns])
        self.altitude = np.array([t.altitude_m for t in towns], dtype=float)
        steps = days * STEPS_PER_DAY
        origin = datetime.combine(first_day, datetime.min.time(), UTC) + timedelta(hours=DAY_START_UTC_H)
        self.origin = origin
        n = len(towns)
        self.temperature = np.empty((steps, n))
        self.humidity = np.empty((steps, n))
        self.pressure = np.empty((steps, n))
        self.rain = np.empty((steps, n))
        self.wind = np.empty((steps, n))
        self.solar = np.empty((steps, n))
        state = physics.initial_weather(n, rng.standard_normal(physics.WEATHER_SHOCKS_PER_STEP + 2 * n))
        spell = dry_spell or (0, 0)
        dry_from = (START - first_day).days + spell[0]
        dry_to = (START - first_day).days + spell[1]
        for k in range(steps):
            state = physics.advance_weather(state, rng.standard_normal(physics.WEATHER_SHOCKS_PER_STEP + 2 * n))
            moment = origin + timedelta(seconds=(k + 1) * STEP_S)
            observed = physics.observe_weather(state, moment, self.latitude, longitude, self.altitude)
            if dry_from <= k // STEPS_PER_DAY < dry_to:
                observed = replace(physics.without_rain(observed), air_temperature_c=observed.air_temperature_c + 2.5)
            self.temperature[k] = observed.air_temperature_c
            self.humidity[k] = observed.humidity_pct
            self.pressure[k] = observed.pressure_hpa
            self.rain[k] = observed.rain_mm
            self.wind[k] = observed.wind_speed_ms
            self.solar[k] = observed.solar_radiation_w_m2
        self.daily = [[self._summary(first_day, d, t) for d in range(days)] for t in range(n)]

    def _summary(self, first_day: date, day_index: int, town: int) -> DailyWeather:
        # The station's local day 06:00-06:00 stands in for the calendar day; close enough for a daily balance.
        rows = slice(day_index * STEPS_PER_DAY, (day_index + 1) * STEPS_PER_DAY)
        return DailyWeather(
            day=first_day + timedelta(days=day_index),
            temperature_max_c=float(self.temperature[rows, town].max()),
            temperature_min_c=float(self.temperature[rows, town].min()),
            rain_mm=float(self.rain[rows, town].sum()),
            humidity_max_pct=float(min(self.humidity[rows, town].max(), 100.0)),
            humidity_min_pct=float(self.humidity[rows, town].min()),
            wind_ms=float(self.wind[rows, town].mean()),
            wind_height_m=WIND_SENSOR_HEIGHT_M,
            solar_radiation_mj=float(self.solar[rows, town].sum() * STEP_S / 1e6),
            pressure_kpa=float(self.pressure[rows, town].mean() / 10.0),
        )


@dataclass
class Sites:
    """Trees and green spaces: the truth (root zone per site) and what the planner knows (nominal site data)."""

    assets: list[Asset]
    town: np.ndarray
    zone: RootZone
    soil: list[str]
    young: np.ndarray
    is_tree: np.ndarray
    sensed: np.ndarray
    sensor_offset: np.ndarray
    shade: np.ndarray
    age: np.ndarray  # years since planting (0 in the first summer), capped at YOUNG_YEARS
    planner_sites: list[WateringSite]


def make_sites(world: World, seed: int) -> Sites:
    rng = np.random.default_rng([seed, 0x7EE5])
    assets = [a for a in world.assets if a.kind in (AssetKind.TREE, AssetKind.GREEN_SPACE)]
    n = len(assets)
    town_index = {t.municipality: i for i, t in enumerate(world.towns)}
    is_tree = np.array([a.kind is AssetKind.TREE for a in assets])
    young = is_tree & np.array([(a.planting_year or 1900) >= START.year - YOUNG_YEARS for a in assets])
    soil_names = list(_SOIL_SHARES)
    soils = [soil_names[int(k)] for k in rng.choice(3, size=n, p=list(_SOIL_SHARES.values()))]
    shade = rng.random(n) < 0.3
    # A young tree's root zone and crown grow with the years since planting (`young_tree_root_zone`: root ball and
    # backfill in the first summer, the pit substrate by year 5), each tree with its own spread around the nominal
    # values: root depth and rooted radius ±15 %, crown diameter ±20 %. Old trees root far beyond their pit.
    # README "How the simulation is calibrated" gives the figures and their sources.
    age = np.array([min(max(START.year - (a.planting_year or 1900), 0), YOUNG_YEARS) for a in assets])
    nominal = [young_tree_root_zone(int(years)) for years in age]
    depth_spread = rng.uniform(0.85, 1.15, n)
    radius_spread = rng.uniform(0.85, 1.15, n)
    crown_spread = rng.uniform(0.8, 1.2, n)
    young_depth = np.array([z.root_depth_m for z in nominal]) * depth_spread
    young_area = np.array([z.area_m2 for z in nominal]) * radius_spread**2
    young_crown = np.array([z.crown_m2 for z in nominal]) * crown_spread**2
    young_crop = CROP_FACTOR_PER_CROWN_M2 * young_crown / young_area
    depth = np.where(young, young_depth, np.where(is_tree, rng.uniform(0.8, 1.2, n), 0.15))
    area = np.where(young, young_area, np.where(is_tree, rng.uniform(8.0, 15.0, n), 60.0))
    # Old trees use 0.5-0.7 per m² of their rooted area (WUCOLS, moderate water).
    crop = np.where(young, young_crop, np.where(is_tree, rng.uniform(0.5, 0.7, n), 0.8))
    crop = crop * np.where(shade, 0.7, 1.0)
    field_capacity = np.array([SOIL_CLASSES[s].field_capacity for s in soils])
    wilting = np.array([SOIL_CLASSES[s].wilting_point for s in soils])
    saturation = np.array([SOIL_CLASSES[s].saturated_vwc for s in soils])
    zone = RootZone(
        field_capacity=field_capacity,
        wilting_point=wilting,
        saturation=saturation,
        depth_mm=depth * 1000.0,
        crop_factor=crop,
        depletion_fraction=np.full(n, 0.5),
        rain_catch=np.where(is_tree, 1.3, 1.0),
        area_m2=area,
    )
    sensed = is_tree & (rng.random(n) < SENSED_SHARE)
    # The planner knows each tree's planting year, soil and exposure (the site register), not its roots: the young
    # trees' nominal root zone by age, a nominal pit for the old ones.
    planner_sites = [
        young_tree_site(
            a.id,
            a.municipality,
            soils[k],
            a.planting_year or START.year,
            START.year,
            exposure="shade" if shade[k] else "sun",
            rain_catch=1.3,
        )
        if young[k]
        else WateringSite(
            asset=a.id,
            municipality=a.municipality,
            soil=soils[k],
            exposure="shade" if shade[k] else "sun",
            root_depth_m=1.0,
            area_m2=10.0,
            crop_factor=0.6,
            planting_year=a.planting_year,
            rain_catch=1.3,
        )
        for k, a in enumerate(assets)
        if is_tree[k]
    ]
    return Sites(
        assets=assets,
        town=np.array([town_index[a.municipality] for a in assets]),
        zone=zone,
        soil=soils,
        young=young,
        is_tree=is_tree,
        sensed=sensed,
        sensor_offset=rng.normal(0.0, 0.008, n),
        shade=shade,
        age=age,
        planner_sites=planner_sites,
    )


def step_soil(vwc: np.ndarray, zone: RootZone, weather: Weather, k: int, town: np.ndarray) -> np.ndarray:
    """Root-zone water content after weather step `k` (evapotranspiration, rain, drainage)."""
    et0 = physics.reference_et_mm(weather.temperature[k, town], weather.solar[k, town], STEP_S)
    return physics.step_root_zone(vwc, zone, et0, weather.rain[k, town], STEP_S)


def tension_kpa(soils: list[str], vwc: np.ndarray) -> np.ndarray:
    return np.array([float(SOIL_CLASSES[s].tension_kpa(v)) for s, v in zip(soils, vwc, strict=True)])


def initial_vwc(zone: RootZone) -> np.ndarray:
    """Early summer: 30 % of the available water used since the spring rain."""
    return zone.field_capacity - 0.3 * (zone.field_capacity - zone.wilting_point)


def rota_stress(weather: Weather, sites: Sites, first_day: date, days: int, town_names: list[str]) -> np.ndarray:
    """Share of young trees above 80 kPa per day under the fixed rota alone (trees only, no bins): the check that
    the rota works in an average summer and fails in a dry spell."""
    zone = sites.zone
    vwc = initial_vwc(zone)
    shares = np.empty(days)
    for day_index in range(days):
        litres = fixed_rota_litres(first_day + timedelta(days=day_index), sites, town_names)
        total = np.zeros_like(vwc)
        for step in range(STEPS_PER_DAY):
            if step == WORK_STEP:
                vwc = physics.add_irrigation(vwc, zone, litres)
            vwc = step_soil(vwc, zone, weather, day_index * STEPS_PER_DAY + step, sites.town)
            total += vwc
        stressed = tension_kpa(sites.soil, total / STEPS_PER_DAY) > STRESS_KPA
        shares[day_index] = (stressed & sites.young).sum() / max(int(sites.young.sum()), 1)
    return shares


def fixed_rota_litres(day: date, sites: Sites, town_names: list[str]) -> np.ndarray:
    """What the fixed rota pours today: 100 L per young tree, each town on its weekday, May to September."""
    litres = np.zeros(len(sites.assets))
    if day.month in range(5, 10):
        for i in range(len(town_names)):
            if day.weekday() == i % 5:
                litres[(sites.town == i) & sites.young] = FIXED_WATER_L
    return litres


class District:
    """The ground truth of one run: bin fills and root-zone water, advanced day by day with the crews' work."""

    def __init__(self, world: World, weather: Weather, sites: Sites, seed: int) -> None:
        self.world = world
        self.weather = weather
        self.sites = sites
        self.bins = [a for a in world.assets if a.kind is AssetKind.BIN]
        usage = bin_usage(world)
        self.rate = usage.daily_rate
        self.site_weekday = np.array([physics.SITE_WEEKDAY_FACTOR[s] for s in usage.sites])  # bins × 7
        self.types = np.array([WASTE_TYPES.index(waste_type_of(b)) for b in self.bins])
        self.capacity = np.array([b.capacity_l or 240 for b in self.bins], dtype=float)
        town_index = {t.municipality: i for i, t in enumerate(world.towns)}
        self.bin_town = np.array([town_index[b.municipality] for b in self.bins])
        village_of = [(b.municipality, b.village) for b in self.bins]
        self.events = defaultdict(list)  # day index -> bins with an event
        self.fetes = fill_events(world, WARMUP_DAYS + DAYS)
        for event in self.fetes:
            members = [i for i, v in enumerate(village_of) if v == (event.municipality, event.village)]
            for offset in range(event.days):
                self.events[event.first_day + offset].extend(members)
        rng = np.random.default_rng([seed, 0xD15C])
        self.fill = rng.uniform(0.0, 0.5, len(self.bins))
        self.vwc = initial_vwc(sites.zone)
        self.rng = np.random.default_rng([seed, 0x51AE])
        hours = (WARMUP_DAYS + DAYS) * 24
        self.readings = np.zeros((len(self.bins), hours))
        self.reading_times = np.array(
            [(weather.origin + timedelta(hours=h + 1)).timestamp() for h in range(hours)], dtype=float
        )
        self.soil_daily: list[np.ndarray] = []
        self.tension_daily: list[np.ndarray] = []

    def copy(self) -> District:
        twin = object.__new__(District)
        twin.__dict__ = dict(self.__dict__)
        twin.fill = self.fill.copy()
        twin.vwc = self.vwc.copy()
        twin.readings = self.readings.copy()
        twin.rng = np.random.default_rng()
        twin.rng.bit_generator.state = self.rng.bit_generator.state
        twin.soil_daily = list(self.soil_daily)
        twin.tension_daily = list(self.tension_daily)
        return twin

    def run_day(
        self, day_index: int, emptied: np.ndarray, litres: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One day (06:00-06:00) with the crews' work at 10:00: fills at emptying, overflowed bins, mean tension."""
        weather = self.weather
        n_bins = len(self.bins)
        overflowed = self.fill >= 1.0
        fills_at_emptying = np.empty(0)
        vwc_sum = np.zeros_like(self.vwc)
        event_factor = np.ones(n_bins)
        event_factor[self.events.get(day_index, [])] = physics.EVENT_FILL_FACTOR
        zone = self.sites.zone
        first = day_index * STEPS_PER_DAY
        for step in range(STEPS_PER_DAY):
            k = first + step
            moment = weather.origin + timedelta(seconds=k * STEP_S)
            local_hour = (moment.hour + CEST_H) % 24
            weekday = (moment + timedelta(hours=CEST_H)).weekday()
            if step == WORK_STEP:
                fills_at_emptying = self.fill[emptied].copy()
                self.fill[emptied] = 0.01
                self.vwc = physics.add_irrigation(self.vwc, zone, litres)
            burst = self.rng.gamma(0.5, 2.0, size=n_bins)
            self.fill = np.minimum(
                self.fill
                + physics.site_fill_increment(
                    self.rate * event_factor,
                    self.site_weekday[:, weekday],
                    self.types,
                    local_hour,
                    physics.day_of_year(moment),
                    burst,
                    STEP_S,
                ),
                physics.MAX_FILL,
            )
            overflowed |= self.fill >= 1.0
            self.vwc = step_soil(self.vwc, zone, weather, k, self.sites.town)
            vwc_sum += self.vwc
            if (step + 1) % (3600 // STEP_S) == 0:
                hour = (k + 1) // (3600 // STEP_S) - 1
                noise = self.rng.normal(0.0, 0.01, n_bins)
                stray = self.rng.random(n_bins) < 0.004
                echo = self.rng.uniform(0.0, 1.3, n_bins)
                self.readings[:, hour] = np.where(stray, echo, np.minimum(self.fill, 1.15) + noise)
        vwc_mean = vwc_sum / STEPS_PER_DAY
        tension = tension_kpa(self.sites.soil, vwc_mean)
        self.soil_daily.append(vwc_mean)
        self.tension_daily.append(tension)
        return fills_at_emptying, overflowed, tension

    def history(self, day_index: int) -> dict[str, BinHistory]:
        end = day_index * 24
        start = max(0, end - HISTORY_DAYS * 24)
        times = self.reading_times[start:end]
        return {b.id: BinHistory(b.id, times, self.readings[i, start:end]) for i, b in enumerate(self.bins)}


def fixed_rounds(world: World, bins: list[Asset]) -> tuple[dict[str, int], dict[tuple[str, int], float]]:
    """Each village's weekday (Mon-Fri, balanced by bins per town) and the km of each town's weekday rounds, one
    per waste type (a truck carries one type)."""
    weekday_of_village: dict[tuple[str, str], int] = {}
    for town in world.towns:
        counts: dict[str, int] = defaultdict(int)
        for b in bins:
            if b.municipality == town.municipality:
                counts[b.village or ""] += 1
        load = [0] * 5
        for village, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            weekday = int(np.argmin(load))
            weekday_of_village[(town.municipality, village)] = weekday
            load[weekday] += count
    weekday_of_bin = {b.id: weekday_of_village[(b.municipality, b.village or "")] for b in bins}
    km: dict[tuple[str, int], float] = {}
    for town in world.towns:
        for weekday in range(5):
            stops = [b for b in bins if b.municipality == town.municipality and weekday_of_bin[b.id] == weekday]
            km[(town.municipality, weekday)] = sum(
                build_route(town.depot, group, 1.3)[1] for group in by_waste_type(stops).values()
            )
    return weekday_of_bin, km


def fete_calendar(fetes: list[FillEvent], first_day: date, fill_jump: float) -> PlanningCalendar:
    """The towns' event calendars as the Bauhof knows them: each fête's village and days (its deposits are not
    known, only that a fête day adds about `fill_jump` to a bin there)."""
    markets: dict[str, list[MarketDay]] = defaultdict(list)
    for number, event in enumerate(fetes):
        dates = frozenset(first_day + timedelta(days=event.first_day + k) for k in range(event.days))
        markets[event.municipality].append(
            MarketDay(
                name=f"fete-{number}",
                start=clock(14, 0),
                end=clock(23, 0),
                fill_jump=fill_jump,
                dates=dates,
                villages=frozenset({event.village}),
            )
        )
    return PlanningCalendar(
        towns={town: TownCalendar(town, markets=tuple(entries)) for town, entries in markets.items()}
    )


def forecast_for(weather: Weather, town: int, day_index: int, first_day: date, rng: np.random.Generator):
    """A three-day forecast: the coming truth with rain off by a factor of ~1.6 either way, and one rain in
    five missed or invented."""
    forecast = []
    for ahead in range(3):
        index = day_index + ahead
        if index >= len(weather.daily[town]):
            break
        truth = weather.daily[town][index]
        rain = truth.rain_mm * float(rng.lognormal(0.0, 0.5))
        if rng.random() < 0.2:
            rain = 0.0 if rain > 0 else float(rng.exponential(4.0))
        forecast.append(replace(truth, rain_mm=min(rain, 400.0)))
    return forecast


def build_parser() -> argparse.ArgumentParser:
    """The bench's flags; their defaults are the cloud's policy (cloud.scheduler.policy), so that what is measured
    is what the towns get. A flag changes the policy for this run only."""
    measured, measured_water = MEASURED_POLICY.settings, MEASURED_POLICY.watering
    measured_rules = measured_water.rules
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--seed", type=int, default=SEED, help="another district: towns, weather, trees, deposits")
    parser.add_argument("--scale", type=float, default=SCALE)
    parser.add_argument(
        "--collection-days",
        default=",".join(map(str, measured.collection_weekdays)),
        help="weekdays of the regular round (others: extra runs only)",
    )
    parser.add_argument(
        "--watering-days",
        default=",".join(map(str, measured_water.watering_weekdays)),
        help="weekdays the planner may send the water tanker",
    )
    parser.add_argument(
        "--lookahead",
        type=float,
        default=measured.prize_lookahead_days,
        help="days ahead an optional bin's prize looks",
    )
    parser.add_argument("--must-fill", type=float, default=measured.forecast_must_fill)
    parser.add_argument("--emergency-fill", type=float, default=measured.emergency_fill)
    parser.add_argument("--emergency-prize-km", type=float, default=measured.emergency_prize_km)
    parser.add_argument("--trigger-kpa", type=float, default=measured_rules.trigger_tension_kpa)
    parser.add_argument(
        "--headroom",
        type=float,
        default=measured_rules.headroom_share_of_raw,
        help="refill to this share of RAW below capacity",
    )
    top_up = measured_rules.top_up_share_of_trigger
    parser.add_argument(
        "--top-up",
        type=float,
        default=-1.0 if top_up is None else top_up,
        help="water only to stay below this share of the trigger (<0: refill)",
    )
    parser.add_argument(
        "--bridge-days",
        type=int,
        default=measured_rules.bridge_days or 0,
        help="days a top-up must last (0: to the next run)",
    )
    parser.add_argument(
        "--ride-along-days",
        type=int,
        default=measured_rules.ride_along_days or 0,
        help="where the tanker goes, sites due within this ride along",
    )
    parser.add_argument(
        "--drain-share",
        type=float,
        default=measured_rules.drain_share,
        help="share of the water above field capacity for small stores",
    )
    parser.add_argument(
        "--raw-first",
        action=argparse.BooleanOptionalAction,
        default=not measured_rules.tension_trigger_only,
        help="trigger at RAW where it comes before the tension",
    )
    parser.add_argument(
        "--min-litres", type=float, default=measured_rules.min_litres, help="smaller top-ups wait for the next run"
    )
    parser.add_argument(
        "--fete-jump", type=float, default=0.15, help="fill a fête day adds in the planner's calendar (0: none)"
    )
    parser.add_argument("--may-fill", type=float, default=measured.forecast_may_fill)
    parser.add_argument("--prize-km", type=float, default=measured.max_prize_km)
    return parser


def policy_from(args: argparse.Namespace) -> PlanningPolicy:
    """The planning policy the flags describe (without flags: `MEASURED_POLICY`)."""
    watering_days = tuple(int(d) for d in args.watering_days.split(","))
    settings = replace(
        MEASURED_POLICY.settings,
        collection_weekdays=tuple(int(d) for d in args.collection_days.split(",")),
        watering_weekdays=watering_days,
        prize_lookahead_days=args.lookahead,
        forecast_must_fill=args.must_fill,
        forecast_may_fill=args.may_fill,
        max_prize_km=args.prize_km,
        emergency_fill=args.emergency_fill,
        emergency_prize_km=args.emergency_prize_km,
    )
    rules = replace(
        MEASURED_POLICY.watering.rules,
        trigger_tension_kpa=args.trigger_kpa,
        tension_trigger_only=not args.raw_first,
        headroom_share_of_raw=args.headroom,
        top_up_share_of_trigger=None if args.top_up < 0 else args.top_up,
        min_litres=args.min_litres,
        bridge_days=args.bridge_days or None,
        ride_along_days=args.ride_along_days or None,
        drain_share=args.drain_share,
    )
    return PlanningPolicy(settings, replace(MEASURED_POLICY.watering, watering_weekdays=watering_days, rules=rules))


def main() -> None:
    args = build_parser().parse_args()
    policy = policy_from(args)
    settings, watering_policy = policy.settings, policy.watering
    collection_days = settings.collection_weekdays
    days = args.days
    seed = args.seed
    world = build_world(seed, args.scale)
    first_day = START - timedelta(days=WARMUP_DAYS)
    began = time.perf_counter()
    weather = Weather(world, first_day, WARMUP_DAYS + days + 3, seed)
    sites = make_sites(world, seed)
    district = District(world, weather, sites, seed)
    bins = district.bins
    n_bins = len(bins)
    calendar = fete_calendar(district.fetes, first_day, args.fete_jump) if args.fete_jump > 0 else None
    bin_index = {b.id: i for i, b in enumerate(bins)}
    site_index = {a.id: i for i, a in enumerate(sites.assets)}
    weekday_of_bin, fixed_km = fixed_rounds(world, bins)
    fixed_weekday = np.array([weekday_of_bin[b.id] for b in bins])
    young_trees = [a for k, a in enumerate(sites.assets) if sites.young[k]]
    water_round_km = {
        t.municipality: build_route(t.depot, [a for a in young_trees if a.municipality == t.municipality], 1.3)[1]
        for t in world.towns
    }
    town_names = [t.municipality for t in world.towns]
    print(
        f"world: {n_bins} bins, {int(sites.is_tree.sum())} trees ({int(sites.young.sum())} young), "
        f"{int((~sites.is_tree).sum())} green spaces, {len(town_names)} towns; weather and set-up "
        f"{time.perf_counter() - began:.1f} s",
        flush=True,
    )

    def fixed_day(state: District, day_index: int, tally: Tally | None) -> None:
        day = first_day + timedelta(days=day_index)
        weekday = day.weekday()
        emptied = np.flatnonzero(fixed_weekday == weekday) if weekday < 5 else np.empty(0, dtype=int)
        litres = fixed_rota_litres(day, sites, town_names)
        watering_towns = [t for i, t in enumerate(town_names) if weekday == i % 5 and day.month in range(5, 10)]
        fills, overflowed, tension = state.run_day(day_index, emptied, litres)
        if tally is None:
            return
        _count(tally, fills, overflowed, tension, litres, day_index)
        if weekday < 5:
            for town in town_names:
                members = emptied[district.bin_town[emptied] == town_names.index(town)]
                if members.size:
                    tally.collection_km += fixed_km[(town, weekday)]
                for waste_type in range(len(WASTE_TYPES)):
                    of_type = members[district.types[members] == waste_type]
                    if of_type.size:
                        load = float((state_fill_volume(fills, of_type, emptied)).sum())
                        tally.trips += max(1, math.ceil(load / TRUCK_LOOSE_L))
        for town in watering_towns:
            tally.watering_km += water_round_km[town]
            town_litres = float(litres[sites.town == town_names.index(town)].sum())
            tally.trips += max(1, math.ceil(town_litres / TANKER_L))

    def state_fill_volume(fills: np.ndarray, members: np.ndarray, emptied: np.ndarray) -> np.ndarray:
        position = {int(b): k for k, b in enumerate(emptied)}
        return np.array([fills[position[int(b)]] * district.capacity[int(b)] for b in members])

    def _count(
        tally: Tally, fills: np.ndarray, overflowed: np.ndarray, tension: np.ndarray, litres: np.ndarray, d: int
    ) -> None:
        tally.overflow_bin_days += int(overflowed.sum())
        tally.fill_at_emptying.extend(fills.tolist())
        tally.emptyings += fills.size
        tally.water_l += float(litres.sum())
        stressed = tension > STRESS_KPA
        tally.stress_days += int((stressed & sites.young).sum())
        tally.stress_days_old += int((stressed & sites.is_tree & ~sites.young).sum())
        young_age = sites.age[sites.young]
        tally.stress_days_by_age += np.bincount(young_age[stressed[sites.young]], minlength=YOUNG_YEARS + 1)
        tally.water_l_by_age += np.bincount(young_age, weights=litres[sites.young], minlength=YOUNG_YEARS + 1)
        if DRY_SPELL[0] <= d - WARMUP_DAYS < DRY_SPELL[1] + SPELL_LAG_DAYS:
            tally.stress_days_dry_spell += int((stressed & sites.young).sum())

    for day_index in range(WARMUP_DAYS):
        fixed_day(district, day_index, None)
    print(f"warm-up: {WARMUP_DAYS} days of fixed rounds, {time.perf_counter() - began:.1f} s", flush=True)

    fixed_state = district.copy()
    fixed = Tally()
    for day_index in range(WARMUP_DAYS, WARMUP_DAYS + days):
        fixed_day(fixed_state, day_index, fixed)
    fixed.km = fixed.collection_km + fixed.watering_km
    print(f"fixed rounds: {days} days, {time.perf_counter() - began:.1f} s", flush=True)

    flur_state = district.copy()
    flur = Tally()
    forecast_rng = np.random.default_rng([seed, 0xF0CA])
    watered: dict[str, dict[date, float]] = defaultdict(dict)
    young_sites = [s for s in sites.planner_sites if sites.young[site_index[s.asset]]]
    planned_assets = [*bins, *young_trees]
    for day_index in range(WARMUP_DAYS, WARMUP_DAYS + days):
        day = first_day + timedelta(days=day_index)
        emptied = np.empty(0, dtype=int)
        litres = np.zeros(len(sites.assets))
        plan = None
        if day.weekday() < 5:
            watering = None
            if watering_policy.is_watering_day(day):
                watering = _watering_input(
                    weather, sites, young_sites, flur_state, day_index, first_day, watered, forecast_rng, town_names,
                    watering_policy, watering_policy.horizon_days(day),
                )  # fmt: skip
            started = time.perf_counter()
            plan = plan_day(
                day, world.depots, planned_assets, {}, settings, bin_history=flur_state.history(day_index),
                watering=watering, calendar=calendar,
            )  # fmt: skip
            flur.plan_s.append(time.perf_counter() - started)
            collect = sorted(bin_index[t.asset] for t in plan.tasks if t.kind is TaskKind.COLLECT)
            emptied = np.array(collect, dtype=int)
            for task in plan.tasks:
                if task.kind is TaskKind.WATER:
                    amount = float(task.evidence["litres"])
                    litres[site_index[task.asset]] = amount
                    watered[task.asset][day] = amount
            for route in plan.routes:
                if route.kind is TaskKind.COLLECT:
                    flur.collection_km += route.km
                    if day.weekday() not in collection_days:
                        flur.extra_run_km += route.km
                else:
                    flur.watering_km += route.km
        fills, overflowed, tension = flur_state.run_day(day_index, emptied, litres)
        _count(flur, fills, overflowed, tension, litres, day_index)
        if plan is not None:
            for route in plan.routes:
                if route.kind is TaskKind.COLLECT:
                    members = np.array([bin_index[s] for s in route.stops], dtype=int)
                    load = float(state_fill_volume(fills, members, emptied).sum())
                    flur.trips += max(1, math.ceil(load / TRUCK_LOOSE_L))
                else:
                    flur.trips += max(1, math.ceil(sum(litres[site_index[s]] for s in route.stops) / TANKER_L))
        if (day_index - WARMUP_DAYS) % 7 == 6:
            print(
                f"  week {(day_index - WARMUP_DAYS) // 7 + 1}: {flur.collection_km + flur.watering_km:.0f} km, "
                f"{time.perf_counter() - began:.0f} s",
                flush=True,
            )
    flur.km = flur.collection_km + flur.watering_km

    stop_day_s, vrp_day_s, stop_count, two_opt_km, vrp_km = _time_a_full_day(
        world, flur_state, WARMUP_DAYS + days - 1, first_day, planned_assets
    )
    print(
        f"a {stop_count:,}-stop day: nearest neighbour + 2-opt {stop_day_s:.1f} s, {two_opt_km:,.0f} km; "
        f"PyVRP (1 s per route: town and waste type) {vrp_day_s:.1f} s, {vrp_km:,.0f} km"
    )
    # Calibration check on the trees alone: the same rota in the same summer without the dry spell.
    average = Weather(world, first_day, WARMUP_DAYS + days, seed, dry_spell=None)
    calibration = {
        "average_summer": rota_stress(average, sites, first_day, WARMUP_DAYS + days, town_names)[WARMUP_DAYS:],
        "dry_spell_summer": rota_stress(weather, sites, first_day, WARMUP_DAYS + days, town_names)[WARMUP_DAYS:],
    }
    spell = slice(DRY_SPELL[0], min(DRY_SPELL[1] + SPELL_LAG_DAYS, days))
    for name, shares in calibration.items():
        weekly = shares[: days // 7 * 7].reshape(-1, 7).mean(axis=1)
        print(
            f"fixed rota alone, {name.replace('_', ' ')}: young trees above 80 kPa on {shares.mean():.0%} of "
            f"tree-days, {shares[spell].mean():.0%} in the spell's weeks; by week "
            + " ".join(f"{w:.0%}" for w in weekly)
        )
    young_count = int(sites.young.sum())
    spell_days = spell.stop - spell.start
    for name, tally in (("fixed rounds", fixed), ("Flurfunk", flur)):
        normal = (tally.stress_days - tally.stress_days_dry_spell) / max(young_count * (days - spell_days), 1)
        dry = tally.stress_days_dry_spell / max(young_count * spell_days, 1)
        print(
            f"{name}: young trees above 80 kPa on {normal:.0%} of tree-days in other weeks, {dry:.0%} in the dry "
            f"spell and the week after"
        )
    rota = {name: round(float(shares.mean()), 3) for name, shares in calibration.items()}
    rota["dry_spell_weeks"] = round(float(calibration["dry_spell_summer"][spell].mean()), 3)
    _report(flur, fixed, n_bins, days, (stop_day_s, vrp_day_s), stop_count, time.perf_counter() - began, rota)


def _watering_input(
    weather: Weather,
    sites: Sites,
    young_sites: list[WateringSite],
    state: District,
    day_index: int,
    first_day: date,
    watered: dict[str, dict[date, float]],
    rng: np.random.Generator,
    town_names: list[str],
    policy: WateringPolicy,
    horizon_days: int,
) -> WateringInput:
    towns = {}
    for t, name in enumerate(town_names):
        towns[name] = TownWeather(
            latitude_deg=float(weather.latitude[t]),
            elevation_m=float(weather.altitude[t]),
            measured=weather.daily[t][:day_index],
            forecast=forecast_for(weather, t, day_index, first_day, rng),
        )
    soil: dict[str, list[SoilObservation]] = {}
    index = {a.id: k for k, a in enumerate(sites.assets)}
    for site in young_sites:
        k = index[site.asset]
        if sites.sensed[k]:
            observations = []
            for d in range(max(0, day_index - 3), day_index):
                vwc = float(np.clip(state.soil_daily[d][k] + sites.sensor_offset[k], 0.0, 0.6))
                observations.append(SoilObservation(first_day + timedelta(days=d), vwc=vwc))
            soil[site.asset] = observations
    return policy.watering_input(young_sites, towns, soil=soil, watered_litres=watered, horizon_days=horizon_days)


def _time_a_full_day(
    world: World, state: District, day_index: int, first_day: date, assets: list[Asset]
) -> tuple[float, float, int, float, float]:
    """Plan a day on which every bin is due (a post-holiday Monday): the planner's time for ~1,500 stops, with
    nearest neighbour + 2-opt and with PyVRP (1 s per route: a town's waste type or its tanker), and the km of each."""
    day = first_day + timedelta(days=day_index)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    everything = PlanSettings(
        collection_weekdays=(0, 1, 2, 3, 4), forecast_must_fill=0.02, forecast_may_fill=0.01, overflow_threshold=0.9
    )
    histories = state.history(day_index)
    started = time.perf_counter()
    plan = plan_day(day, world.depots, assets, {}, everything, bin_history=histories)
    elapsed = time.perf_counter() - started
    with_vrp = replace(everything, vrp_time_limit_s=1.0)
    started = time.perf_counter()
    vrp_plan = plan_day(day, world.depots, assets, {}, with_vrp, bin_history=histories)
    vrp_elapsed = time.perf_counter() - started
    stops = sum(len(route.stops) for route in plan.routes)
    return elapsed, vrp_elapsed, stops, sum(r.km for r in plan.routes), sum(r.km for r in vrp_plan.routes)


def _report(
    flur: Tally,
    fixed: Tally,
    n_bins: int,
    days: int,
    day_s: tuple[float, float],
    stop_count: int,
    total_s: float,
    rota_stress_share: dict[str, float],
) -> None:
    stop_day_s, vrp_day_s = day_s
    bin_days = n_bins * days
    rows = [
        ("road km (collection + watering)", f"{flur.km:,.0f}", f"{fixed.km:,.0f}"),
        ("  collection km", f"{flur.collection_km:,.0f}", f"{fixed.collection_km:,.0f}"),
        ("    of which extra runs off round days", f"{flur.extra_run_km:,.0f}", "-"),
        ("  watering km", f"{flur.watering_km:,.0f}", f"{fixed.watering_km:,.0f}"),
        ("vehicle trips", f"{flur.trips:,}", f"{fixed.trips:,}"),
        ("bin emptyings", f"{flur.emptyings:,}", f"{fixed.emptyings:,}"),
        (
            "bin-days over 100 % full",
            f"{flur.overflow_bin_days:,} ({flur.overflow_bin_days / bin_days:.2%})",
            f"{fixed.overflow_bin_days:,} ({fixed.overflow_bin_days / bin_days:.2%})",
        ),
        (
            "median fill at emptying",
            f"{np.median(flur.fill_at_emptying):.0%}",
            f"{np.median(fixed.fill_at_emptying):.0%}",
        ),
        ("litres of water", f"{flur.water_l:,.0f}", f"{fixed.water_l:,.0f}"),
        ("young-tree-days above 80 kPa", f"{flur.stress_days:,}", f"{fixed.stress_days:,}"),
        (
            "  of which in the dry spell and the week after",
            f"{flur.stress_days_dry_spell:,}",
            f"{fixed.stress_days_dry_spell:,}",
        ),
        *(
            (
                f"  year {age + 1} after planting: stress days, litres",
                f"{flur.stress_days_by_age[age]:,}, {flur.water_l_by_age[age]:,.0f}",
                f"{fixed.stress_days_by_age[age]:,}, {fixed.water_l_by_age[age]:,.0f}",
            )
            for age in range(YOUNG_YEARS + 1)
        ),
        ("old-tree-days above 80 kPa (not watered)", f"{flur.stress_days_old:,}", f"{fixed.stress_days_old:,}"),
        ("time to plan one day (median)", f"{np.median(flur.plan_s):.2f} s", "-"),
        (f"time to plan a {stop_count:,}-stop day (2-opt)", f"{stop_day_s:.2f} s", "-"),
        (f"time to plan a {stop_count:,}-stop day (PyVRP)", f"{vrp_day_s:.2f} s", "-"),
    ]
    print(f"\n{days} days from {START}, {n_bins} bins; dry spell days {DRY_SPELL[0]}-{DRY_SPELL[1]}")
    print(f"{'':44}{'Flurfunk':>18}{'fixed rounds':>18}")
    for label, ours, theirs in rows:
        print(f"{label:44}{ours:>18}{theirs:>18}")
    print(f"km saved: {1 - flur.km / fixed.km:.1%}; water saved: {1 - flur.water_l / fixed.water_l:.1%}")
    print(f"bench wall time {total_s:.0f} s")
    print(
        json.dumps(
            {
                "km": round(flur.km, 1),
                "km_fixed": round(fixed.km, 1),
                "overflows": flur.overflow_bin_days,
                "overflows_fixed": fixed.overflow_bin_days,
                "median_fill_at_emptying": round(float(np.median(flur.fill_at_emptying)), 3),
                "median_fill_at_emptying_fixed": round(float(np.median(fixed.fill_at_emptying)), 3),
                "water_l": round(flur.water_l),
                "water_l_fixed": round(fixed.water_l),
                "stress_days": flur.stress_days,
                "stress_days_fixed": fixed.stress_days,
                "trips": flur.trips,
                "trips_fixed": fixed.trips,
                "plan_day_s": round(stop_day_s, 2),
                "plan_day_s_two_opt": round(stop_day_s, 2),
                "plan_day_s_pyvrp": round(vrp_day_s, 2),
                "plan_day_stops": stop_count,
                "rota_stress_share": rota_stress_share,
            }
        )
    )


if __name__ == "__main__":
    main()
