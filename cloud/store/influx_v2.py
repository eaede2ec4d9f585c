"""The InfluxDB series store over the v2 API through `influxdb-client`: token, org, bucket; line protocol, Flux.

Writes are the same line protocol as the v1 store (`cloud.store.influx_v1.line`: the schema, the tag encoding and
the idempotence are identical), gzip-compressed, synchronous, microsecond precision, at most `LINES_PER_REQUEST`
lines per request; `write` returns only when the server answered 204. Queries are Flux (`/api/v2/query`).

What is proven here against which server (see cloud/README.md, "Time series schema"): the write path against
VictoriaMetrics' `/api/v2/write`, which is what Debian ships; the Flux query path against no real server (neither
InfluxDB 2.x nor 3.x can be installed on the project's machines) — InfluxDB 2.x and 3.x also serve the v1
`/query` endpoint, so an installation that must be sure can point `InfluxV1SeriesStore` at the same server.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import urllib3.exceptions
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from cloud.store.influx_common import (
    MICROSECOND,
    QUERY_POINT_LIMIT,
    InfluxStoreBase,
    check_point_count,
    chunks,
    epoch_us,
    limited_points,
)
from cloud.store.influx_v1 import line, tag_value
from cloud.store.series import SeriesArrays, SeriesPoint, SeriesStoreUnavailableError, arrays_by_asset, asset_chunks
from flurfunk.contracts import Quantity, Reading

__all__ = ["InfluxV2SeriesStore", "count_query", "flux_string", "many_series_query", "series_query"]

# The whole time range InfluxDB can store, for "all points" (Flux has no unbounded range).
_ALL_TIME = "start: 1677-09-22T00:00:00Z, stop: 2262-04-10T00:00:00Z"


def flux_string(text: str) -> str:
    """A double-quoted Flux string literal; `${` is escaped too, as Flux would interpolate it."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("${", "\\${")
    )
    return f'"{escaped}"'


def _flux_time(moment: datetime, name: str) -> str:
    return f"time(v: {epoch_us(moment, name) * 1000})"


def series_query(
    bucket: str, asset: str, quantity: Quantity, start: datetime, end: datetime, every: timedelta | None = None
) -> str:
    """The Flux for `SeriesStore.query`: points of one asset and quantity in [start, end), all devices merged."""
    flux = (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {_flux_time(start, 'start')}, stop: {_flux_time(end, 'end')})\n"
        f"  |> filter(fn: (r) => r._measurement == {flux_string(Quantity(quantity).value)} and "
        f'r._field == "value" and r.asset == {flux_string(tag_value(asset))})\n'
        '  |> group(columns: ["asset"])\n'
        '  |> sort(columns: ["_time"])\n'
    )
    if every is not None:
        every_us = every // MICROSECOND
        if every_us <= 0:
            raise ValueError(f"every must be at least one microsecond, got {every}")
        # Windows align to the epoch as in InfluxQL and the SQLite store; each point is stamped with its window start.
        flux += f'  |> aggregateWindow(every: {every_us}us, fn: mean, createEmpty: false, timeSrc: "_start")\n'
    return flux + f"  |> limit(n: {QUERY_POINT_LIMIT + 1})"


def many_series_query(bucket: str, assets: Sequence[str], quantity: Quantity, start: datetime, end: datetime) -> str:
    """The Flux for `SeriesStore.query_many`: points of the assets and one quantity in [start, end), one table per
    asset (devices merged), each sorted by time."""
    members = ", ".join(flux_string(tag_value(asset)) for asset in assets)
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {_flux_time(start, 'start')}, stop: {_flux_time(end, 'end')})\n"
        f"  |> filter(fn: (r) => r._measurement == {flux_string(Quantity(quantity).value)} and "
        f'r._field == "value" and contains(value: r.asset, set: [{members}]))\n'
        '  |> group(columns: ["asset"])\n'
        '  |> sort(columns: ["_time"])\n'
        f"  |> limit(n: {QUERY_POINT_LIMIT + 1})"
    )


def count_query(bucket: str) -> str:
    return (
        f"from(bucket: {flux_string(bucket)})\n  |> range({_ALL_TIME})\n"
        '  |> filter(fn: (r) => r._field == "value")\n  |> group()\n  |> count()'
    )


class InfluxV2SeriesStore(InfluxStoreBase):
    """A `SeriesStore` in an InfluxDB 2.x/3.x bucket (or any server of the v2 write API), via `influxdb-client`.

    The bucket must exist (creating buckets needs an all-access token, which the ingest should not hold).
    """

    def __init__(self, url: str, token: str, org: str, bucket: str, timeout_s: float = 10) -> None:
        if not token:
            raise ValueError("the InfluxDB v2 API needs a token (settings: series_token)")
        if not org or not bucket:
            raise ValueError("org and bucket must not be empty")
        self.url = url.rstrip("/")
        self.org = org
        self.bucket = bucket
        self._timeout_s = timeout_s
        # retries=False: a down server must fail this call fast; the gateway retries the whole batch later.
        self._client = InfluxDBClient(
            url=self.url, token=token, org=org, timeout=int(timeout_s * 1000), enable_gzip=True, retries=False
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._query_api = self._client.query_api()

    def __repr__(self) -> str:  # never show the token
        return f"InfluxV2SeriesStore(url={self.url!r}, org={self.org!r}, bucket={self.bucket!r})"

    def close(self) -> None:
        self._client.close()

    def write(self, readings: Sequence[Reading]) -> None:
        lines = [line(reading) for reading in readings]  # all built before any is sent: a bad one fails up front
        for chunk in chunks(lines):
            self._call(
                f"write {len(chunk)} lines",
                lambda chunk=chunk: self._write_api.write(  # type: ignore[misc]
                    bucket=self.bucket, org=self.org, record="\n".join(chunk), write_precision=WritePrecision.US
                ),
            )

    def query(
        self,
        asset: str,
        quantity: Quantity,
        start: datetime,
        end: datetime,
        every: timedelta | None = None,
    ) -> list[SeriesPoint]:
        flux = series_query(self.bucket, asset, quantity, start, end, every)
        if end <= start:
            return []
        tables = self._call("query", lambda: self._query_api.query(flux, org=self.org))
        points = [
            SeriesPoint(time=record.get_time(), value=float(record.get_value()))
            for table in tables
            for record in table.records
            if record.get_value() is not None
        ]
        return limited_points(points, asset, quantity)

    def query_many(
        self, assets: Sequence[str], quantity: Quantity, start: datetime, end: datetime
    ) -> dict[str, SeriesArrays]:
        if end <= start or not assets:
            return {}
        grouped: dict[str, SeriesArrays] = {}
        for chunk in asset_chunks(assets):
            flux = many_series_query(self.bucket, chunk, quantity, start, end)
            asset_of = {tag_value(asset): asset for asset in chunk}
            tables = self._call("query", lambda flux=flux: self._query_api.query(flux, org=self.org))
            names: list[str] = []
            times_us: list[float] = []
            values: list[float] = []
            for table in tables:
                for record in table.records:
                    asset = asset_of.get(str(record.values.get("asset")))
                    if asset is None or record.get_value() is None:
                        continue
                    names.append(asset)
                    times_us.append(epoch_us(record.get_time(), "time"))
                    values.append(float(record.get_value()))
            for asset, arrays in arrays_by_asset(names, times_us, values).items():
                check_point_count(len(arrays), asset, quantity)
                grouped[asset] = arrays
        return grouped

    def count(self) -> int:
        tables = self._call("count", lambda: self._query_api.query(count_query(self.bucket), org=self.org))
        return sum(int(record.get_value()) for table in tables for record in table.records)

    def _call(self, what: str, call: Any) -> Any:
        try:
            return call()
        except ApiException as error:
            message = f"InfluxDB at {self.url} refused to {what} (HTTP {error.status}): {str(error.body)[:500]}"
            if error.status in (400, 413, 422):
                raise ValueError(message) from error
            raise SeriesStoreUnavailableError(message) from error  # 401/403 (token), 404 (bucket), 429, 5xx
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise SeriesStoreUnavailableError(
                f"cannot {what} at InfluxDB {self.url} (down, or no answer within {self._timeout_s} s): {error}"
            ) from error
