"""The time-series store interface: InfluxDB in production, SQLite for the demo and small installs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from flurfunk.contracts import Quantity, Reading


class SeriesStoreUnavailableError(RuntimeError):
    """The store could not take or give data right now (down, slow, disk full); the caller retries later."""


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    time: datetime
    value: float


class SeriesStore(Protocol):
    def write(self, readings: Sequence[Reading]) -> None:
        """Store readings durably before returning. Idempotent: a point is identified by
        (asset, device, quantity, time), and writing it again overwrites it with the same value.
        Raises SeriesStoreUnavailableError when the data is not known to be durable."""
        ...

    def query(
        self,
        asset: str,
        quantity: Quantity,
        start: datetime,
        end: datetime,
        every: timedelta | None = None,
    ) -> list[SeriesPoint]:
        """Points of one asset and quantity in [start, end), oldest first; with `every`, the mean per window."""
        ...

    def count(self) -> int:
        """How many points the store holds (for summaries and tests)."""
        ...
