"""The cloud's stores: the embedded SQLite series store and the operational database (SQLite and PostgreSQL)."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql

from cloud.store import open_series_store
from cloud.store.operational import OperationalStore, StoredRoute, UnknownTaskError, token_sha256
from cloud.store.series import SeriesPoint, SeriesStoreUnavailableError
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import (
    Asset,
    AssetKind,
    Batch,
    Depot,
    Device,
    GatewayStatus,
    InvalidTransitionError,
    Quantity,
    Reading,
    Task,
    TaskKind,
    TaskState,
)

T0 = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)
DEVICE_A = "a84041000181c001"
DEVICE_B = "a84041000181c002"


def reading(asset: str, quantity: Quantity, value: float, time: datetime, device: str = DEVICE_A) -> Reading:
    return Reading(device=device, asset=asset, quantity=quantity, value=value, time=time)


# -- the SQLite series store ----------------------------------------------------------------------------------------


@pytest.fixture
def series(tmp_path: Path) -> Iterator[SqliteSeriesStore]:
    store = SqliteSeriesStore(tmp_path / "series.sqlite")
    yield store
    store.close()


def test_writing_the_same_points_twice_stores_them_once(series: SqliteSeriesStore) -> None:
    points = [reading("bin-1", Quantity.FILL_RATIO, 0.1 * i, T0 + timedelta(hours=i)) for i in range(5)]
    series.write(points)
    series.write(points)
    assert series.count() == 5
    assert [p.value for p in series.query("bin-1", Quantity.FILL_RATIO, T0, T0 + timedelta(days=1))] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4]
    )


def test_a_point_written_again_takes_the_new_value(series: SqliteSeriesStore) -> None:
    series.write([reading("bin-1", Quantity.FILL_RATIO, 0.5, T0)])
    series.write([reading("bin-1", Quantity.FILL_RATIO, 0.7, T0)])
    assert series.query("bin-1", Quantity.FILL_RATIO, T0, T0 + timedelta(seconds=1)) == [SeriesPoint(T0, 0.7)]


def test_two_devices_on_one_asset_are_kept_apart(series: SqliteSeriesStore) -> None:
    series.write([reading("bin-1", Quantity.FILL_RATIO, 0.5, T0, DEVICE_A)])
    series.write([reading("bin-1", Quantity.FILL_RATIO, 0.6, T0, DEVICE_B)])
    assert series.count() == 2


def test_query_is_half_open_oldest_first_and_per_asset_and_quantity(series: SqliteSeriesStore) -> None:
    series.write(
        [
            reading("bin-1", Quantity.FILL_RATIO, 3.0, T0 + timedelta(hours=2)),
            reading("bin-1", Quantity.FILL_RATIO, 1.0, T0),
            reading("bin-1", Quantity.FILL_RATIO, 2.0, T0 + timedelta(hours=1)),
            reading("bin-1", Quantity.BATTERY_V, 3.6, T0),
            reading("bin-2", Quantity.FILL_RATIO, 9.0, T0),
        ]
    )
    points = series.query("bin-1", Quantity.FILL_RATIO, T0, T0 + timedelta(hours=2))
    assert points == [SeriesPoint(T0, 1.0), SeriesPoint(T0 + timedelta(hours=1), 2.0)]
    assert all(p.time.tzinfo is UTC for p in points)


def test_downsampling_gives_the_mean_per_epoch_aligned_window(series: SqliteSeriesStore) -> None:
    start = datetime(2026, 7, 6, 0, 0, tzinfo=UTC)
    # 10:00..10:50 every 10 minutes, values 0..5; hourly windows [10:00, 11:00) and [11:00, 12:00)
    series.write(
        [reading("tree-1", Quantity.SOIL_VWC, i, start + timedelta(hours=10, minutes=10 * i)) for i in range(9)]
    )
    hourly = series.query("tree-1", Quantity.SOIL_VWC, start, start + timedelta(days=1), every=timedelta(hours=1))
    assert hourly == [
        SeriesPoint(start + timedelta(hours=10), pytest.approx(2.5)),
        SeriesPoint(start + timedelta(hours=11), pytest.approx(7.0)),
    ]


def test_downsampling_windows_before_1970_are_aligned_too(series: SqliteSeriesStore) -> None:
    before = datetime(1969, 12, 31, 23, 30, tzinfo=UTC)
    series.write(
        [
            reading("x", Quantity.RAIN_MM, 4.0, before),
            reading("x", Quantity.RAIN_MM, 2.0, before + timedelta(minutes=10)),
        ]
    )
    windows = series.query(
        "x", Quantity.RAIN_MM, before - timedelta(days=1), before + timedelta(days=1), timedelta(hours=1)
    )
    assert windows == [SeriesPoint(datetime(1969, 12, 31, 23, 0, tzinfo=UTC), 3.0)]


def test_query_refuses_naive_times_and_empty_windows(series: SqliteSeriesStore) -> None:
    with pytest.raises(ValueError, match="start must carry a time zone"):
        series.query("x", Quantity.RAIN_MM, datetime(2026, 1, 1), T0)
    with pytest.raises(ValueError, match="every must be at least one microsecond"):
        series.query("x", Quantity.RAIN_MM, T0, T0 + timedelta(days=1), every=timedelta(0))


def test_points_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "series.sqlite"
    first = SqliteSeriesStore(path)
    first.write([reading("bin-1", Quantity.FILL_RATIO, 0.4, T0)])
    first.close()
    second = SqliteSeriesStore(path)
    assert second.count() == 1
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    second.close()


def test_a_store_that_cannot_open_its_file_says_it_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SeriesStoreUnavailableError, match="cannot open series store"):
        SqliteSeriesStore(tmp_path)  # a directory is no database file


def test_a_locked_database_makes_writes_unavailable_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "series.sqlite"
    store = SqliteSeriesStore(path)
    store._connection.execute("PRAGMA busy_timeout=50")  # do not wait the default 10 s in a test
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(SeriesStoreUnavailableError, match="did not take points"):
            store.write([reading("bin-1", Quantity.FILL_RATIO, 0.4, T0)])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.write([reading("bin-1", Quantity.FILL_RATIO, 0.4, T0)])
    assert store.count() == 1


def test_series_urls_open_the_right_store(tmp_path: Path) -> None:
    assert isinstance(open_series_store(f"sqlite:///{tmp_path / 's.sqlite'}"), SqliteSeriesStore)
    assert open_series_store("sqlite://").count() == 0
    with pytest.raises(ValueError, match="must start with sqlite"):
        open_series_store("mysql://x")
    with pytest.raises(ValueError, match="influx-v1://host:port/database"):
        open_series_store("influx-v1://127.0.0.1:8086/")


_assets = st.sampled_from(["bin-1", "bin-2", "tree-1"])
_quantities = st.sampled_from([Quantity.FILL_RATIO, Quantity.SOIL_VWC])
_devices = st.sampled_from([DEVICE_A, DEVICE_B])
_times = st.integers(0, 10_000).map(lambda minutes: T0 + timedelta(minutes=minutes))
_values = st.floats(-1e6, 1e6, allow_nan=False)
_readings = st.builds(reading, _assets, _quantities, _values, _times, _devices)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_readings, max_size=15), max_size=4))
def test_the_store_holds_the_last_write_of_each_point(batches: list[list[Reading]]) -> None:
    store = SqliteSeriesStore(":memory:")
    expected: dict[tuple[str, str, Quantity, datetime], float] = {}
    for batch in batches:
        store.write(batch)
        store.write(batch)  # a replay changes nothing
        for r in batch:
            expected[(r.asset, r.device, r.quantity, r.time)] = r.value
    assert store.count() == len(expected)
    end = T0 + timedelta(days=30)
    for asset in ("bin-1", "bin-2", "tree-1"):
        for quantity in (Quantity.FILL_RATIO, Quantity.SOIL_VWC):
            wanted = sorted(
                (time, device, value) for (a, device, q, time), value in expected.items() if (a, q) == (asset, quantity)
            )
            assert store.query(asset, quantity, T0, end) == [SeriesPoint(time, value) for time, _, value in wanted]
            hourly: dict[datetime, list[float]] = {}
            for time, _, value in wanted:
                hourly.setdefault(time.replace(minute=0), []).append(value)
            means = store.query(asset, quantity, T0, end, every=timedelta(hours=1))
            assert [p.time for p in means] == sorted(hourly)
            for point in means:
                assert point.value == pytest.approx(sum(hourly[point.time]) / len(hourly[point.time]), abs=1e-6)


# -- the operational store ------------------------------------------------------------------------------------------

DAY = date(2026, 7, 6)
BIN = Asset(id="bin-1", kind=AssetKind.BIN, municipality="Birstein", village="Fischborn", latitude=50.35, longitude=9.3)
TREE = Asset(
    id="tree-1", kind=AssetKind.TREE, municipality="Sinntal", village="Sterbfritz", latitude=50.3, longitude=9.6
)


def task(task_id: str, asset: Asset = BIN, kind: TaskKind = TaskKind.COLLECT, route_id: str | None = None) -> Task:
    return Task(
        id=task_id,
        kind=kind,
        asset=asset.id,
        municipality=asset.municipality,
        due_from=T0,
        due_until=T0 + timedelta(hours=8),
        priority=80,
        reason="Behälter ist voll.",
        evidence={"fill_ratio": 0.9, "source": "latest"},
        route_id=route_id,
    )


def route(route_id: str, stops: list[str], km: float = 4.2) -> StoredRoute:
    return StoredRoute(
        id=route_id,
        municipality="Birstein",
        kind=TaskKind.COLLECT,
        day=DAY,
        stops=stops,
        km=km,
        polyline=[(50.34, 9.29), (50.35, 9.3), (50.34, 9.29)],
    )


def batch(gateway_id: str, last_seq: int, readings: list[Reading], sent_at: datetime = T0) -> Batch:
    return Batch(
        gateway_id=gateway_id,
        first_seq=1,
        last_seq=last_seq,
        sent_at=sent_at,
        readings=tuple(readings),
        status=GatewayStatus(buffered=last_seq, oldest_unsynced_s=1.5),
    )


def exercise_operational_store(store: OperationalStore) -> None:
    """What every backend must do; run on SQLite and on PostgreSQL."""
    store.create_schema()
    store.create_schema()  # idempotent at startup

    # inventory upserts update in place
    store.upsert_depots([Depot(municipality="Birstein", name="Bauhof Birstein", latitude=50.35, longitude=9.29)])
    assert store.upsert_assets([BIN, TREE, BIN.model_copy(update={"village": "Birstein"})]) == 2
    assert store.assets(["bin-1"])[0].village == "Birstein"  # the last of duplicate ids wins
    store.upsert_assets([BIN.model_copy(update={"capacity_l": 1100})])
    store.upsert_devices([Device(dev_eui=DEVICE_A, model_id="dragino/ldds75", asset="bin-1", report_interval_s=3600)])
    assert store.assets(["bin-1"])[0].capacity_l == 1100
    assert store.assets(["bin-1"])[0].village == "Fischborn"
    assert [d.name for d in store.depots()] == ["Bauhof Birstein"]
    assert store.devices()[0].asset == "bin-1"

    # gateway tokens live only as hashes, and only the configured ones are valid
    store.set_gateway_tokens({"gw-1": "token-one-0123456789", "gw-2": "token-two-0123456789"})
    store.set_gateway_tokens({"gw-1": "token-two-0123456789"})  # a token moving between gateways is fine
    assert store.gateway_for_token("token-two-0123456789") == "gw-1"
    assert store.gateway_for_token("token-one-0123456789") is None
    with store.session() as session:
        stored_hashes = [row[0] for row in session.execute(sql("SELECT token_sha256 FROM gateways"))]
    assert token_sha256("token-two-0123456789") in stored_hashes
    assert "token-two-0123456789" not in stored_hashes

    # latest state moves forward only; the acked sequence never moves back; unknown assets are named
    newer = reading("bin-1", Quantity.FILL_RATIO, 0.9, T0 + timedelta(hours=2))
    older = reading("bin-1", Quantity.FILL_RATIO, 0.1, T0)
    assert store.record_batch(batch("gw-1", 10, [newer, reading("ghost", Quantity.RAIN_MM, 1.0, T0)]), T0) == ["ghost"]
    assert store.record_batch(batch("gw-1", 5, [older], sent_at=T0 - timedelta(hours=1)), T0) == []
    latest = store.latest()["bin-1"][Quantity.FILL_RATIO]
    assert (latest.value, latest.time, latest.device) == (0.9, newer.time, DEVICE_A)
    assert latest.time.tzinfo is not None
    gateway = next(g for g in store.gateways() if g.id == "gw-1")
    assert gateway.acked_seq == 10
    assert gateway.status == GatewayStatus(buffered=10, oldest_unsynced_s=1.5)  # the older batch's status is stale
    assert store.latest_reading_time() == newer.time

    # a plan replaces planned tasks and unused routes but keeps what crews started
    store.replace_plan(DAY, [task("t-1", route_id="r-1"), task("t-2", TREE, TaskKind.WATER)], [route("r-1", ["bin-1"])])
    store.transition_task("t-1", TaskState.ASSIGNED)
    outcome = store.replace_plan(DAY, [task("t-1", route_id="r-9"), task("t-3")], [route("r-9", ["bin-1"], 9.0)])
    assert (outcome.tasks_stored, outcome.tasks_kept, outcome.routes_stored) == (1, 1, 1)
    by_id = {s.task.id: s for s in store.tasks(day=DAY)}
    assert set(by_id) == {"t-1", "t-3"}
    assert by_id["t-1"].task.state is TaskState.ASSIGNED and by_id["t-1"].task.route_id == "r-1"
    assert {r.id for r in store.routes(day=DAY)} == {"r-1", "r-9"}  # r-1 stays: the assigned task drives it
    assert store.km_planned(DAY) == {"Birstein": pytest.approx(13.2)}
    assert store.task_counts(DAY) == {"Birstein": {"collect": 2}}
    assert store.task_days() == [DAY]
    assert by_id["t-3"].task.evidence == {"fill_ratio": 0.9, "source": "latest"}
    assert by_id["t-3"].task.due_from == T0

    # the task state machine, with its refusals
    store.transition_task("t-1", TaskState.IN_PROGRESS)
    skipped = store.transition_task("t-1", TaskState.SKIPPED, "Zufahrt zugeparkt")
    assert skipped.task.skip_reason == "Zufahrt zugeparkt"
    with pytest.raises(InvalidTransitionError):
        store.transition_task("t-1", TaskState.DONE)
    with pytest.raises(UnknownTaskError):
        store.transition_task("nope", TaskState.DONE)
    assert store.tasks(state=TaskState.SKIPPED)[0].task.id == "t-1"
    assert store.tasks(kind=TaskKind.WATER) == []
    assert store.tasks(municipality="Sinntal") == []


def test_operational_store_on_sqlite(tmp_path: Path) -> None:
    store = OperationalStore.from_url(f"sqlite:///{tmp_path / 'nested' / 'operational.sqlite'}")
    exercise_operational_store(store)
    store.engine.dispose()


POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A uniquely named schema in the local test database, dropped afterwards; skips when PostgreSQL is away."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"flurfunk_cloud_{secrets.token_hex(6)}"
    plain_url = POSTGRES_URL.replace("+psycopg", "")
    try:
        connection = psycopg.connect(plain_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable at {plain_url}: {error}")
    with connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(plain_url, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_operational_store_on_postgresql(postgres_schema_url: str) -> None:
    store = OperationalStore.from_url(POSTGRES_URL, connect_args={"options": f"-c search_path={postgres_schema_url}"})
    try:
        exercise_operational_store(store)
        with store.engine.connect() as connection:
            tables = set(
                connection.execute(
                    sql(
                        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{postgres_schema_url}'"
                    )
                ).scalars()
            )
        assert {"assets", "gateways", "latest_state", "tasks", "routes"} <= tables
    finally:
        store.engine.dispose()
