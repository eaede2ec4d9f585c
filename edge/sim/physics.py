"""Pure physics of the virtual sensors: weather, bin filling, root-zone water balance, batteries.

Every function maps plain numbers or numpy arrays (and, where chance matters, shocks drawn by the caller)
to new numbers; nothing here owns a random generator, a clock or any I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np

STEP_S = 600  # the simulation's time step; weather stations report at exactly this cadence

# --- seasons and sun -------------------------------------------------------------------------------------------


def day_of_year(moment: datetime) -> float:
    """Fractional day of the year (1.0 = 1 January 00:00 UTC)."""
    moment = moment.astimezone(UTC)
    start = datetime(moment.year, 1, 1, tzinfo=UTC)
    return 1.0 + (moment - start).total_seconds() / 86400.0


def summerness(doy: float) -> float:
    """0 in mid-January, 1 in mid-July: the seasonal phase of central European climate."""
    return 0.5 * (1.0 - math.cos(2.0 * math.pi * (doy - 15.0) / 365.25))


def climatological_temperature_c(doy: float, altitude_m: float | np.ndarray = 150.0) -> float | np.ndarray:
    """Long-term daily mean air temperature in the Kinzig valley (≈ 0 °C in January, ≈ 18.5 °C in July)."""
    return 9.3 - 9.1 * math.cos(2.0 * math.pi * (doy - 15.0) / 365.25) - 0.0065 * (altitude_m - 150.0)


def solar_elevation_sin(moment: datetime, latitude_deg: np.ndarray, longitude_deg: np.ndarray) -> np.ndarray:
    """Sine of the sun's elevation (negative at night), from declination and hour angle (±0.5° accuracy)."""
    doy = day_of_year(moment)
    declination = math.radians(23.44) * math.sin(2.0 * math.pi * (284.0 + doy) / 365.0)
    utc_hours = (doy - math.floor(doy)) * 24.0
    solar_hours = utc_hours + np.asarray(longitude_deg) / 15.0
    hour_angle = np.radians(15.0 * (solar_hours - 12.0))
    latitude = np.radians(latitude_deg)
    return np.sin(latitude) * math.sin(declination) + np.cos(latitude) * math.cos(declination) * np.cos(hour_angle)


def clear_sky_radiation_w_m2(sin_elevation: np.ndarray) -> np.ndarray:
    """Global horizontal irradiance under a clear sky (Haurwitz)."""
    sin_h = np.clip(sin_elevation, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        attenuation = np.where(sin_h > 0.01, np.exp(-0.057 / np.maximum(sin_h, 0.01)), 0.0)
    return 1098.0 * sin_h * attenuation


def saturation_vapour_pressure_hpa(temperature_c: np.ndarray) -> np.ndarray:
    """Magnus formula over water."""
    return 6.112 * np.exp(17.62 * temperature_c / (243.12 + temperature_c))


def station_pressure_hpa(sea_level_hpa: np.ndarray, altitude_m: np.ndarray) -> np.ndarray:
    """Barometric pressure at the station's height (international barometric formula)."""
    return sea_level_hpa * (1.0 - 2.25577e-5 * altitude_m) ** 5.25588


# --- weather ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeatherState:
    """The slow, hidden drivers of the district's weather: one regional pattern plus per-town wrinkles."""

    synoptic: float  # regional wetness/low-pressure index, ~N(0, 1), persists ~1.25 days
    temperature_anomaly_c: float  # regional warm/cold spell, ~N(0, 2.5 K), persists ~4 days
    wind_noise: float  # regional gustiness, ~N(0, 1), persists ~12 h
    wind_direction_deg: float  # regional flow direction, wanders around the prevailing south-west
    local_rain: np.ndarray  # per town, ~N(0, 1), persists ~2 h (showers hit one valley, miss the next)
    local_cloud: np.ndarray  # per town, ~N(0, 1), persists ~3 h


WEATHER_SHOCKS_PER_STEP = 4  # regional shocks; plus 2 per town


@dataclass(frozen=True)
class WeatherObservation:
    """What a weather station would measure per town at one instant; rain is over the step that ended then."""

    air_temperature_c: np.ndarray
    humidity_pct: np.ndarray
    pressure_hpa: np.ndarray
    rain_mm: np.ndarray
    wind_speed_ms: np.ndarray
    wind_direction_deg: np.ndarray
    solar_radiation_w_m2: np.ndarray
    cloud_cover: np.ndarray


def initial_weather(n_towns: int, shocks: np.ndarray) -> WeatherState:
    """A weather state drawn from the stationary distribution; `shocks` are 4 + 2·n_towns standard normals."""
    regional, local = shocks[:WEATHER_SHOCKS_PER_STEP], shocks[WEATHER_SHOCKS_PER_STEP:]
    return WeatherState(
        synoptic=float(regional[0]),
        temperature_anomaly_c=2.5 * float(regional[1]),
        wind_noise=float(regional[2]),
        wind_direction_deg=(240.0 + 50.0 * float(regional[3])) % 360.0,
        local_rain=local[:n_towns].copy(),
        local_cloud=local[n_towns : 2 * n_towns].copy(),
    )


def _ar1(value: float | np.ndarray, tau_s: float, sd: float, shock: float | np.ndarray, dt_s: float):
    keep = math.exp(-dt_s / tau_s)
    return value * keep + sd * math.sqrt(1.0 - keep * keep) * shock


def advance_weather(state: WeatherState, shocks: np.ndarray, dt_s: float = STEP_S) -> WeatherState:
    """The hidden weather drivers one step later; `shocks` are 4 + 2·n_towns standard normals."""
    n_towns = state.local_rain.shape[0]
    regional, local = shocks[:WEATHER_SHOCKS_PER_STEP], shocks[WEATHER_SHOCKS_PER_STEP:]
    # The flow direction drifts back towards the prevailing south-west.
    direction = state.wind_direction_deg + 0.05 * ((240.0 - state.wind_direction_deg + 180.0) % 360.0 - 180.0) * (
        dt_s / 3600.0
    )
    return WeatherState(
        synoptic=float(_ar1(state.synoptic, 30 * 3600.0, 1.0, float(regional[0]), dt_s)),
        temperature_anomaly_c=float(_ar1(state.temperature_anomaly_c, 4 * 86400.0, 2.5, float(regional[1]), dt_s)),
        wind_noise=float(_ar1(state.wind_noise, 12 * 3600.0, 1.0, float(regional[2]), dt_s)),
        wind_direction_deg=float((direction + 4.0 * float(regional[3]) * math.sqrt(dt_s / 600.0)) % 360.0),
        local_rain=_ar1(state.local_rain, 2 * 3600.0, 1.0, local[:n_towns], dt_s),
        local_cloud=_ar1(state.local_cloud, 3 * 3600.0, 1.0, local[n_towns : 2 * n_towns], dt_s),
    )


def observe_weather(
    state: WeatherState,
    moment: datetime,
    latitude_deg: np.ndarray,
    longitude_deg: np.ndarray,
    altitude_m: np.ndarray,
    dt_s: float = STEP_S,
) -> WeatherObservation:
    """The weather per town at `moment`, and the rain that fell in the `dt_s` before it."""
    doy = day_of_year(moment)
    season = summerness(doy)
    cloud = 1.0 / (1.0 + np.exp(-(1.4 * state.synoptic + 0.6 * state.local_cloud + 0.6 - 1.2 * season)))

    # Rain when the regional pattern and the local shower field together pass a threshold; summer rain is rarer
    # but heavier (convection). Calibrated to ~750 mm a year, wetter in summer and winter than in spring.
    wetness = 0.7 * state.synoptic + 0.714 * state.local_rain
    threshold = 1.2 + 0.25 * season
    rain_rate_mm_h = np.maximum(wetness - threshold, 0.0) * 1.7 * (1.0 + 0.5 * season)
    raining = rain_rate_mm_h > 0.0
    cloud = np.where(raining, np.maximum(cloud, 0.9), cloud)

    sin_elevation = solar_elevation_sin(moment, latitude_deg, longitude_deg)
    radiation = clear_sky_radiation_w_m2(sin_elevation) * (1.0 - 0.75 * cloud**3.4)
    radiation = np.where(raining, radiation * 0.4, radiation)

    solar_hour = ((doy - math.floor(doy)) * 24.0 + np.asarray(longitude_deg) / 15.0) % 24.0
    diurnal = np.cos(2.0 * math.pi * (solar_hour - 15.0) / 24.0)  # +1 at 15 h, -1 at 3 h
    half_range = 3.0 + 4.0 * season
    temperature = (
        climatological_temperature_c(doy, 150.0)
        - 0.0065 * (np.asarray(altitude_m) - 150.0)
        + state.temperature_anomaly_c
        + half_range * (1.0 - 0.6 * cloud) * diurnal
        - 1.5 * raining
    )

    dewpoint_depression = 1.0 + (2.0 + 6.0 * season) * (1.0 - cloud) * (0.5 + 0.5 * diurnal)
    dewpoint_depression = np.where(raining, 0.3, dewpoint_depression)
    humidity = 100.0 * saturation_vapour_pressure_hpa(temperature - dewpoint_depression)
    humidity = np.clip(humidity / saturation_vapour_pressure_hpa(temperature), 5.0, 100.0)

    sea_level = 1015.0 - 9.0 * state.synoptic
    pressure = station_pressure_hpa(np.full_like(cloud, sea_level), np.asarray(altitude_m, dtype=float))

    daytime_mixing = 1.0 + 0.35 * np.clip(sin_elevation, 0.0, 1.0)
    wind_speed = (2.2 + 1.0 * (1.0 - season) + 0.8 * max(state.synoptic, 0.0)) * daytime_mixing
    wind_speed = wind_speed * math.exp(0.35 * state.wind_noise)
    # Valleys channel the flow a little differently per town; a fixed twist per town keeps that stable.
    twist = 12.0 * np.sin(np.arange(cloud.shape[0]) * 2.3)
    direction = (state.wind_direction_deg + twist) % 360.0

    return WeatherObservation(
        air_temperature_c=temperature,
        humidity_pct=humidity,
        pressure_hpa=pressure,
        rain_mm=rain_rate_mm_h * dt_s / 3600.0,
        wind_speed_ms=np.maximum(wind_speed, 0.0),
        wind_direction_deg=direction,
        solar_radiation_w_m2=np.maximum(radiation, 0.0),
        cloud_cover=cloud,
    )


def without_rain(observation: WeatherObservation) -> WeatherObservation:
    """The same weather with the rain taken out (for dry-spell what-ifs)."""
    return replace(observation, rain_mm=np.zeros_like(observation.rain_mm))


# --- evapotranspiration and the root zone ----------------------------------------------------------------------


def reference_et_mm(air_temperature_c: np.ndarray, solar_radiation_w_m2: np.ndarray, dt_s: float) -> np.ndarray:
    """Reference evapotranspiration ET0 over `dt_s`, radiation form of Hargreaves (1975).

    ET0 = 0.0135 · (T + 17.8) · Rs, Rs as evaporation equivalent (mm): a sunny July day gives ~5–6 mm,
    a grey November day ~0.3 mm.
    """
    radiation_mj = np.maximum(solar_radiation_w_m2, 0.0) * dt_s / 1e6
    return np.maximum(0.0135 * (np.asarray(air_temperature_c) + 17.8) * 0.408 * radiation_mj, 0.0)


@dataclass(frozen=True)
class RootZone:
    """Soil and plant parameters of the root zone a soil-moisture probe sits in (arrays, one entry per site)."""

    field_capacity: np.ndarray  # m³/m³
    wilting_point: np.ndarray  # m³/m³
    saturation: np.ndarray  # m³/m³
    depth_mm: np.ndarray  # root-zone depth the probe represents
    crop_factor: np.ndarray  # Kc
    depletion_fraction: np.ndarray  # FAO-56 p: share of available water used before stress sets in
    rain_catch: np.ndarray  # >1 where paving drains onto the tree pit
    area_m2: np.ndarray  # surface watering is spread over

    def readily_available_threshold(self) -> np.ndarray:
        """The water content below which the plant is stressed (θ at depletion = RAW)."""
        return self.field_capacity - self.depletion_fraction * (self.field_capacity - self.wilting_point)


DRAINAGE_TAU_S = 18 * 3600.0
RESIDUAL_VWC = 0.03


def water_stress_coefficient(vwc: np.ndarray, zone: RootZone) -> np.ndarray:
    """FAO-56 Ks: 1 while water is readily available, falling linearly to 0 at the wilting point."""
    span = (1.0 - zone.depletion_fraction) * (zone.field_capacity - zone.wilting_point)
    return np.clip((vwc - zone.wilting_point) / span, 0.0, 1.0)


def step_root_zone(vwc: np.ndarray, zone: RootZone, et0_mm: np.ndarray, rain_mm: np.ndarray, dt_s: float) -> np.ndarray:
    """Volumetric water content after one step of evapotranspiration, rain and drainage."""
    uptake_mm = zone.crop_factor * water_stress_coefficient(vwc, zone) * et0_mm
    vwc = vwc - uptake_mm / zone.depth_mm
    vwc = np.minimum(vwc + zone.rain_catch * rain_mm / zone.depth_mm, zone.saturation)  # the rest runs off
    surplus = np.maximum(vwc - zone.field_capacity, 0.0)
    vwc = vwc - surplus * (1.0 - math.exp(-dt_s / DRAINAGE_TAU_S))
    return np.maximum(vwc, RESIDUAL_VWC)


def add_irrigation(vwc: np.ndarray, zone: RootZone, litres: np.ndarray) -> np.ndarray:
    """Water content after pouring `litres` evenly over each site's root-zone area (excess runs off)."""
    depth_added_mm = np.asarray(litres) / zone.area_m2  # 1 L on 1 m² is 1 mm
    return np.minimum(vwc + depth_added_mm / zone.depth_mm, zone.saturation)


SOIL_TEMPERATURE_TAU_S = 20 * 3600.0


def step_soil_temperature(soil_c: np.ndarray, air_c: np.ndarray, dt_s: float) -> np.ndarray:
    """Soil at probe depth follows the air, damped and delayed (≈ 20 h), a little warmer under paving."""
    keep = math.exp(-dt_s / SOIL_TEMPERATURE_TAU_S)
    return soil_c * keep + (air_c + 1.0) * (1.0 - keep)


def bulk_conductivity_us_cm(vwc: np.ndarray, zone: RootZone, soil_c: np.ndarray, reference_us_cm: np.ndarray):
    """Bulk electrical conductivity: rises with water content and temperature (no temperature compensation)."""
    wetness = np.clip(vwc / zone.field_capacity, 0.0, 1.6)
    return reference_us_cm * wetness**1.5 * np.maximum(1.0 + 0.02 * (soil_c - 25.0), 0.2)


# --- waste bins ------------------------------------------------------------------------------------------------

# Deposits per weekday (Monday first): weekend waste goes out on Monday, Sunday is quiet. Mean 1.
WEEKDAY_FACTOR = np.array([1.30, 1.00, 0.90, 0.90, 1.00, 1.10, 0.80])
# Deposits per local hour: nothing at night, morning and evening peaks. Normalised to mean 1.
_HOURLY = np.array([0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 1.2, 1.7, 1.6, 1.4, 1.3, 1.3,
                    1.4, 1.3, 1.2, 1.2, 1.3, 1.5, 1.6, 1.5, 1.1, 0.7, 0.4, 0.2])  # fmt: skip
HOURLY_FACTOR = _HOURLY / _HOURLY.mean()
MAX_FILL = 1.2  # an overflowing bin: bags beside it, lid open


def season_factor(waste_types: np.ndarray, doy: float) -> np.ndarray:
    """Seasonal multiplier per bin; `waste_types` index ("residual", "paper", "organic", "glass")."""
    season = summerness(doy)
    by_type = np.array(
        [
            1.0,  # residual
            1.0 + 0.15 * (1.0 - season),  # paper: parcels and packaging in the dark months
            0.75 + 0.7 * season,  # organic: garden waste in summer
            0.9 + 0.25 * season,  # glass: summer drinks
        ]
    )
    return by_type[waste_types]


def fill_increment(
    daily_rate: np.ndarray,
    waste_types: np.ndarray,
    local_weekday: int,
    local_hour: int,
    doy: float,
    burst: np.ndarray,
    dt_s: float,
) -> np.ndarray:
    """How much each bin's fill ratio rises in one step; `burst` is noise with mean 1 (deposits come in bags)."""
    pattern = WEEKDAY_FACTOR[local_weekday] * HOURLY_FACTOR[local_hour]
    return daily_rate * season_factor(waste_types, doy) * pattern * burst * dt_s / 86400.0


def ultrasonic_distance_m(
    fill_ratio: np.ndarray, to_bottom_m: np.ndarray, to_full_m: np.ndarray, noise_m: np.ndarray
) -> np.ndarray:
    """What the ultrasonic sensor under the lid reads for a fill ratio (noisy, limited to its 3 cm blind zone)."""
    distance = to_bottom_m - fill_ratio * (to_bottom_m - to_full_m) + noise_m
    return np.clip(distance, 0.03, to_bottom_m + 0.05)


# --- batteries -------------------------------------------------------------------------------------------------


def lithium_cell_voltage(resting_v: np.ndarray, air_temperature_c: np.ndarray) -> np.ndarray:
    """A Li-SOCl2 cell's loaded voltage: flat while charged, sagging in the cold."""
    return resting_v - 0.004 * np.maximum(-np.asarray(air_temperature_c), 0.0)


# --- calibrated bin sites (see README "How the simulation is calibrated") -------------------------------------

# Deposits per weekday by the kind of place a bin stands (Monday first, mean about 1): commuters at bus stops on
# workdays, families at playgrounds and walkers at the village edge at weekends, the market square on Saturday.
SITE_WEEKDAY_FACTOR: dict[str, tuple[float, ...]] = {
    "street": (1.30, 1.00, 0.90, 0.90, 1.00, 1.10, 0.80),
    "bus_stop": (1.20, 1.15, 1.15, 1.15, 1.20, 0.65, 0.50),
    "playground": (0.80, 0.80, 0.85, 0.85, 1.00, 1.40, 1.30),
    "village_edge": (0.75, 0.75, 0.75, 0.80, 0.95, 1.40, 1.60),
    "market_square": (0.90, 0.90, 0.90, 0.90, 1.00, 1.60, 0.80),
}
EVENT_FILL_FACTOR = 3.0  # a village fête, Kirmes or market: bins near it fill three times as fast for its days


def site_fill_increment(
    daily_rate: np.ndarray,
    weekday_factor: np.ndarray,
    waste_types: np.ndarray,
    local_hour: int,
    doy: float,
    burst: np.ndarray,
    dt_s: float,
) -> np.ndarray:
    """How much each bin's fill ratio rises in one step, with each bin's own weekday factor for today."""
    return (
        daily_rate
        * season_factor(waste_types, doy)
        * weekday_factor
        * HOURLY_FACTOR[local_hour]
        * burst
        * dt_s
        / 86400.0
    )
