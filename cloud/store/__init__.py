"""Storage behind small interfaces: the time-series store (SQLite or InfluxDB) and the operational database."""

from __future__ import annotations

from cloud.store.series import SeriesPoint, SeriesStore, SeriesStoreUnavailableError

__all__ = ["SeriesPoint", "SeriesStore", "SeriesStoreUnavailableError", "open_series_store"]


def open_series_store(url: str) -> SeriesStore:
    """The series store a URL names: `sqlite:///PATH` (embedded) or `influx-v1://host:port/db` (InfluxDB v1 API)."""
    if url == "sqlite://" or url.startswith("sqlite:///"):
        from cloud.store.series_sqlite import SqliteSeriesStore

        return SqliteSeriesStore(url.removeprefix("sqlite:///") if url != "sqlite://" else ":memory:")
    if url.startswith("influx-v1://"):
        from cloud.store import influx_v1

        opener = getattr(influx_v1, "open_series_store", None)
        if opener is None:
            raise ValueError("series_url names InfluxDB, but cloud.store.influx_v1 has no open_series_store(url)")
        return opener(url)
    raise ValueError(f"series_url must start with sqlite:/// or influx-v1://, got {url.split('://')[0]!r}://…")
