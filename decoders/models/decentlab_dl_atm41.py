"""Decentlab DL-ATM41 eleven-parameter weather station (METER ATMOS 41): Decentlab protocol v2, any fPort.

Reference: vendor/decentlab/dl-atm41.js in the TTN device repository. Each sensor value is a 16-bit word
offset by 32768; flag bit 0 announces the 17 ATMOS 41 words, bit 1 the battery voltage.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from flurfunk.contracts import Quantity

from ..layout import (
    AsDescribed,
    DeviceModel,
    Field,
    FlaggedGroupsLayout,
    Measure,
    QuantityValues,
    Scale,
    SensorGroup,
    Word,
)

_SPEED = "m⋅s⁻¹"
_DEGREES = "°"


def _word(divisor: int = 1) -> Scale:
    return Scale(divisor=divisor, offset=32768)


def _vapour_pressure_kpa(values: QuantityValues) -> float:
    # Magnus-Tetens saturation pressure (FAO-56 eq. 11) times relative humidity
    temperature = values[Quantity.AIR_TEMPERATURE_C]
    saturation = 0.6108 * math.exp(17.27 * temperature / (temperature + 237.3))
    return saturation * values[Quantity.HUMIDITY_PCT] / 100


def _wind_component(projection: Callable[[float], float]) -> Callable[[QuantityValues], float]:
    def component(values: QuantityValues) -> float:
        # the vendor's example uplink shows north = speed·cos(direction), east = speed·sin(direction)
        return values[Quantity.WIND_SPEED_MS] * projection(math.radians(values[Quantity.WIND_DIRECTION_DEG]))

    return component


ATMOS41 = SensorGroup(
    values=(
        Field(
            "solar_radiation",
            Word.U16BE,
            shown=AsDescribed("Solar radiation", "W⋅m⁻²"),
            scale=_word(),
            measure=Measure(Quantity.SOLAR_RADIATION_W_M2, low=0),
        ),
        Field(
            "precipitation",
            Word.U16BE,
            shown=AsDescribed("Precipitation", "mm"),
            scale=_word(1000),
            measure=Measure(Quantity.RAIN_MM, low=0),
        ),
        Field("lightning_strike_count", Word.U16BE, shown=AsDescribed("Lightning strike count"), scale=_word()),
        Field(
            "lightning_average_distance",
            Word.U16BE,
            shown=AsDescribed("Lightning average distance", "km"),
            scale=_word(),
        ),
        Field(
            "wind_speed",
            Word.U16BE,
            shown=AsDescribed("Wind speed", _SPEED),
            scale=_word(100),
            measure=Measure(Quantity.WIND_SPEED_MS, low=0),
        ),
        Field(
            "wind_direction",
            Word.U16BE,
            shown=AsDescribed("Wind direction", _DEGREES),
            scale=_word(10),
            measure=Measure(Quantity.WIND_DIRECTION_DEG, low=0, high=360),
        ),
        Field(
            "maximum_wind_speed",
            Word.U16BE,
            shown=AsDescribed("Maximum wind speed", _SPEED),
            scale=_word(100),
            fill=lambda values: values[Quantity.WIND_SPEED_MS],
        ),
        Field(
            "air_temperature",
            Word.U16BE,
            shown=AsDescribed("Air temperature", "°C"),
            scale=_word(10),
            measure=Measure(Quantity.AIR_TEMPERATURE_C, low=-50, high=60),
        ),
        Field(
            "vapor_pressure",
            Word.U16BE,
            shown=AsDescribed("Vapor pressure", "kPa"),
            scale=_word(100),
            fill=_vapour_pressure_kpa,
        ),
        Field(
            "atmospheric_pressure",
            Word.U16BE,
            shown=AsDescribed("Atmospheric pressure", "kPa"),
            scale=_word(100),
            # hPa straight from the word (kPa × 10), so 95.96 kPa is 959.6 hPa, not 959.6000000000001
            measure=Measure(Quantity.PRESSURE_HPA, scale=_word(10), low=500, high=1100),
        ),
        Field(
            "relative_humidity",
            Word.U16BE,
            shown=AsDescribed("Relative humidity", "%"),
            scale=_word(10),
            measure=Measure(Quantity.HUMIDITY_PCT, low=0, high=100),
        ),
        Field(
            "sensor_temperature_internal",
            Word.U16BE,
            shown=AsDescribed("Sensor temperature (internal)", "°C"),
            scale=_word(10),
            # the sensor sits in the same air; a virtual station need not give it separately
            measure=Measure(Quantity.DEVICE_TEMPERATURE_C, default=lambda values: values[Quantity.AIR_TEMPERATURE_C]),
        ),
        Field("x_orientation_angle", Word.U16BE, shown=AsDescribed("X orientation angle", _DEGREES), scale=_word(10)),
        Field("y_orientation_angle", Word.U16BE, shown=AsDescribed("Y orientation angle", _DEGREES), scale=_word(10)),
        Field("compass_heading", Word.U16BE, shown=AsDescribed("Compass heading", _DEGREES), scale=_word()),
        Field(
            "north_wind_speed",
            Word.U16BE,
            shown=AsDescribed("North wind speed", _SPEED),
            scale=_word(100),
            fill=_wind_component(math.cos),
        ),
        Field(
            "east_wind_speed",
            Word.U16BE,
            shown=AsDescribed("East wind speed", _SPEED),
            scale=_word(100),
            fill=_wind_component(math.sin),
        ),
    )
)

BATTERY = SensorGroup(
    values=(
        Field(
            "battery_voltage",
            Word.U16BE,
            shown=AsDescribed("Battery voltage", "V"),
            scale=Scale(divisor=1000),
            measure=Measure(Quantity.BATTERY_V, low=0),
        ),
    )
)

MODEL = DeviceModel(
    model_id="decentlab/dl-atm41",
    vendor_codec="vendor/decentlab/dl-atm41.js",
    uplink_port=1,
    layout=FlaggedGroupsLayout(protocol_version=2, groups=(ATMOS41, BATTERY)),
)
