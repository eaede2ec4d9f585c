"""The overflow forecast behind the alert rule "predicted overflow before the next planned run"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.alerts.forecast import overflow_forecast_from_series
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Quantity, Reading

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
DEVICE = "0011223344556677"


def _fill_series(store: SqliteSeriesStore, asset: str, start_fill: float, rate_per_day: float, days: int) -> None:
    readings = []
    for hour in range(days * 24):
        moment = NOW - timedelta(hours=days * 24 - hour)
        fill = start_fill + rate_per_day * hour / 24
        readings.append(Reading(device=DEVICE, asset=asset, quantity=Quantity.FILL_RATIO, value=fill, time=moment))
    store.write(readings)


def test_a_steadily_filling_bin_is_forecast_to_overflow_when_its_rate_says(tmp_path: Path) -> None:
    store = SqliteSeriesStore(tmp_path / "series.sqlite")
    _fill_series(store, "bin-fast", start_fill=0.1, rate_per_day=0.15, days=4)  # 0.7 now: full in about 2 days
    _fill_series(store, "bin-slow", start_fill=0.0, rate_per_day=0.01, days=4)  # 0.04 now: not within 14 days
    forecast = overflow_forecast_from_series(store)(["bin-fast", "bin-slow", "bin-unknown"], NOW)
    assert set(forecast) == {"bin-fast"}
    assert forecast["bin-fast"] - NOW == pytest.approx(timedelta(days=2), abs=timedelta(hours=12))


def test_a_bin_with_too_little_history_gets_no_forecast(tmp_path: Path) -> None:
    store = SqliteSeriesStore(tmp_path / "series.sqlite")
    store.write(
        [
            Reading(
                device=DEVICE, asset="bin-new", quantity=Quantity.FILL_RATIO, value=0.95, time=NOW - timedelta(hours=1)
            )
        ]
    )
    assert overflow_forecast_from_series(store)(["bin-new"], NOW) == {}


def test_the_cloud_app_gives_its_alert_service_the_forecast(tmp_path: Path) -> None:
    from cloud import create_app
    from cloud.settings import CloudSettings

    settings = CloudSettings(
        database_url=f"sqlite:///{tmp_path / 'cloud.sqlite'}",
        series_url=f"sqlite:///{tmp_path / 'series.sqlite'}",
        data_dir=tmp_path,
        admin_token="bootstrap-admin-token-for-tests",
    )
    app = create_app(settings)
    assert app.state.alerts.overflow_forecast is not None
    assert app.state.alerts.overflow_forecast(["no-such-bin"], NOW) == {}
