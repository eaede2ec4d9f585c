"""What a decoder returns: the vendor codec's fields as they are, and the normalised measurements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, overload

from flurfunk.contracts import Quantity, Reading


class Measurement(NamedTuple):
    """One normalised fact, in the unit of its quantity (`Quantity.unit`)."""

    quantity: Quantity
    value: float


class Measurements(Sequence[Measurement]):
    """The measurements of a compiled decoder as two columns: quantities and values side by side.

    The compiled decoders guarantee what a Reading requires of them — Quantity members, finite floats — so
    `Decoded.readings` builds readings from the columns without a Measurement object or a check per value
    (tests/test_decoders_properties.py holds every decoder to it). Anything else sees the tuple of Measurements
    it equals (iteration, indexing, ==, repr), made on first use.
    """

    __slots__ = ("_tuple", "quantities", "values")

    def __init__(self, quantities: tuple[Quantity, ...], values: tuple[float, ...]) -> None:
        self.quantities = quantities
        self.values = values
        self._tuple: tuple[Measurement, ...] | None = None

    def as_tuple(self) -> tuple[Measurement, ...]:
        if self._tuple is None:
            self._tuple = tuple(map(Measurement, self.quantities, self.values))
        return self._tuple

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Measurement: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Measurement, ...]: ...

    def __getitem__(self, index: int | slice) -> Measurement | tuple[Measurement, ...]:
        return self.as_tuple()[index]

    def __iter__(self) -> Iterator[Measurement]:
        return iter(self.as_tuple())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Measurements):
            other = other.as_tuple()
        return self.as_tuple() == other

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __repr__(self) -> str:
        return repr(self.as_tuple())


class Decoded(NamedTuple):
    """One decoded uplink.

    `fields` is exactly the `data` object the vendor's own JS codec returns for the same bytes (after a JSON round
    trip: integral numbers are ints, strings stay strings); `measurements` are the facts Flurfunk works with.
    (A named tuple, not a dataclass: a decoder makes one per uplink, and this is the cheapest immutable record.)
    """

    model_id: str
    f_port: int
    fields: dict[str, Any]
    measurements: tuple[Measurement, ...] | Measurements
    warnings: tuple[str, ...] = ()

    def readings(self, device: str, asset: str, time: datetime) -> list[Reading]:
        """The measurements as contract readings of `asset`, taken by `device` at `time`."""
        measurements = self.measurements
        if type(measurements) is Measurements:  # a compiled decoder's: checked when made
            return Reading.from_checked_values(device, asset, time, measurements.quantities, measurements.values)
        return Reading.from_trusted_values(device, asset, time, measurements)

    def value(self, quantity: Quantity) -> float | None:
        """The measured value of `quantity`, or None when this uplink does not carry it."""
        for measurement in self.measurements:
            if measurement.quantity is quantity:
                return measurement.value
        return None
