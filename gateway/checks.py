"""Edge checks on decoded readings, as pure functions: physical ranges, bin fill ratio, a plausible clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flurfunk.contracts import Asset, AssetKind, Quantity, Reading

OUT_OF_RANGE = "out_of_range"
CLOCK_UNSYNCED = "clock_unsynced"

# What the physical world (or the sensor) can produce at all; a value outside is kept but flagged. Generous on
# purpose: these catch broken sensors and decoding mistakes, not unusual weather.
PHYSICAL_RANGES: dict[Quantity, tuple[float, float]] = {
    Quantity.FILL_RATIO: (0.0, 1.0),
    Quantity.DISTANCE_M: (0.0, 20.0),
    Quantity.SOIL_VWC: (0.0, 1.0),
    Quantity.SOIL_TENSION_KPA: (0.0, 2_000.0),
    Quantity.SOIL_TEMPERATURE_C: (-40.0, 70.0),
    Quantity.SOIL_EC_US_CM: (0.0, 50_000.0),
    Quantity.AIR_TEMPERATURE_C: (-50.0, 60.0),
    Quantity.HUMIDITY_PCT: (0.0, 100.0),
    Quantity.PRESSURE_HPA: (300.0, 1_100.0),
    Quantity.RAIN_MM: (0.0, 100_000.0),  # some stations report a running total, not an interval sum
    Quantity.WIND_SPEED_MS: (0.0, 85.0),
    Quantity.WIND_DIRECTION_DEG: (0.0, 360.0),
    Quantity.SOLAR_RADIATION_W_M2: (0.0, 2_000.0),
    Quantity.ILLUMINANCE_LUX: (0.0, 200_000.0),
    Quantity.DEVICE_TEMPERATURE_C: (-40.0, 125.0),
    Quantity.BATTERY_V: (0.0, 15.0),
    Quantity.BATTERY_PCT: (0.0, 100.0),
}

# A bin reading may stray this far (as a share of the usable height) past empty or full before it counts as
# implausible: the echo off uneven waste and the lid's tolerance are that coarse.
FILL_MARGIN = 0.05
EARLIEST_PLAUSIBLE_TIME = datetime(2020, 1, 1, tzinfo=UTC)
MAX_CLOCK_LEAD = timedelta(days=1)


def with_flags(reading: Reading, *flags: str) -> Reading:
    """The reading with `flags` added (validated again, so flags stay sorted and unique)."""
    if not flags:
        return reading
    return Reading.model_validate({**reading.model_dump(), "flags": (*reading.flags, *flags)})


def is_physically_possible(quantity: Quantity, value: float) -> bool:
    """Whether `value` lies within what `quantity` can physically be (True when no range is known)."""
    bounds = PHYSICAL_RANGES.get(quantity)
    return bounds is None or bounds[0] <= value <= bounds[1]


def check_physical_range(reading: Reading) -> Reading:
    """The reading, flagged "out_of_range" if its value is physically impossible."""
    if is_physically_possible(reading.quantity, reading.value):
        return reading
    return with_flags(reading, OUT_OF_RANGE)


@dataclass(frozen=True)
class FillEstimate:
    """A bin's fill ratio from one distance reading: clamped to [0, 1], `implausible` if the raw value was not."""

    fill_ratio: float
    raw: float
    implausible: bool


def has_fill_geometry(asset: Asset) -> bool:
    """Whether the asset is a bin whose empty and full distances are known and make sense."""
    return (
        asset.kind is AssetKind.BIN
        and asset.sensor_to_bottom_m is not None
        and asset.sensor_to_full_m is not None
        and asset.sensor_to_bottom_m > asset.sensor_to_full_m
    )


def estimate_fill(distance_m: float, sensor_to_bottom_m: float, sensor_to_full_m: float) -> FillEstimate:
    """Fill ratio of a bin from the ultrasonic distance to the waste: 0 at the bottom, 1 at the full mark."""
    usable_height = sensor_to_bottom_m - sensor_to_full_m
    if usable_height <= 0:
        raise ValueError(f"sensor_to_bottom_m {sensor_to_bottom_m} must exceed sensor_to_full_m {sensor_to_full_m}")
    raw = (sensor_to_bottom_m - distance_m) / usable_height
    return FillEstimate(
        fill_ratio=min(1.0, max(0.0, raw)),
        raw=raw,
        implausible=raw < -FILL_MARGIN or raw > 1.0 + FILL_MARGIN,
    )


def fill_reading(distance: Reading, asset: Asset) -> Reading | None:
    """A fill_ratio reading derived from a distance_m reading of a bin, or None when the asset lacks geometry."""
    if distance.quantity is not Quantity.DISTANCE_M or not has_fill_geometry(asset):
        return None
    assert asset.sensor_to_bottom_m is not None and asset.sensor_to_full_m is not None  # has_fill_geometry said so
    estimate = estimate_fill(distance.value, asset.sensor_to_bottom_m, asset.sensor_to_full_m)
    flags = set(distance.flags)
    if estimate.implausible:
        flags.add(OUT_OF_RANGE)
    return Reading(
        device=distance.device,
        asset=distance.asset,
        quantity=Quantity.FILL_RATIO,
        value=estimate.fill_ratio,
        time=distance.time,
        anomaly_score=distance.anomaly_score,
        flags=tuple(flags),
    )


def clock_is_plausible(moment: datetime, now: datetime) -> bool:
    """False for times a synced clock cannot produce: before 2020 or more than a day ahead of `now`."""
    return EARLIEST_PLAUSIBLE_TIME <= moment <= now + MAX_CLOCK_LEAD
