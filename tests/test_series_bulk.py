"""`SeriesStore.query_many`: one read for many assets of a quantity gives, per asset, exactly what `query` gives
for that asset alone — against the SQLite store and a real influxd (v1 API); the v2 store's Flux is checked as text."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.store import series as series_module
from cloud.store.influx_v1 import InfluxV1SeriesStore
from cloud.store.influx_v2 import many_series_query
from cloud.store.series import SeriesStore
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Quantity, Reading

T0 = datetime(2026, 7, 1, tzinfo=UTC)
DEVICES = ("a84041000181c001", "a84041000181c002")


def reading(
    asset: str, minutes: int, value: float, device: str = DEVICES[0], quantity: Quantity = Quantity.FILL_RATIO
) -> Reading:
    return Reading(device=device, asset=asset, quantity=quantity, value=value, time=T0 + timedelta(minutes=minutes))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteSeriesStore]:
    store = SqliteSeriesStore(tmp_path / "series.sqlite")
    yield store
    store.close()


@pytest.fixture
def influx_store(influxd: object) -> Iterator[InfluxV1SeriesStore]:
    with InfluxV1SeriesStore(influxd.url, f"bulk_{uuid.uuid4().hex[:8]}") as store:  # type: ignore[attr-defined]
        yield store


@pytest.fixture(params=["sqlite", "influx"])
def series_store(request: pytest.FixtureRequest) -> SeriesStore:
    return request.getfixturevalue(f"{request.param}_store")


def as_pairs(
    store: SeriesStore, asset: str, quantity: Quantity, start: datetime, end: datetime
) -> list[tuple[float, float]]:
    return [(point.time.timestamp(), point.value) for point in store.query(asset, quantity, start, end)]


def test_one_read_gives_each_asset_what_its_own_query_gives(
    series_store: SeriesStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series_module, "ASSETS_PER_QUERY", 2)  # several reads for five assets: chunks join up
    readings = [
        *(reading("bin-a", minute, minute / 100) for minute in range(0, 60, 10)),
        # two devices on one asset (a swapped sensor): both kept, merged in time order
        reading("bin-b", 5, 0.1, DEVICES[0]),
        reading("bin-b", 15, 0.3, DEVICES[1]),
        reading("bin-b", 10, 0.2, DEVICES[0]),
        reading("bin-c", 59, 0.9),
        reading("bin-c", 60, 0.95),  # at `end`: outside [start, end)
        reading("bin-c", -1, 0.05),  # before `start`: outside
        reading("bin-d", 30, 0.5, quantity=Quantity.BATTERY_V),  # another quantity: not read
        reading("bin-e\\", 20, 0.4),  # a tag value InfluxDB stores encoded
    ]
    series_store.write(readings)
    start, end = T0, T0 + timedelta(minutes=60)
    assets = ["bin-a", "bin-b", "bin-c", "bin-d", "bin-e\\", "bin-none", "bin-a"]
    many = series_store.query_many(assets, Quantity.FILL_RATIO, start, end)

    assert sorted(many) == ["bin-a", "bin-b", "bin-c", "bin-e\\"]  # no points, no entry
    for asset, arrays in many.items():
        pairs = list(zip(arrays.times_s.tolist(), arrays.values.tolist(), strict=True))
        assert pairs == as_pairs(series_store, asset, Quantity.FILL_RATIO, start, end), asset
    assert many["bin-b"].values.tolist() == [0.1, 0.2, 0.3]
    assert many["bin-c"].values.tolist() == [0.9]
    assert [point.time for point in many["bin-b"].points()] == [T0 + timedelta(minutes=m) for m in (5, 10, 15)]
    assert series_store.query_many([], Quantity.FILL_RATIO, start, end) == {}
    assert series_store.query_many(["bin-a"], Quantity.FILL_RATIO, end, start) == {}


def test_a_naive_time_is_refused(sqlite_store: SqliteSeriesStore) -> None:
    with pytest.raises(ValueError, match="time zone"):
        sqlite_store.query_many(["bin-a"], Quantity.FILL_RATIO, datetime(2026, 7, 1), T0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    points=st.lists(
        st.tuples(
            st.sampled_from(["bin-1", "bin-2", "bin-3", "tree-1"]),
            st.integers(min_value=-30, max_value=200),
            st.floats(min_value=-5, max_value=5, allow_nan=False),
            st.sampled_from(DEVICES),
        ),
        max_size=60,
    ),
    window=st.tuples(st.integers(min_value=-40, max_value=100), st.integers(min_value=0, max_value=200)),
)
def test_query_many_equals_query_per_asset(
    tmp_path_factory: pytest.TempPathFactory,
    points: list[tuple[str, int, float, str]],
    window: tuple[int, int],
) -> None:
    store = SqliteSeriesStore(tmp_path_factory.mktemp("bulk") / "series.sqlite")
    try:
        store.write([reading(asset, minute, value, device) for asset, minute, value, device in points])
        start = T0 + timedelta(minutes=window[0])
        end = start + timedelta(minutes=window[1])
        assets = ["bin-1", "bin-2", "bin-3", "tree-1", "bin-9"]
        many = store.query_many(assets, Quantity.FILL_RATIO, start, end)
        for asset in assets:
            expected = as_pairs(store, asset, Quantity.FILL_RATIO, start, end)
            arrays = many.get(asset)
            got = list(zip(arrays.times_s.tolist(), arrays.values.tolist(), strict=True)) if arrays else []
            # two devices at the same minute: both points, in either order
            assert sorted(got) == sorted(expected)
            assert [moment for moment, _ in got] == sorted(moment for moment, _ in got)
    finally:
        store.close()


def test_the_v2_flux_names_every_asset_quoted() -> None:
    flux = many_series_query(
        "series", ['bin") or true or ("', "bin-2"], Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1)
    )
    assert 'contains(value: r.asset, set: ["bin\\") or true or (\\"", "bin-2"])' in flux
    assert 'group(columns: ["asset"])' in flux
    with pytest.raises(ValueError, match="time zone"):
        many_series_query("series", ["bin-1"], Quantity.FILL_RATIO, datetime(2025, 1, 1), T0)
