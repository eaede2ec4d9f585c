"""Milesight EM310-UDL ultrasonic distance sensor (bin fill level): channel/type TLV on fPort 85.

Reference: vendor/milesight-iot/em310-udl.js in the TTN device repository (2021 codec, as of upstream 96abc53).
"""

from __future__ import annotations

from flurfunk.contracts import Quantity

from ..layout import AsLabel, Channel, ChannelLayout, DeviceModel, Field, Measure, Scale, Word

MODEL = DeviceModel(
    model_id="milesight-iot/em310-udl",
    vendor_codec="vendor/milesight-iot/em310-udl.js",
    uplink_port=85,
    layout=ChannelLayout(
        channels=(
            Channel(
                0x01,
                0x75,
                Field("battery", Word.U8, measure=Measure(Quantity.BATTERY_PCT, low=0, high=100)),
            ),
            Channel(
                0x03,
                0x82,
                Field(
                    "distance",  # mm
                    Word.U16LE,
                    measure=Measure(Quantity.DISTANCE_M, scale=Scale(divisor=1000), low=0),
                ),
            ),
            Channel(
                0x04,
                0x00,
                Field(
                    "tilt",
                    Word.U8,
                    shown=AsLabel(labels=((0, "normal"),), otherwise="tilt"),
                    # an upright sensor is the usual case; virtual sensors need not say so
                    measure=Measure(Quantity.TILT, flag=True, default=0.0),
                ),
            ),
        )
    ),
)
