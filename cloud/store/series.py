"""The time-series store interface: InfluxDB in production, SQLite for the demo and small installs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from flurfunk.contracts import Quantity, Reading

# How many assets one read of `query_many` names at most; longer lists are read in several (SQL parameter limits,
# InfluxQL statement length and answer size stay bounded).
ASSETS_PER_QUERY = 250


class SeriesStoreUnavailableError(RuntimeError):
    """The store could not take or give data right now (down, slow, disk full); the caller retries later."""


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    time: datetime
    value: float


@dataclass(frozen=True, slots=True)
class SeriesArrays:
    """One asset's points of one quantity as columns, oldest first: seconds since the epoch (float64, exact to the
    microsecond for any date InfluxDB stores) and values (float64). What the planner computes with; building a
    datetime per point cost more than the read itself."""

    times_s: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.values.size)

    def points(self) -> list[SeriesPoint]:
        return [
            SeriesPoint(time=datetime.fromtimestamp(moment, UTC), value=float(value))
            for moment, value in zip(self.times_s.tolist(), self.values.tolist(), strict=True)
        ]


def arrays_by_asset(
    assets: Sequence[str], times_us: Sequence[float], values: Sequence[float]
) -> dict[str, SeriesArrays]:
    """Rows of (asset, time in µs, value), each asset's rows together, as columns per asset, each sorted by time
    (stable: two devices' points at the same time keep the store's order)."""
    times = np.asarray(times_us, dtype=np.float64)
    numbers = np.asarray(values, dtype=np.float64)
    grouped: dict[str, SeriesArrays] = {}
    first = 0
    for index in range(1, len(assets) + 1):
        if index < len(assets) and assets[index] == assets[first]:
            continue
        order = np.argsort(times[first:index], kind="stable")
        grouped[assets[first]] = SeriesArrays(times[first:index][order] / 1e6, numbers[first:index][order])
        first = index
    return grouped


def asset_chunks(assets: Sequence[str], size: int = ASSETS_PER_QUERY) -> list[list[str]]:
    """The distinct asset ids, sorted, in lists of at most `size`."""
    unique = sorted(set(assets))
    return [unique[start : start + size] for start in range(0, len(unique), size)]


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

    def query_many(
        self, assets: Sequence[str], quantity: Quantity, start: datetime, end: datetime
    ) -> dict[str, SeriesArrays]:
        """Points of many assets of one quantity in [start, end) in one read (a few for long lists), all devices
        merged: per asset that has any, oldest first. Assets without points are absent."""
        ...

    def count(self) -> int:
        """How many points the store holds (for summaries and tests)."""
        ...
