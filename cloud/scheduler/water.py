"""Tree and green-space watering by the FAO-56 daily root-zone water balance: ET0 (Penman–Monteith or
Hargreaves), effective rain, soil sensors (tension or water content) and litres per site."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

# --- reference evapotranspiration (FAO-56, chapter 3) -------------------------------------------------------------

SOLAR_CONSTANT_MJ = 0.0820  # MJ m⁻² min⁻¹
STEFAN_BOLTZMANN_MJ = 4.903e-9  # MJ K⁻⁴ m⁻² day⁻¹
ALBEDO = 0.23


class WaterInputError(ValueError):
    """Weather or site data the water balance cannot use (out of physical range, missing, inconsistent)."""


def saturation_vapour_pressure_kpa(temperature_c: float) -> float:
    """e°(T), FAO-56 eq. 11."""
    return 0.6108 * math.exp(17.27 * temperature_c / (temperature_c + 237.3))


def wind_at_2m(wind_ms: float, height_m: float) -> float:
    """Wind speed at 2 m from a measurement at `height_m` (FAO-56 eq. 47, logarithmic profile)."""
    if height_m <= 0.6:
        raise WaterInputError(f"anemometer height must be above 0.6 m, got {height_m}")
    return wind_ms * 4.87 / math.log(67.8 * height_m - 5.42)


def pressure_at_elevation_kpa(elevation_m: float) -> float:
    """Atmospheric pressure from elevation (FAO-56 eq. 7)."""
    return 101.3 * ((293.0 - 0.0065 * elevation_m) / 293.0) ** 5.26


def extraterrestrial_radiation_mj(latitude_deg: float, day_of_year: int) -> float:
    """Ra for a day (FAO-56 eq. 21), MJ m⁻² day⁻¹."""
    latitude = math.radians(latitude_deg)
    inverse_distance = 1.0 + 0.033 * math.cos(2.0 * math.pi * day_of_year / 365.0)
    declination = 0.409 * math.sin(2.0 * math.pi * day_of_year / 365.0 - 1.39)
    sunset_angle = math.acos(max(-1.0, min(1.0, -math.tan(latitude) * math.tan(declination))))
    return (
        24.0
        * 60.0
        / math.pi
        * SOLAR_CONSTANT_MJ
        * inverse_distance
        * (
            sunset_angle * math.sin(latitude) * math.sin(declination)
            + math.cos(latitude) * math.cos(declination) * math.sin(sunset_angle)
        )
    )


def et0_penman_monteith(
    *,
    temperature_max_c: float,
    temperature_min_c: float,
    humidity_max_pct: float,
    humidity_min_pct: float,
    wind_ms: float,
    wind_height_m: float,
    solar_radiation_mj: float,
    latitude_deg: float,
    elevation_m: float,
    day_of_year: int,
    pressure_kpa: float | None = None,
) -> float:
    """Daily reference ET0 in mm by FAO-56 Penman–Monteith (eq. 6), with net radiation from eqs. 37–40."""
    _check_temperatures(temperature_max_c, temperature_min_c)
    if not (0 <= humidity_min_pct <= humidity_max_pct <= 100):
        raise WaterInputError(f"need 0 <= RHmin <= RHmax <= 100 %, got {humidity_min_pct}, {humidity_max_pct}")
    if not (0 <= wind_ms <= 60 and 0 <= solar_radiation_mj <= 45):
        raise WaterInputError(f"wind {wind_ms} m/s or solar radiation {solar_radiation_mj} MJ/m² out of range")
    t_mean = (temperature_max_c + temperature_min_c) / 2.0
    pressure = pressure_kpa if pressure_kpa is not None else pressure_at_elevation_kpa(elevation_m)
    psychrometric = 0.665e-3 * pressure
    e_max = saturation_vapour_pressure_kpa(temperature_max_c)
    e_min = saturation_vapour_pressure_kpa(temperature_min_c)
    saturation = (e_max + e_min) / 2.0
    actual = (e_min * humidity_max_pct / 100.0 + e_max * humidity_min_pct / 100.0) / 2.0
    slope = 4098.0 * saturation_vapour_pressure_kpa(t_mean) / (t_mean + 237.3) ** 2
    u2 = wind_at_2m(wind_ms, wind_height_m)

    extraterrestrial = extraterrestrial_radiation_mj(latitude_deg, day_of_year)
    clear_sky = (0.75 + 2e-5 * elevation_m) * extraterrestrial
    net_short = (1.0 - ALBEDO) * solar_radiation_mj
    relative_shortwave = min(solar_radiation_mj / clear_sky, 1.0) if clear_sky > 0 else 0.5
    net_long = (
        STEFAN_BOLTZMANN_MJ
        * ((temperature_max_c + 273.16) ** 4 + (temperature_min_c + 273.16) ** 4)
        / 2.0
        * (0.34 - 0.14 * math.sqrt(actual))
        * (1.35 * relative_shortwave - 0.35)
    )
    net_radiation = net_short - net_long  # soil heat flux G ≈ 0 for a day
    numerator = 0.408 * slope * net_radiation + psychrometric * 900.0 / (t_mean + 273.0) * u2 * (saturation - actual)
    return max(numerator / (slope + psychrometric * (1.0 + 0.34 * u2)), 0.0)


def et0_hargreaves(
    *, temperature_max_c: float, temperature_min_c: float, latitude_deg: float, day_of_year: int
) -> float:
    """Daily reference ET0 in mm by Hargreaves (FAO-56 eq. 52), for stations that measure only temperature."""
    _check_temperatures(temperature_max_c, temperature_min_c)
    t_mean = (temperature_max_c + temperature_min_c) / 2.0
    radiation_mm = 0.408 * extraterrestrial_radiation_mj(latitude_deg, day_of_year)
    return max(0.0023 * (t_mean + 17.8) * math.sqrt(temperature_max_c - temperature_min_c) * radiation_mm, 0.0)


def _check_temperatures(temperature_max_c: float, temperature_min_c: float) -> None:
    if not (-50 <= temperature_min_c <= temperature_max_c <= 60):
        raise WaterInputError(f"need -50 <= Tmin <= Tmax <= 60 °C, got {temperature_min_c}, {temperature_max_c}")


@dataclass(frozen=True)
class DailyWeather:
    """One day at a town's weather station; optional fields are what a temperature-only station lacks."""

    day: date
    temperature_max_c: float
    temperature_min_c: float
    rain_mm: float
    humidity_max_pct: float | None = None
    humidity_min_pct: float | None = None
    wind_ms: float | None = None
    wind_height_m: float = 2.0
    solar_radiation_mj: float | None = None
    pressure_kpa: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rain_mm <= 500:
            raise WaterInputError(f"{self.day}: daily rain must be 0-500 mm, got {self.rain_mm}")
        _check_temperatures(self.temperature_max_c, self.temperature_min_c)


def reference_et_mm(weather: DailyWeather, latitude_deg: float, elevation_m: float) -> float:
    """ET0 for a day: Penman–Monteith when humidity, wind and radiation are measured, else Hargreaves."""
    doy = weather.day.timetuple().tm_yday
    if (
        weather.humidity_max_pct is not None
        and weather.humidity_min_pct is not None
        and weather.wind_ms is not None
        and weather.solar_radiation_mj is not None
    ):
        return et0_penman_monteith(
            temperature_max_c=weather.temperature_max_c,
            temperature_min_c=weather.temperature_min_c,
            humidity_max_pct=weather.humidity_max_pct,
            humidity_min_pct=weather.humidity_min_pct,
            wind_ms=weather.wind_ms,
            wind_height_m=weather.wind_height_m,
            solar_radiation_mj=weather.solar_radiation_mj,
            latitude_deg=latitude_deg,
            elevation_m=elevation_m,
            day_of_year=doy,
            pressure_kpa=weather.pressure_kpa,
        )
    return et0_hargreaves(
        temperature_max_c=weather.temperature_max_c,
        temperature_min_c=weather.temperature_min_c,
        latitude_deg=latitude_deg,
        day_of_year=doy,
    )


def effective_rain_mm(rain_mm: float) -> float:
    """Rain that reaches the root zone: the first 2 mm wet leaves and paving and evaporate, 80 % of the rest
    soaks in (small daily amounts in summer never reach the roots)."""
    return max(rain_mm - 2.0, 0.0) * 0.8


# --- soil: van Genuchten retention per soil class -----------------------------------------------------------------


@dataclass(frozen=True)
class SoilClass:
    """Van Genuchten parameters (Carsel & Parrish 1988) and the tension taken as field capacity."""

    name: str
    residual_vwc: float
    saturated_vwc: float
    alpha_per_kpa: float
    n: float
    field_capacity_kpa: float

    def tension_kpa(self, vwc: float | np.ndarray) -> np.ndarray:
        """Soil water tension (kPa) at a volumetric water content; 0 at saturation, capped at 10,000 kPa."""
        m = 1.0 - 1.0 / self.n
        span = self.saturated_vwc - self.residual_vwc
        effective = np.clip((np.asarray(vwc, dtype=float) - self.residual_vwc) / span, 1e-6, 1.0)
        tension = (effective ** (-1.0 / m) - 1.0) ** (1.0 / self.n) / self.alpha_per_kpa
        return np.minimum(tension, 10_000.0)

    def vwc_at(self, tension_kpa: float | np.ndarray) -> np.ndarray:
        """Volumetric water content at a tension (kPa)."""
        m = 1.0 - 1.0 / self.n
        tension = np.maximum(np.asarray(tension_kpa, dtype=float), 0.0)
        return (
            self.residual_vwc
            + (self.saturated_vwc - self.residual_vwc) / (1.0 + (self.alpha_per_kpa * tension) ** self.n) ** m
        )

    @property
    def field_capacity(self) -> float:
        return float(self.vwc_at(self.field_capacity_kpa))

    @property
    def wilting_point(self) -> float:
        return float(self.vwc_at(1500.0))


# α converted from 1/cm to 1/kPa (1 kPa ≈ 10.2 cm of water). Coarse soils drain to field capacity at ~10 kPa.
SOIL_CLASSES: dict[str, SoilClass] = {
    soil.name: soil
    for soil in (
        SoilClass("loamy_sand", 0.057, 0.41, 0.124 * 10.2, 2.28, 10.0),
        SoilClass("sandy_loam", 0.065, 0.41, 0.075 * 10.2, 1.89, 10.0),
        SoilClass("loam", 0.078, 0.43, 0.036 * 10.2, 1.56, 33.0),
        SoilClass("silt_loam", 0.067, 0.45, 0.020 * 10.2, 1.41, 33.0),
        SoilClass("clay_loam", 0.095, 0.41, 0.019 * 10.2, 1.31, 33.0),
    )
}

TENSION_GOOD_KPA = 32.0  # Berlin practice (FACTS.md): up to 32 kPa good,
TENSION_CRITICAL_KPA = 80.0  # up to 80 kPa moderate, above that critical
# Water above field capacity drains away within two to three days (field capacity is by definition what is left
# after that): it decays with a time constant of about 18 hours.
DRAINAGE_TIME_CONSTANT_DAYS = 0.75


# --- sites and the daily balance ---------------------------------------------------------------------------------

YOUNG_TREE_YEARS = 5


@dataclass(frozen=True)
class SiteClass:
    """What makes two sites dry out alike: exposure, soil and age band."""

    exposure: str  # "sun" or "shade"
    soil: str  # a key of SOIL_CLASSES
    young: bool
    # Young trees by root development: first summer (root ball), second, years 3-4, 5 and later; None for old
    # trees, green spaces and unknown planting years.
    age_band: int | None = None


def _age_band(years_since_planting: int) -> int:
    return {0: 0, 1: 1, 2: 2, 3: 2}.get(years_since_planting, 3)


@dataclass(frozen=True)
class WateringSite:
    """A tree pit or green space: its soil, root zone, the area water spreads over, its crop factor."""

    asset: str
    municipality: str
    soil: str
    exposure: str = "sun"
    root_depth_m: float = 0.3
    area_m2: float = 4.0
    crop_factor: float = 1.0
    planting_year: int | None = None
    depletion_fraction: float = 0.5  # FAO-56 p: RAW = p·TAW
    rain_catch: float = 1.0  # > 1 where paving drains into the pit
    is_tree: bool = True  # False for a green space: `young_only` spares only old trees

    def __post_init__(self) -> None:
        if self.soil not in SOIL_CLASSES:
            raise WaterInputError(f"site {self.asset}: unknown soil class {self.soil!r} (know {sorted(SOIL_CLASSES)})")
        if self.exposure not in ("sun", "shade"):
            raise WaterInputError(f"site {self.asset}: exposure must be 'sun' or 'shade', got {self.exposure!r}")
        if not (0.05 <= self.root_depth_m <= 3.0 and 0.1 <= self.area_m2 <= 10_000 and 0.1 <= self.crop_factor <= 2):
            raise WaterInputError(f"site {self.asset}: root depth, area or crop factor out of range")

    def is_young(self, day: date) -> bool:
        return self.planting_year is not None and day.year - self.planting_year <= YOUNG_TREE_YEARS

    def years_since_planting(self, day: date) -> int | None:
        """Whole years since planting (0 in its first summer); None when the planting year is unknown."""
        return None if self.planting_year is None else max(day.year - self.planting_year, 0)

    def site_class(self, day: date) -> SiteClass:
        young = self.is_young(day)
        years = self.years_since_planting(day)
        return SiteClass(self.exposure, self.soil, young, _age_band(years) if young and years is not None else None)

    @property
    def total_available_mm(self) -> float:
        """TAW = (θfc − θwp)·Zr (FAO-56 eq. 82)."""
        soil = SOIL_CLASSES[self.soil]
        return (soil.field_capacity - soil.wilting_point) * self.root_depth_m * 1000.0

    @property
    def drainable_mm(self) -> float:
        """Water the root zone holds between field capacity and saturation (it drains within days)."""
        soil = SOIL_CLASSES[self.soil]
        return (soil.saturated_vwc - soil.field_capacity) * self.root_depth_m * 1000.0

    @property
    def readily_available_mm(self) -> float:
        return self.depletion_fraction * self.total_available_mm

    def depletion_from_vwc(self, vwc: float) -> float:
        soil = SOIL_CLASSES[self.soil]
        return float(np.clip((soil.field_capacity - vwc) * self.root_depth_m * 1000.0, 0.0, self.total_available_mm))

    def depletion_from_tension(self, tension_kpa: float) -> float:
        return self.depletion_from_vwc(float(SOIL_CLASSES[self.soil].vwc_at(tension_kpa)))

    def tension_at_depletion(self, depletion_mm: float) -> float:
        soil = SOIL_CLASSES[self.soil]
        return float(soil.tension_kpa(soil.field_capacity - depletion_mm / (self.root_depth_m * 1000.0)))

    @property
    def exposure_factor(self) -> float:
        return 1.0 if self.exposure == "sun" else 0.7  # shade: less radiation reaches the crown


# --- young trees: root zone and crown by years since planting ---------------------------------------------------
# A street tree is planted at 18-20 cm stem girth with a root ball of >= 50 cm across (TL Baumschulpflanzen 2020),
# ~0.45 m deep. In its first summer its roots are in the ball and the backfill next to it (~1.2 m across); they then
# grow into the pit substrate (FLL pits: >= 12 m³, >= 6 m² open, 1.5 m deep) and are established there after about
# five years, when the Bauhof stops watering (Leipzig waters to year 5, FLL's Entwicklungspflege 3-5 years). FAO-56
# (ch. 8) lets the root depth grow linearly from its initial to its full value; the rooted radius grows alike. The
# crown is 1.7 m across at planting and gains ~0.3 m a year; transpiration is Kc 0.6 per m² of crown (FLL: 20 L per
# m² of crown projection per weekly watering, ~2.9 mm/day, at a summer ET0 of ~4.8 mm/day). README "How the
# simulation is calibrated" gives the sources.
ROOT_DEPTH_PLANTED_M = 0.45
ROOT_DEPTH_ESTABLISHED_M = 0.9
ROOTED_RADIUS_PLANTED_M = 0.6
ROOTED_RADIUS_ESTABLISHED_M = 1.4
CROWN_DIAMETER_PLANTED_M = 1.7
CROWN_GROWTH_M_PER_YEAR = 0.3
CROP_FACTOR_PER_CROWN_M2 = 0.6
ESTABLISHED_AFTER_YEARS = 5


@dataclass(frozen=True)
class YoungTreeRootZone:
    """The nominal root zone and crown of a young tree some years after planting."""

    root_depth_m: float
    area_m2: float  # rooted area of the pit: where watering and rain count
    crown_m2: float  # projected crown area
    crop_factor: float  # per m² of rooted area: Kc per crown m² times crown area over rooted area


def young_tree_root_zone(years_since_planting: float) -> YoungTreeRootZone:
    """Root depth, rooted area and crown of a young street tree `years_since_planting` after planting (0 in its
    first summer); from year 5 on the values of an established pit tree."""
    if not 0.0 <= years_since_planting <= 200.0:
        raise WaterInputError(f"years since planting must be 0-200, got {years_since_planting}")
    share = min(years_since_planting / ESTABLISHED_AFTER_YEARS, 1.0)
    depth = ROOT_DEPTH_PLANTED_M + (ROOT_DEPTH_ESTABLISHED_M - ROOT_DEPTH_PLANTED_M) * share
    radius = ROOTED_RADIUS_PLANTED_M + (ROOTED_RADIUS_ESTABLISHED_M - ROOTED_RADIUS_PLANTED_M) * share
    crown_diameter = CROWN_DIAMETER_PLANTED_M + CROWN_GROWTH_M_PER_YEAR * min(
        years_since_planting, ESTABLISHED_AFTER_YEARS
    )
    area = math.pi * radius**2
    crown = math.pi * (crown_diameter / 2.0) ** 2
    return YoungTreeRootZone(
        root_depth_m=depth, area_m2=area, crown_m2=crown, crop_factor=CROP_FACTOR_PER_CROWN_M2 * crown / area
    )


def young_tree_site(
    asset: str,
    municipality: str,
    soil: str,
    planting_year: int,
    season_year: int,
    *,
    exposure: str = "sun",
    rain_catch: float = 1.0,
) -> WateringSite:
    """The balance's site for a young tree from its planting year: its age's nominal root zone and crown."""
    if planting_year > season_year:
        raise WaterInputError(f"site {asset}: planted in {planting_year}, after the season {season_year}")
    zone = young_tree_root_zone(season_year - planting_year)
    return WateringSite(
        asset=asset,
        municipality=municipality,
        soil=soil,
        exposure=exposure,
        root_depth_m=zone.root_depth_m,
        area_m2=zone.area_m2,
        crop_factor=zone.crop_factor,
        planting_year=planting_year,
        rain_catch=rain_catch,
    )


@dataclass(frozen=True)
class SoilObservation:
    """A soil sensor's daily reading at a site: tension (kPa) or volumetric water content (m³/m³)."""

    day: date
    tension_kpa: float | None = None
    vwc: float | None = None

    def __post_init__(self) -> None:
        if (self.tension_kpa is None) == (self.vwc is None):
            raise WaterInputError(f"{self.day}: give exactly one of tension_kpa and vwc")
        if self.tension_kpa is not None and not 0 <= self.tension_kpa <= 10_000:
            raise WaterInputError(f"{self.day}: tension must be 0-10,000 kPa, got {self.tension_kpa}")
        if self.vwc is not None and not 0 <= self.vwc <= 0.7:
            raise WaterInputError(f"{self.day}: water content must be 0-0.7 m³/m³, got {self.vwc}")


@dataclass(frozen=True)
class TownWeather:
    """A town's station position, its measured days (oldest first) and the forecast from tomorrow on."""

    latitude_deg: float
    elevation_m: float
    measured: Sequence[DailyWeather]
    forecast: Sequence[DailyWeather] = ()


@dataclass(frozen=True)
class BalanceRules:
    """How the water balance decides who is due and what each gets: the knobs a watering policy sets."""

    # The Bauhof waters only trees in years 1–5 (old trees reach deeper water) and green spaces.
    young_only: bool = False
    # The trigger is RAW, or a tension (kPa) if given and reached first (fine soils pass 80 kPa before RAW).
    trigger_tension_kpa: float | None = None
    # Refill to this share of RAW below field capacity, not to capacity itself: the room left holds the next rain.
    headroom_share_of_raw: float = 0.0
    # Set, a due site gets only what keeps its depletion below this share of the trigger until the next run,
    # counting `forecast_rain_trust` of the forecast rain of those days; never more than a refill to field
    # capacity. Water poured beyond what the tree uses before the next rain drains away unused.
    top_up_share_of_trigger: float | None = None
    forecast_rain_trust: float = 0.5
    # With a top-up, a site whose store cannot carry it to the next run even when refilled gets water above field
    # capacity on top: what it draws the rest from before that drains, at most this share of what its root zone
    # holds above field capacity (0: never more than a refill).
    drain_share: float = 0.0
    # A due site whose top-up is below this many litres waits for the next run: a few litres are not worth a stop
    # (it may pass the trigger a little before then, which is not yet stress).
    min_litres: float = 0.0
    # With a top-up: the days it must last (None: the input's `horizon_days`). Longer than the horizon, a site
    # watered today is not due at the next run, so a tanker can skip it (and, when its neighbours skip too, the
    # village).
    bridge_days: int | None = None
    # With a tension trigger: that alone decides, not RAW first (coarse soils pass RAW long before 80 kPa, and the
    # tension is what street-tree practice calls stress).
    tension_trigger_only: bool = False
    # Set, a town whose tanker goes today also tops up the sites that would be due within this many days (at least
    # the input's `horizon_days`).
    ride_along_days: int | None = None

    def __post_init__(self) -> None:
        if self.bridge_days is not None and not 1 <= self.bridge_days <= 28:
            raise WaterInputError(f"bridge_days must be 1-28, got {self.bridge_days}")
        if not 0.0 <= self.headroom_share_of_raw <= 0.8:
            raise WaterInputError(f"headroom_share_of_raw must be 0-0.8, got {self.headroom_share_of_raw}")
        if self.trigger_tension_kpa is not None and not 0 < self.trigger_tension_kpa <= 1500:
            raise WaterInputError(f"trigger_tension_kpa must be in (0, 1500], got {self.trigger_tension_kpa}")
        if self.top_up_share_of_trigger is not None and not 0.0 <= self.top_up_share_of_trigger <= 1.0:
            raise WaterInputError(f"top_up_share_of_trigger must be 0-1, got {self.top_up_share_of_trigger}")
        if not 0.0 <= self.min_litres <= 1000.0:
            raise WaterInputError(f"min_litres must be 0-1,000 L, got {self.min_litres}")
        if not 0.0 <= self.forecast_rain_trust <= 1.0:
            raise WaterInputError(f"forecast_rain_trust must be 0-1, got {self.forecast_rain_trust}")


@dataclass(frozen=True)
class WateringInput:
    """What the water balance needs for a plan: sites, town weather, sensor readings, past waterings and the rules
    it decides by."""

    sites: Sequence[WateringSite]
    weather: Mapping[str, TownWeather]  # by municipality
    soil: Mapping[str, Sequence[SoilObservation]] = field(default_factory=dict)  # by asset, oldest first
    watered_litres: Mapping[str, Mapping[date, float]] = field(default_factory=dict)  # by asset and day
    # Days until the next watering run after today: a site is due today when it would pass its trigger before
    # then.
    horizon_days: int = 1
    rules: BalanceRules = BalanceRules()

    def __post_init__(self) -> None:
        if not 1 <= self.horizon_days <= 14:
            raise WaterInputError(f"horizon_days must be 1-14, got {self.horizon_days}")
        ride_along_days = self.rules.ride_along_days
        if ride_along_days is not None and not self.horizon_days <= ride_along_days <= 28:
            raise WaterInputError(f"ride_along_days must be horizon_days-28, got {ride_along_days}")


@dataclass(frozen=True)
class WaterNeed:
    """The balance's verdict for one site on the plan day."""

    asset: str
    depletion_mm: float  # root-zone depletion expected at the end of the plan day
    readily_available_mm: float
    tension_kpa: float
    litres: float  # 0 when no watering is due
    postponed_by: str | None  # "rain", "frost" or "small" (below min_litres) when due but held back
    sensed: bool  # corrected by the site's own sensor (else carried from its site class, or the model alone)
    young: bool
    years_since_planting: int | None = None  # 0 in the first summer; None when unknown
    # Days in the balance's window whose weather was missing for the site's town and estimated (persistence ET0,
    # no rain).
    weather_days_estimated: int = 0


MAX_SITES = 100_000
MAX_DAYS = 366


def assess_watering(day: date, watering: WateringInput) -> dict[str, WaterNeed]:
    """Each site's water need on `day` from the daily balance up to yesterday, sensor corrections and the
    forecast.

    The balance (FAO-56 eq. 85) runs over every calendar day from the first measured day to yesterday (at most
    `MAX_DAYS`): depletion += Kc·Ks·ET0 − effective rain − watering. A day without weather takes the ET0 of the
    nearest measured day before it (after it, if none) and no rain, and is counted in `weather_days_estimated`.
    A site with a sensor reading takes the sensor's depletion on that day; the median correction (sensor minus
    model) of the sensed sites of a site class is applied to the unsensored ones of the same class. Watering is
    due when the depletion expected at the end of `day` reaches RAW; the amount refills to field capacity. Rain
    of the next two forecast days that covers the need, or frost ahead, postpones it.
    """
    if len(watering.sites) > MAX_SITES:
        raise WaterInputError(f"at most {MAX_SITES} sites, got {len(watering.sites)}")
    rules = watering.rules
    sites_by_town: dict[str, list[WateringSite]] = defaultdict(list)
    for site in watering.sites:
        sites_by_town[site.municipality].append(site)

    depletion: dict[str, float] = {}
    sensed: set[str] = set()
    balance_days: dict[str, _BalanceDays] = {}
    today_et0: dict[str, float] = {}
    ahead_et0: dict[str, list[float]] = {}
    forecasts: dict[str, Sequence[DailyWeather]] = {}
    for town, sites in sites_by_town.items():
        station = watering.weather.get(town)
        if station is None:
            raise WaterInputError(f"no weather for {town}: its sites cannot be balanced")
        balance_days[town] = _balance_days(station, day)
        forecasts[town] = [weather for weather in station.forecast if weather.day >= day]
        town_depletion, town_sensed = _run_balance(sites, balance_days[town], watering)
        depletion |= town_depletion
        sensed |= town_sensed
        # Today's demand: the forecast for today if there is one, else yesterday's ET0 as persistence.
        source = forecasts[town][0] if forecasts[town] and forecasts[town][0].day == day else None
        if source is not None:
            today_et0[town] = reference_et_mm(source, station.latitude_deg, station.elevation_m)
        elif balance_days[town].days:
            today_et0[town] = float(balance_days[town].et0_mm[-1])
        else:
            today_et0[town] = 3.0
        coming = {weather.day: weather for weather in forecasts[town]}
        ahead_et0[town] = []
        days_ahead = max(watering.horizon_days, rules.bridge_days or 1, rules.ride_along_days or 1)
        for offset in range(1, days_ahead):
            known = coming.get(day + timedelta(days=offset))
            ahead_et0[town].append(
                reference_et_mm(known, station.latitude_deg, station.elevation_m) if known else today_et0[town]
            )

    _carry_to_unsensored(day, watering.sites, depletion, sensed, balance_days, watering)

    def assess(site: WateringSite, horizon_days: int) -> WaterNeed:
        young = site.is_young(day)
        raw = site.readily_available_mm
        now = depletion[site.asset]
        stress = 1.0 if now <= raw else (site.total_available_mm - now) / max(site.total_available_mm - raw, 1e-9)
        demand = site.crop_factor * site.exposure_factor * stress * today_et0[site.municipality]
        expected = min(now + demand, site.total_available_mm)
        litres = 0.0
        postponed: str | None = None
        # Before the next run the site keeps drying (rain ahead is weighed by the postponing rule below).
        projected = _dried(site, expected, ahead_et0[site.municipality][: horizon_days - 1])
        trigger = raw
        if rules.trigger_tension_kpa is not None:
            by_tension = site.depletion_from_tension(rules.trigger_tension_kpa)
            trigger = by_tension if rules.tension_trigger_only else min(trigger, by_tension)
        if projected >= trigger and (young or not rules.young_only or not site.is_tree):
            ahead = forecasts[site.municipality][:3]
            rain_ahead = sum(effective_rain_mm(weather.rain_mm) * site.rain_catch for weather in ahead[:2])
            if any(weather.temperature_min_c < 0.0 for weather in ahead):
                postponed = "frost"
            elif (
                rain_ahead > 0.0
                and rain_ahead >= expected - 0.5 * raw
                and expected < site.total_available_mm * 0.9
                and rules.top_up_share_of_trigger is None  # a top-up weighs the forecast rain itself
            ):
                postponed = "rain"
            elif rules.top_up_share_of_trigger is None:
                refill_mm = max(expected - rules.headroom_share_of_raw * raw, 0.0)
                litres = round(refill_mm * site.area_m2, 0)  # 1 mm on 1 m² is 1 L
            else:
                bridge_days = rules.bridge_days or horizon_days
                # What the tree draws until then if it has the water: a small store (a first-summer root ball)
                # cannot hold it, and gets a full refill.
                lasting = _drawn(site, expected, ahead_et0[site.municipality][: bridge_days - 1])
                rain_mm = _forecast_rain_mm(forecasts[site.municipality], day, bridge_days)
                rain_mm *= site.rain_catch * rules.forecast_rain_trust
                bridge_mm = lasting - rain_mm - rules.top_up_share_of_trigger * trigger
                poured_mm = float(np.clip(bridge_mm, 0.0, expected))
                if bridge_mm > expected and rules.drain_share > 0 and site.is_tree:
                    # A refill to field capacity does not carry the tree to the next run: pour water above field
                    # capacity too. It drains while the tree draws on it, so only part of it is used: enough that
                    # the tree draws the rest of the bridge before it has drained, at most the drainable water.
                    # Not on a lawn: a green space may dry between runs, and water above field capacity on its
                    # shallow roots is mostly lost below them.
                    days = max(bridge_days - 1, 1)
                    daily_mm = (lasting - expected) / days if lasting > expected else 0.0
                    poured_mm += min(
                        _surplus_lasting(bridge_mm - expected, daily_mm),
                        rules.drain_share * site.drainable_mm,
                    )
                litres = round(poured_mm * site.area_m2, 0)
                # A few litres wait for the next run, but not where the tree would pass the critical tension
                # before then without them.
                critical = site.depletion_from_tension(TENSION_CRITICAL_KPA)
                if litres <= 0:
                    postponed = "rain"
                elif litres < rules.min_litres and lasting - rain_mm < critical:
                    litres, postponed = 0.0, "small"
        return WaterNeed(
            asset=site.asset,
            depletion_mm=expected,
            readily_available_mm=raw,
            tension_kpa=site.tension_at_depletion(expected),
            litres=litres,
            postponed_by=postponed,
            sensed=site.asset in sensed,
            young=young,
            years_since_planting=site.years_since_planting(day),
            weather_days_estimated=balance_days[site.municipality].estimated,
        )

    needs = {site.asset: assess(site, watering.horizon_days) for site in watering.sites}
    if rules.ride_along_days is not None:
        # Where the tanker goes anyway, sites due before the run after next ride along (topped up to last), so
        # that the next run can stay at home.
        running = {site.municipality for site in watering.sites if needs[site.asset].litres > 0}
        for site in watering.sites:
            need = needs[site.asset]
            if site.municipality in running and need.litres == 0 and need.postponed_by is None:
                needs[site.asset] = assess(site, rules.ride_along_days)
    return needs


def _surplus_lasting(drawn_mm: float, daily_mm: float) -> float:
    """Water above field capacity from which a tree draws `drawn_mm` at `daily_mm` a day before the rest has drained.

    The surplus drains in proportion to itself (time constant `DRAINAGE_TIME_CONSTANT_DAYS`) while the tree draws
    at a steady rate: dE/dt = -E/τ - u, so a surplus E₀ lasts τ·ln(1 + E₀/(u·τ)) and feeds u times that. Solved
    for E₀: a day of extra use costs about twice that day's draw, two days ten times."""
    if drawn_mm <= 0 or daily_mm <= 0:
        return 0.0
    tau = DRAINAGE_TIME_CONSTANT_DAYS
    return daily_mm * tau * math.expm1(drawn_mm / (daily_mm * tau))


def _dried(site: WateringSite, depletion_mm: float, et0_mm: Sequence[float]) -> float:
    """Depletion after days of these ET0s without rain; it cannot pass TAW (the tree stops drawing first)."""
    for et0 in et0_mm:
        depletion_mm = min(depletion_mm + site.crop_factor * site.exposure_factor * et0, site.total_available_mm)
    return depletion_mm


def _drawn(site: WateringSite, depletion_mm: float, et0_mm: Sequence[float]) -> float:
    """Depletion after days of these ET0s without rain were the store unlimited: what the tree draws."""
    return depletion_mm + sum(site.crop_factor * site.exposure_factor * et0 for et0 in et0_mm)


def _forecast_rain_mm(forecast: Sequence[DailyWeather], day: date, days: int) -> float:
    """Effective rain forecast for `day` and the `days` - 1 days after it."""
    last = day + timedelta(days=days - 1)
    return sum(effective_rain_mm(weather.rain_mm) for weather in forecast if day <= weather.day <= last)


@dataclass(frozen=True)
class _BalanceDays:
    """A town's calendar days for the balance, oldest first, with their ET0 and rain (mm)."""

    days: list[date]
    et0_mm: np.ndarray
    rain_mm: np.ndarray
    estimated: int  # days without a measurement: ET0 by persistence, no rain


def _balance_days(station: TownWeather, day: date) -> _BalanceDays:
    """Every calendar day from the first measured day before `day` to the day before it (the last `MAX_DAYS`).

    A missing day (station offline, readings lost) still dries the soil: it takes the ET0 of the nearest measured
    day before it (after it, if there is none) and no rain, the safe side for a tree (watered early, never late)."""
    by_day = {weather.day: weather for weather in station.measured if weather.day < day}
    if not by_day:
        return _BalanceDays([], np.zeros(0), np.zeros(0), 0)
    known = sorted(by_day)
    first = max(known[0], day - timedelta(days=MAX_DAYS))
    # Keep the last measured day before the window too: a gap at the window's start persists from it.
    start = max(bisect.bisect_left(known, first) - 1, 0)
    known = known[start:]
    offsets = np.array([(measured - first).days for measured in known])
    et0 = np.array([reference_et_mm(by_day[measured], station.latitude_deg, station.elevation_m) for measured in known])
    rain = np.array([by_day[measured].rain_mm for measured in known])
    count = (day - first).days
    window = np.arange(count)
    source = np.maximum(np.searchsorted(offsets, window, side="right") - 1, 0)  # the nearest measured day before
    is_measured = offsets[source] == window
    return _BalanceDays(
        days=[first + timedelta(days=int(offset)) for offset in window],
        et0_mm=et0[source],
        rain_mm=np.where(is_measured, rain[source], 0.0),
        estimated=int(count - np.count_nonzero(is_measured)),
    )


def _run_balance(
    sites: Sequence[WateringSite], balance_days: _BalanceDays, watering: WateringInput
) -> tuple[dict[str, float], set[str]]:
    """Depletion at the end of the day before the plan day, per site of one town (vectorised over sites)."""
    total = np.array([site.total_available_mm for site in sites])
    raw = np.array([site.readily_available_mm for site in sites])
    demand_factor = np.array([site.crop_factor * site.exposure_factor for site in sites])
    catch = np.array([site.rain_catch for site in sites])
    area = np.array([site.area_m2 for site in sites])
    depletion = np.zeros(len(sites))  # the season starts at field capacity (winter rain)
    observations = {site.asset: {obs.day: obs for obs in watering.soil.get(site.asset, ())} for site in sites}
    sensed: set[str] = set()
    for balance_day, et0, rain_mm in zip(balance_days.days, balance_days.et0_mm, balance_days.rain_mm, strict=True):
        stress = np.where(depletion > raw, (total - depletion) / np.maximum(total - raw, 1e-9), 1.0)
        irrigation = np.array([watering.watered_litres.get(site.asset, {}).get(balance_day, 0.0) for site in sites])
        depletion = depletion + demand_factor * np.clip(stress, 0.0, 1.0) * et0
        depletion = depletion - effective_rain_mm(float(rain_mm)) * catch - irrigation / area
        depletion = np.clip(depletion, 0.0, total)
        for k, site in enumerate(sites):
            observation = observations[site.asset].get(balance_day)
            if observation is not None:
                depletion[k] = (
                    site.depletion_from_vwc(observation.vwc)
                    if observation.vwc is not None
                    else site.depletion_from_tension(observation.tension_kpa or 0.0)
                )
                sensed.add(site.asset)
    return {site.asset: float(depletion[k]) for k, site in enumerate(sites)}, sensed


def _carry_to_unsensored(
    day: date,
    sites: Sequence[WateringSite],
    depletion: dict[str, float],
    sensed: set[str],
    balance_days: Mapping[str, _BalanceDays],
    watering: WateringInput,
) -> None:
    """Unsensored sites take the median sensor correction of their site class (as a share of TAW)."""
    # The correction is the sensed sites' depletion relative to a model-only run: rerun without their sensors.
    sensed_sites = [site for site in sites if site.asset in sensed]
    if not sensed_sites:
        return
    model_only = WateringInput(
        sites=sensed_sites, weather=watering.weather, soil={}, watered_litres=watering.watered_litres
    )
    by_town: dict[str, list[WateringSite]] = defaultdict(list)
    for site in sensed_sites:
        by_town[site.municipality].append(site)
    uncorrected: dict[str, float] = {}
    for town, town_sites in by_town.items():
        # The same days as the corrected run, estimated ones included: else the gap itself would read as a
        # sensor correction.
        uncorrected |= _run_balance(town_sites, balance_days[town], model_only)[0]
    corrections: dict[SiteClass, list[float]] = defaultdict(list)
    for site in sensed_sites:
        corrections[site.site_class(day)].append(
            (depletion[site.asset] - uncorrected[site.asset]) / max(site.total_available_mm, 1e-9)
        )
    for site in sites:
        if site.asset in sensed:
            continue
        shares = corrections.get(site.site_class(day))
        if shares:
            shifted = depletion[site.asset] + float(np.median(shares)) * site.total_available_mm
            depletion[site.asset] = float(np.clip(shifted, 0.0, site.total_available_mm))
