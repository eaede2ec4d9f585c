"""Storage behind small interfaces: the time-series store (SQLite or InfluxDB) and the operational database."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from cloud.store.series import SeriesPoint, SeriesStore, SeriesStoreUnavailableError

__all__ = ["SeriesPoint", "SeriesStore", "SeriesStoreUnavailableError", "open_series_store"]

_INFLUX_SCHEMES = {"influx-v1": "http", "influx-v1+https": "https"}


def open_series_store(url: str) -> SeriesStore:
    """The series store a URL names.

    `sqlite:///PATH` (embedded; `sqlite://` in memory) or `influx-v1://[user:password@]host:port/database`
    (InfluxDB's v1 HTTP API; `influx-v1+https://…` over TLS).
    """
    if url == "sqlite://" or url.startswith("sqlite:///"):
        from cloud.store.series_sqlite import SqliteSeriesStore

        return SqliteSeriesStore(url.removeprefix("sqlite:///") if url != "sqlite://" else ":memory:")
    scheme = url.split("://", 1)[0]
    if scheme in _INFLUX_SCHEMES:
        from cloud.store.influx_v1 import InfluxV1SeriesStore

        parts = urlsplit(url)
        database = unquote(parts.path.strip("/"))
        if not parts.hostname or not database or "/" in database:
            raise ValueError("series_url must look like influx-v1://host:port/database")
        port = f":{parts.port}" if parts.port else ""
        return InfluxV1SeriesStore(
            f"{_INFLUX_SCHEMES[scheme]}://{parts.hostname}{port}",
            database,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
    raise ValueError(f"series_url must start with sqlite:/// or influx-v1://, got {scheme!r}")
