"""Dragino LSE01 soil moisture, temperature and EC sensor: eleven fixed bytes on fPort 2.

Reference: vendor/dragino/lse01.js in the TTN device repository; the LSE01 user manual, section 2.3.
"""

from __future__ import annotations

from flurfunk.contracts import Quantity

from ..layout import AsFixed, DeviceModel, Field, FixedLayout, Measure, Scale, Word

MODEL = DeviceModel(
    model_id="dragino/lse01",
    vendor_codec="vendor/dragino/lse01.js",
    uplink_port=2,
    ports=frozenset({2}),
    layout=FixedLayout(
        values=(
            Field(
                "Bat",  # mV in the low 14 bits
                Word.U16BE,
                mask=0x3FFF,
                scale=Scale(divisor=1000),
                measure=Measure(Quantity.BATTERY_V, low=0),
            ),
            Field(
                # an optional external probe; without one the device reports 0 (what the encoder sends)
                "TempC_DS18B20",
                Word.U16BE,
                shown=AsFixed(1),
                scale=Scale(divisor=10, negative_bias=0x10000),
            ),
            Field(
                "water_SOIL",  # % (V/V)
                Word.U16BE,
                shown=AsFixed(2),
                scale=Scale(divisor=100),
                measure=Measure(Quantity.SOIL_VWC, scale=Scale(divisor=10_000), low=0, high=1),
            ),
            Field(
                "temp_SOIL",
                Word.U16BE,
                shown=AsFixed(2),
                scale=Scale(divisor=100, negative_bias=0xFFFF),
                measure=Measure(Quantity.SOIL_TEMPERATURE_C, low=-40, high=85),
            ),
            Field("conduct_SOIL", Word.U16BE, measure=Measure(Quantity.SOIL_EC_US_CM, low=0)),
        ),
        # byte 10 is not read by the vendor codec; a device without interrupt events sends 0
        trailer=b"\x00",
    ),
)
