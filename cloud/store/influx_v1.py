"""The InfluxDB series store over the v1 HTTP API (`/write` line protocol, `/query` InfluxQL).

Every InfluxDB serves this API: 1.x natively, 2.x and 3.x for compatibility, so one adapter covers them all.

Schema: one measurement per quantity (`fill_ratio`, `soil_tension_kpa`, …), tags `asset` and `device`, fields
`value` (float), `anomaly_score` (float) and `flags` (string, comma-separated, empty when none: always written, so
a gateway's revised verdict that clears a reading's flags overwrites the old ones); timestamps are the
reading's own time in microseconds, never the server's arrival time, so data buffered for days lands where it
belongs. A point's identity in InfluxDB is measurement + tag set + time, which is exactly the reading's identity
(quantity, asset, device, time): writing a batch again overwrites the same points, so replays are harmless.

Why these tags: a tag is indexed and part of the series key, so only what we select by and what identifies a
series is a tag. `asset` is what every query filters on; `device` keeps two sensors on one asset (or a swapped
sensor) apart instead of letting one overwrite the other. Asset and device are nearly one-to-one, so the device
tag adds almost no series: 10,000 devices with about four quantities each make about 40,000 series, far below
what one InfluxDB node holds (millions). Flags and anomaly scores change from point to point; as tags they would
multiply the series count for nothing, so they are fields. Municipality is not a tag: it follows from the asset
in the operational database, and tenants are scoped there, not here.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import httpx
import numpy as np

from cloud.store.influx_common import (
    EPOCH,
    LINES_PER_REQUEST,
    MICROSECOND,
    QUERY_POINT_LIMIT,
    InfluxStoreBase,
    check_point_count,
    chunks,
    epoch_us,
    limited_points,
)
from cloud.store.series import SeriesArrays, SeriesPoint, SeriesStoreUnavailableError, asset_chunks
from flurfunk.contracts import Quantity, Reading

__all__ = ["LINES_PER_REQUEST", "QUERY_POINT_LIMIT", "InfluxV1SeriesStore", "in_time_range", "line", "tag_value"]

QUERY_RESPONSE_MAX_BYTES = 256 * 1024 * 1024

# InfluxDB stores nanoseconds in a signed 64-bit integer: 1677-09-21 … 2262-04-11.
_EARLIEST_US = -9_223_372_036_854_775 + 1
_LATEST_US = 9_223_372_036_854_775 - 1
# Tag values the line protocol cannot carry verbatim are stored under this prefix, base64-encoded (see tag_value).
_ENCODED_TAG_PREFIX = "~b64:"
_NEEDS_ENCODING = re.compile(r"[\x00-\x1f\x7f]|\\\Z")
_WRITE_HEADERS = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
# Level 1 compresses line protocol about 8:1 at a fraction of the CPU of the default; the link is rarely the limit.
_GZIP_LEVEL = 1


def _escape_tag_part(text: str) -> str:
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_measurement(text: str) -> str:
    return text.replace(",", "\\,").replace(" ", "\\ ")


def _escape_string_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def tag_value(text: str) -> str:
    """The tag value under which `text` is stored (and must be queried).

    InfluxDB 1.x cannot parse a tag value that ends in a backslash (the backslash escapes the separator that
    follows) nor one with a line break or other control character. Such values, and any value that starts with
    the encoding prefix itself, are stored as `~b64:` + URL-safe base64 of their UTF-8 bytes; all others verbatim.
    The mapping is one-to-one, so two different asset ids never share a series.
    """
    if text.startswith(_ENCODED_TAG_PREFIX) or _NEEDS_ENCODING.search(text):
        return _ENCODED_TAG_PREFIX + base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")
    return text


def _influxql_string(text: str) -> str:
    """A single-quoted InfluxQL string literal; InfluxQL knows the escapes \\\\, \\' and \\n."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _influxql_identifier(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@lru_cache(maxsize=65_536)
def _series_key(measurement: str, asset: str, device: str) -> str:
    """Measurement and tag set as line protocol; cached, as a few thousand series carry every batch's points."""
    asset_tag, device_tag = _escape_tag_part(tag_value(asset)), _escape_tag_part(tag_value(device))
    return f"{_escape_measurement(measurement)},asset={asset_tag},device={device_tag}"


def in_time_range(moment: datetime) -> bool:
    """Whether InfluxDB can store a point at `moment` (1677-09-21 to 2262-04-11, nanoseconds in 64 bits)."""
    return _EARLIEST_US <= epoch_us(moment, "reading time") <= _LATEST_US


def line(reading: Reading) -> str:
    """One reading as a line of line protocol with microsecond precision (the schema is in the module docstring)."""
    time_us = epoch_us(reading.time, "reading time")
    if not _EARLIEST_US <= time_us <= _LATEST_US:
        raise ValueError(
            f"reading of asset {reading.asset!r} at {reading.time.isoformat()} is outside InfluxDB's time range "
            "(1677-09-21 to 2262-04-11)"
        )
    key = _series_key(reading.quantity.value, reading.asset, reading.device)
    # repr() of a float is the shortest text that reads back as the same double; line protocol takes it as a float.
    flags = _escape_string_field(",".join(reading.flags)) if reading.flags else ""
    fields = f'value={float(reading.value)!r},anomaly_score={float(reading.anomaly_score)!r},flags="{flags}"'
    return f"{key} {fields} {time_us}"


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500].strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"][:2000]
    return response.text[:500]


class InfluxV1SeriesStore(InfluxStoreBase):
    """A `SeriesStore` in InfluxDB, spoken to over the v1 HTTP API with httpx.

    `url` is the server's base URL (`http://127.0.0.1:8086`); `database` is created on first use. `client` lets a
    caller share an `httpx.Client` (it is then not closed by `close()`).
    """

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        retention_policy: str | None = None,
        timeout_s: float = 10,
        client: httpx.Client | None = None,
    ) -> None:
        if not database:
            raise ValueError("database name must not be empty")
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self._auth = httpx.BasicAuth(username, password or "") if username is not None else None
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout_s)
        self._timeout_s = timeout_s
        self._database_ready = False

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- writing -------------------------------------------------------------------------------------------------

    def write(self, readings: Sequence[Reading]) -> None:
        # Build every line before sending any, so a reading that cannot be stored fails the call up front.
        lines = [line(reading) for reading in readings]
        if not lines:
            return
        self._ensure_database()
        params = {"db": self.database, "precision": "u"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        for chunk in chunks(lines):
            body = gzip.compress(("\n".join(chunk) + "\n").encode("utf-8"), compresslevel=_GZIP_LEVEL)
            response = self._request("POST", "/write", params=params, content=body, headers=_WRITE_HEADERS)
            if response.status_code == 404 and "database not found" in _server_message(response):
                # Someone dropped the database while we ran: create it again and send this chunk once more.
                self._database_ready = False
                self._ensure_database()
                response = self._request("POST", "/write", params=params, content=body, headers=_WRITE_HEADERS)
            self._check_write(response, len(chunk))

    def _check_write(self, response: httpx.Response, line_count: int) -> None:
        if response.status_code == 204 or response.status_code == 200:
            return
        message = _server_message(response)
        if response.status_code in (400, 413):
            raise ValueError(f"InfluxDB at {self.url} refused {line_count} lines: {message}")
        raise SeriesStoreUnavailableError(
            f"InfluxDB at {self.url} did not take {line_count} lines (HTTP {response.status_code}): {message}"
        )

    def _ensure_database(self) -> None:
        if self._database_ready:
            return
        # CREATE DATABASE is idempotent in InfluxDB: it succeeds when the database exists already. A user without
        # admin rights (production: the operator created the database and granted it) is refused with 403: go on,
        # the write itself tells whether the database is there and writable.
        self._statement(f"CREATE DATABASE {_influxql_identifier(self.database)}", method="POST", forbidden_ok=True)
        self._database_ready = True

    # -- reading -------------------------------------------------------------------------------------------------

    def query(
        self,
        asset: str,
        quantity: Quantity,
        start: datetime,
        end: datetime,
        every: timedelta | None = None,
    ) -> list[SeriesPoint]:
        measurement = Quantity(quantity).value
        start_us = epoch_us(start, "start")
        end_us = epoch_us(end, "end")
        if end_us <= start_us:
            return []
        source = self._source(measurement)
        selection = f"WHERE asset = {_influxql_string(tag_value(asset))} AND time >= {start_us}u AND time < {end_us}u"
        if every is None:
            statement = f"SELECT value FROM {source} {selection} LIMIT {QUERY_POINT_LIMIT + 1}"
        else:
            every_us = every // MICROSECOND
            if every_us <= 0:
                raise ValueError(f"every must be at least one microsecond, got {every}")
            # Windows align to the epoch (InfluxDB's default, and the SQLite store's); fill(none) skips empty ones.
            statement = (
                f"SELECT mean(value) FROM {source} {selection} GROUP BY time({every_us}u) fill(none) "
                f"LIMIT {QUERY_POINT_LIMIT + 1}"
            )
        self._ensure_database()
        series = self._statement(statement)
        points: list[SeriesPoint] = []
        for one in series:
            for row in self._rows(one, statement):
                time_us, value = row[0], row[1]
                if value is None:
                    continue
                if not isinstance(time_us, int) or not isinstance(value, int | float):
                    raise SeriesStoreUnavailableError(f"InfluxDB at {self.url} answered a row not understood: {row!r}")
                points.append(SeriesPoint(time=EPOCH + time_us * MICROSECOND, value=float(value)))
        return limited_points(points, asset, quantity)

    def query_many(
        self, assets: Sequence[str], quantity: Quantity, start: datetime, end: datetime
    ) -> dict[str, SeriesArrays]:
        start_us, end_us = epoch_us(start, "start"), epoch_us(end, "end")
        if end_us <= start_us or not assets:
            return {}
        source = self._source(Quantity(quantity).value)
        self._ensure_database()
        grouped: dict[str, SeriesArrays] = {}
        for chunk in asset_chunks(assets):
            asset_of = {tag_value(asset): asset for asset in chunk}
            which = " OR ".join(f"asset = {_influxql_string(tag)}" for tag in asset_of)
            # GROUP BY asset: one series per asset, its devices merged; LIMIT applies per series, as in `query`.
            statement = (
                f"SELECT value FROM {source} WHERE ({which}) AND time >= {start_us}u AND time < {end_us}u "
                f"GROUP BY asset LIMIT {QUERY_POINT_LIMIT + 1}"
            )
            for one in self._statement(statement):
                tags = one.get("tags") if isinstance(one, dict) else None
                asset = asset_of.get(tags.get("asset", "")) if isinstance(tags, dict) else None
                if asset is None:
                    raise SeriesStoreUnavailableError(f"InfluxDB at {self.url} answered a series not asked for: {tags}")
                rows = self._rows(one, statement)
                check_point_count(len(rows), asset, quantity)
                try:
                    table = np.asarray([row[:2] for row in rows], dtype=np.float64).reshape(-1, 2)
                except (TypeError, ValueError) as error:
                    raise SeriesStoreUnavailableError(
                        f"InfluxDB at {self.url} answered rows not understood for asset {asset!r}: {rows[:3]!r}"
                    ) from error
                table = table[~np.isnan(table[:, 1])]  # a point without `value` (None) is no reading
                order = np.argsort(table[:, 0], kind="stable")
                if order.size:
                    grouped[asset] = SeriesArrays(table[order, 0] / 1e6, table[order, 1])
        return grouped

    def count(self) -> int:
        self._ensure_database()
        total = 0
        rp = f"{_influxql_identifier(self.retention_policy)}." if self.retention_policy else ""
        # One series per measurement comes back; a regex FROM covers every quantity, including future ones.
        statement = f"SELECT count(value) FROM {rp}/.*/"
        for one in self._statement(statement):
            for row in self._rows(one, statement):
                if len(row) < 2 or not isinstance(row[1], int):
                    raise SeriesStoreUnavailableError(f"InfluxDB at {self.url} answered a count not understood: {row}")
                total += row[1]
        return total

    def _source(self, measurement: str) -> str:
        if self.retention_policy:
            return f"{_influxql_identifier(self.retention_policy)}.{_influxql_identifier(measurement)}"
        return _influxql_identifier(measurement)

    def _rows(self, series: Any, statement: str) -> list[list[Any]]:
        if not isinstance(series, dict) or not isinstance(series.get("values", []), list):
            raise SeriesStoreUnavailableError(f"InfluxDB at {self.url} answered {statement!r} with {series!r}")
        rows = series.get("values", [])
        for row in rows:
            if not isinstance(row, list) or len(row) < 2:
                raise SeriesStoreUnavailableError(f"InfluxDB at {self.url} answered a row not understood: {row!r}")
        return rows

    def _statement(self, statement: str, method: str = "GET", forbidden_ok: bool = False) -> list[Any]:
        """Run one InfluxQL statement; returns its series (possibly none; none, too, if forbidden and that is ok)."""
        params = {"db": self.database, "q": statement, "epoch": "u"}
        if method == "GET":
            response = self._request("GET", "/query", params=params)
        else:
            response = self._request("POST", "/query", data=params)
        if response.status_code == 403 and forbidden_ok:
            return []
        if response.status_code >= 500 or response.status_code in (401, 403):
            raise SeriesStoreUnavailableError(
                f"InfluxDB at {self.url} did not answer {statement!r} (HTTP {response.status_code}): "
                f"{_server_message(response)}"
            )
        if response.status_code >= 400:
            raise ValueError(f"InfluxDB at {self.url} refused {statement!r}: {_server_message(response)}")
        if len(response.content) > QUERY_RESPONSE_MAX_BYTES:
            raise ValueError(f"InfluxDB's answer to {statement!r} exceeds {QUERY_RESPONSE_MAX_BYTES} bytes")
        try:
            body = json.loads(response.content)
            result = body["results"][0]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise SeriesStoreUnavailableError(
                f"InfluxDB at {self.url} answered {statement!r} with something not understood: {response.text[:300]}"
            ) from error
        if not isinstance(result, dict):
            raise SeriesStoreUnavailableError(f"InfluxDB at {self.url} answered {statement!r} with {result!r}")
        if "error" in result:
            if "database not found" in str(result["error"]):
                # Dropped behind our back: the next write creates it again; for a read, nothing is stored.
                self._database_ready = False
                return []
            raise ValueError(f"InfluxDB at {self.url} refused {statement!r}: {result['error']}")
        series = result.get("series", [])
        if not isinstance(series, list):
            raise SeriesStoreUnavailableError(f"InfluxDB at {self.url} answered {statement!r} with {result!r}")
        return series

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            if self._auth is not None:
                kwargs["auth"] = self._auth
            return self._client.request(method, self.url + path, timeout=self._timeout_s, **kwargs)
        except httpx.TimeoutException as error:
            raise SeriesStoreUnavailableError(
                f"InfluxDB at {self.url} did not answer {method} {path} within {self._timeout_s} s"
            ) from error
        except httpx.TransportError as error:
            raise SeriesStoreUnavailableError(f"cannot reach InfluxDB at {self.url}: {error}") from error
