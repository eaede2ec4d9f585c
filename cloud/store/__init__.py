"""Storage behind small interfaces: the time-series store (SQLite or InfluxDB) and the operational database."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from cloud.store.series import SeriesPoint, SeriesStore, SeriesStoreUnavailableError

__all__ = ["SeriesPoint", "SeriesStore", "SeriesStoreUnavailableError", "open_series_store"]

_HTTP_SCHEMES = {"influx-v1": "http", "influx-v1+https": "https", "influx-v2": "http", "influx-v2+https": "https"}
_OPTIONS = {"influx-v1": {"rp", "timeout"}, "influx-v2": {"org", "bucket", "timeout"}}


def _options(query: str, scheme: str) -> dict[str, str]:
    family = scheme.removesuffix("+https")
    options: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True, strict_parsing=bool(query)).items():
        if name not in _OPTIONS[family]:
            raise ValueError(f"series_url: unknown option {name!r} for {family} (known: {sorted(_OPTIONS[family])})")
        if len(values) != 1 or not values[0]:
            raise ValueError(f"series_url: option {name!r} needs exactly one non-empty value")
        options[name] = values[0]
    return options


def _timeout_s(options: dict[str, str]) -> float:
    try:
        timeout_s = float(options.get("timeout", "10"))
    except ValueError:
        raise ValueError(f"series_url: timeout must be seconds, got {options['timeout']!r}") from None
    if not 0 < timeout_s <= 600:
        raise ValueError(f"series_url: timeout must be within (0, 600] seconds, got {timeout_s}")
    return timeout_s


def open_series_store(url: str, token: str | None = None) -> SeriesStore:
    """The series store a URL names.

    - `sqlite:///PATH` (embedded; `sqlite://` in memory);
    - `influx-v1://[user:password@]host:port/database[?rp=POLICY&timeout=SECONDS]`: InfluxDB's v1 HTTP API, which
      1.x, 2.x and 3.x serve;
    - `influx-v2://host:port?org=ORG&bucket=BUCKET[&timeout=SECONDS]`: the v2 API with `token` (from the settings,
      `series_token`; never part of the URL, which ends up in logs).
    `+https` after the scheme (`influx-v1+https://…`) speaks TLS.
    """
    if url == "sqlite://" or url.startswith("sqlite:///"):
        from cloud.store.series_sqlite import SqliteSeriesStore

        return SqliteSeriesStore(url.removeprefix("sqlite:///") if url != "sqlite://" else ":memory:")
    scheme = url.split("://", 1)[0]
    if scheme not in _HTTP_SCHEMES:
        raise ValueError(f"series_url must start with sqlite:///, influx-v1:// or influx-v2://, got {scheme!r}")
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"series_url: no host in {scheme}:// URL")
    options = _options(parts.query, scheme)
    base_url = f"{_HTTP_SCHEMES[scheme]}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    if scheme.startswith("influx-v1"):
        from cloud.store.influx_v1 import InfluxV1SeriesStore

        database = unquote(parts.path.strip("/"))
        if not database or "/" in database:
            raise ValueError("series_url must look like influx-v1://host:port/database")
        return InfluxV1SeriesStore(
            base_url,
            database,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            retention_policy=options.get("rp"),
            timeout_s=_timeout_s(options),
        )
    from cloud.store.influx_v2 import InfluxV2SeriesStore

    if parts.username or parts.password:
        raise ValueError("series_url: influx-v2 takes its token from the settings (series_token), not from the URL")
    if parts.path.strip("/"):
        raise ValueError("series_url must look like influx-v2://host:port?org=ORG&bucket=BUCKET (no path)")
    if "org" not in options or "bucket" not in options:
        raise ValueError("series_url: influx-v2 needs ?org=…&bucket=…")
    if not token:
        raise ValueError("series_url influx-v2://… needs a token (settings: series_token)")
    return InfluxV2SeriesStore(base_url, token, options["org"], options["bucket"], timeout_s=_timeout_s(options))
