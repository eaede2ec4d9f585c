"""What the two InfluxDB series stores (v1 HTTP API, v2 `influxdb-client`) share: the lifecycle as a context
manager, time conversion, request chunking and the query point limit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from cloud.store.series import SeriesPoint
from flurfunk.contracts import Quantity

__all__ = [
    "EPOCH",
    "LINES_PER_REQUEST",
    "MICROSECOND",
    "QUERY_POINT_LIMIT",
    "InfluxStoreBase",
    "check_point_count",
    "chunks",
    "epoch_us",
    "limited_points",
]

LINES_PER_REQUEST = 5_000
# Answers larger than this are refused rather than parsed: a caller asking for more wants `every`.
QUERY_POINT_LIMIT = 1_000_000

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def epoch_us(moment: datetime, name: str) -> int:
    """Microseconds since the epoch; a naive datetime is refused, as its zone would be a guess."""
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone (UTC), got a naive datetime")
    return (moment - EPOCH) // MICROSECOND


def chunks(lines: list[str], size: int = LINES_PER_REQUEST) -> Iterator[list[str]]:
    for start in range(0, len(lines), size):
        yield lines[start : start + size]


def limited_points(points: list[SeriesPoint], asset: str, quantity: Quantity) -> list[SeriesPoint]:
    """`points` oldest first, or ValueError when there are more than QUERY_POINT_LIMIT of them."""
    check_point_count(len(points), asset, quantity)
    points.sort(key=lambda point: point.time)
    return points


def check_point_count(count: int, asset: str, quantity: Quantity) -> None:
    """ValueError when one asset's answer holds more than QUERY_POINT_LIMIT points."""
    if count > QUERY_POINT_LIMIT:
        raise ValueError(
            f"more than {QUERY_POINT_LIMIT} points of {Quantity(quantity).value} for asset {asset!r} in the range "
            "asked; narrow the range or pass `every`"
        )


class InfluxStoreBase(ABC):
    """A store that holds a client: usable as `with Store(...) as store:`, which closes it on the way out."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...
