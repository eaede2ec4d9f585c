"""What a decoder returns: the vendor codec's fields as they are, and the normalised measurements."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from flurfunk.contracts import Quantity, Reading


class Measurement(NamedTuple):
    """One normalised fact, in the unit of its quantity (`Quantity.unit`)."""

    quantity: Quantity
    value: float


class Decoded(NamedTuple):
    """One decoded uplink.

    `fields` is exactly the `data` object the vendor's own JS codec returns for the same bytes (after a JSON round
    trip: integral numbers are ints, strings stay strings); `measurements` are the facts Flurfunk works with.
    (A named tuple, not a dataclass: a decoder makes one per uplink, and this is the cheapest immutable record.)
    """

    model_id: str
    f_port: int
    fields: dict[str, Any]
    measurements: tuple[Measurement, ...]
    warnings: tuple[str, ...] = ()

    def readings(self, device: str, asset: str, time: datetime) -> list[Reading]:
        """The measurements as contract readings of `asset`, taken by `device` at `time`."""
        return Reading.from_trusted_values(device, asset, time, self.measurements)

    def value(self, quantity: Quantity) -> float | None:
        """The measured value of `quantity`, or None when this uplink does not carry it."""
        for measurement in self.measurements:
            if measurement.quantity is quantity:
                return measurement.value
        return None
