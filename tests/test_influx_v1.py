"""The InfluxDB v1 series store against a real influxd: schema, idempotence, downsampling, quoting, failures."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.store.influx_v1 import LINES_PER_REQUEST, InfluxV1SeriesStore, tag_value
from cloud.store.series import SeriesPoint, SeriesStoreUnavailableError
from flurfunk.contracts import Quantity, Reading
from tests.conftest import InfluxdServer

DEVICE = "70b3d57ed0001a2b"
OTHER_DEVICE = "70b3d57ed0001a2c"
T0 = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
HOSTILE_ASSETS = [
    "bin 'A' \"B\"",
    "comma,separated,id",
    "key=value pair",
    "back\\slash",
    "ends with backslash\\",
    "\\",
    "two\\\\",
    "escaped\\,comma\\ space\\=eq",
    "'; DROP DATABASE x; --",
    "line\nbreak",
    "~b64:looks-encoded",
    "Bäume an der Straße",
]


def reading(
    asset: str = "bin-wae-0001",
    value: float = 0.5,
    minutes: float = 0,
    quantity: Quantity = Quantity.FILL_RATIO,
    device: str = DEVICE,
    **extra: Any,
) -> Reading:
    return Reading(
        device=device, asset=asset, quantity=quantity, value=value, time=T0 + timedelta(minutes=minutes), **extra
    )


def influxql(server: InfluxdServer, database: str, statement: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/query", params={"db": database, "q": statement, "epoch": "u"}, timeout=10)
    response.raise_for_status()
    result = response.json()["results"][0]
    assert "error" not in result, result
    return result.get("series", [])


@pytest.fixture
def database() -> str:
    return f"flurfunk_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(influxd: InfluxdServer, database: str) -> Iterator[InfluxV1SeriesStore]:
    with InfluxV1SeriesStore(influxd.url, database) as series_store:
        yield series_store


def test_points_land_in_the_documented_schema(store: InfluxV1SeriesStore, influxd: InfluxdServer) -> None:
    store.write(
        [
            reading(value=0.25, anomaly_score=0.5, flags=("emptied", "bounce")),
            reading(value=0.75, minutes=10),
            reading(asset="tree-bo-0042", quantity=Quantity.SOIL_TENSION_KPA, value=41.5, minutes=5),
        ]
    )

    (series,) = influxql(influxd, store.database, 'SELECT * FROM "fill_ratio"')
    assert series["name"] == "fill_ratio"
    rows = [dict(zip(series["columns"], row, strict=True)) for row in series["values"]]
    t0_us = int(T0.timestamp()) * 1_000_000
    assert rows == [
        {"time": t0_us, "asset": "bin-wae-0001", "device": DEVICE, "value": 0.25, "anomaly_score": 0.5,
         "flags": "bounce,emptied"},
        {"time": t0_us + 600_000_000, "asset": "bin-wae-0001", "device": DEVICE, "value": 0.75, "anomaly_score": 0,
         "flags": ""},
    ]  # fmt: skip
    tag_keys = influxql(influxd, store.database, 'SHOW TAG KEYS FROM "soil_tension_kpa"')[0]["values"]
    assert sorted(key for (key,) in tag_keys) == ["asset", "device"]


def test_query_reads_back_points_of_one_asset_and_quantity_in_range(store: InfluxV1SeriesStore) -> None:
    store.write(
        [reading(value=0.1 * i, minutes=i) for i in range(6)]
        + [reading(asset="bin-wae-0002", value=0.9, minutes=2), reading(quantity=Quantity.BATTERY_V, value=3.6)]
    )

    points = store.query("bin-wae-0001", Quantity.FILL_RATIO, T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))

    assert points == [SeriesPoint(T0 + timedelta(minutes=i), 0.1 * i) for i in (1, 2, 3)]
    assert store.query("bin-wae-0001", Quantity.FILL_RATIO, T0, T0) == []
    assert store.query("no-such-asset", Quantity.FILL_RATIO, T0, T0 + timedelta(days=1)) == []


def test_writing_the_same_points_twice_counts_them_once(store: InfluxV1SeriesStore) -> None:
    batch = [reading(value=i / 10, minutes=i) for i in range(10)] + [reading(device=OTHER_DEVICE, value=0.3)]
    store.write(batch)
    store.write(batch)
    store.write(batch[:3])

    # Two devices on one asset at the same time are two points, not one overwriting the other.
    assert store.count() == 11


def test_a_revised_verdict_that_clears_the_flags_overwrites_them(
    store: InfluxV1SeriesStore, influxd: InfluxdServer
) -> None:
    # The gateway flags a jump on arrival and clears it a reading later when the next value confirms it.
    store.write([reading(value=0.9, anomaly_score=0.8, flags=("spike",))])
    store.write([reading(value=0.9, anomaly_score=0.1)])

    (series,) = influxql(influxd, store.database, 'SELECT "flags", "anomaly_score" FROM "fill_ratio"')
    assert series["values"] == [[int(T0.timestamp()) * 1_000_000, "", 0.1]]


def test_rewriting_a_point_overwrites_its_value(store: InfluxV1SeriesStore) -> None:
    store.write([reading(value=0.2)])
    store.write([reading(value=0.4)])

    assert store.query("bin-wae-0001", Quantity.FILL_RATIO, T0, T0 + timedelta(seconds=1)) == [SeriesPoint(T0, 0.4)]
    assert store.count() == 1


def test_every_gives_the_mean_per_window_and_skips_empty_windows(store: InfluxV1SeriesStore) -> None:
    # Minutes 0, 10, 20 in the first hour; nothing in the second; 130 and 150 in the third.
    store.write([reading(value=v, minutes=m) for m, v in [(0, 0.1), (10, 0.2), (20, 0.6), (130, 0.5), (150, 0.7)]])

    points = store.query("bin-wae-0001", Quantity.FILL_RATIO, T0, T0 + timedelta(hours=4), every=timedelta(hours=1))

    assert [p.time for p in points] == [T0, T0 + timedelta(hours=2)]
    assert [p.value for p in points] == pytest.approx([0.3, 0.6])


def test_windows_align_to_the_epoch(store: InfluxV1SeriesStore) -> None:
    store.write([reading(value=1.0, minutes=5), reading(value=3.0, minutes=25)])

    points = store.query(
        "bin-wae-0001",
        Quantity.FILL_RATIO,
        T0 + timedelta(minutes=5),
        T0 + timedelta(hours=1),
        every=timedelta(minutes=15),
    )

    assert points == [SeriesPoint(T0, 1.0), SeriesPoint(T0 + timedelta(minutes=15), 3.0)]


@pytest.mark.parametrize("asset", HOSTILE_ASSETS)
def test_hostile_asset_ids_round_trip_and_stay_apart(store: InfluxV1SeriesStore, asset: str) -> None:
    store.write([reading(asset=asset, value=0.7), reading(asset="bystander", value=0.1)])

    assert store.query(asset, Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1)) == [SeriesPoint(T0, 0.7)]
    assert store.query("bystander", Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1)) == [SeriesPoint(T0, 0.1)]


def test_all_hostile_asset_ids_in_one_batch_are_distinct_series(store: InfluxV1SeriesStore) -> None:
    store.write([reading(asset=asset, value=index) for index, asset in enumerate(HOSTILE_ASSETS)])

    assert store.count() == len(HOSTILE_ASSETS)
    for index, asset in enumerate(HOSTILE_ASSETS):
        assert store.query(asset, Quantity.FILL_RATIO, T0, T0 + timedelta(seconds=1)) == [SeriesPoint(T0, index)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asset=st.text(min_size=1, max_size=64), value=st.floats(allow_nan=False, allow_infinity=False))
def test_any_asset_id_and_value_round_trip(store: InfluxV1SeriesStore, asset: str, value: float) -> None:
    store.write([reading(asset=asset, value=value)])

    assert store.query(asset, Quantity.FILL_RATIO, T0, T0 + timedelta(seconds=1)) == [SeriesPoint(T0, value)]


@given(first=st.text(max_size=20), second=st.text(max_size=20))
def test_tag_encoding_is_one_to_one_and_never_ends_in_a_backslash(first: str, second: str) -> None:
    if first != second:
        assert tag_value(first) != tag_value(second)
    assert not tag_value(first).endswith("\\")
    assert all(ord(character) >= 0x20 for character in tag_value(first))


def test_plain_asset_ids_are_stored_verbatim() -> None:
    assert tag_value("bin-wae-0001") == "bin-wae-0001"
    assert tag_value("a b,c=d\\e") == "a b,c=d\\e"


def test_large_writes_go_in_gzip_batches_of_at_most_5000_lines(influxd: InfluxdServer, database: str) -> None:
    requests: list[httpx.Request] = []
    with httpx.Client(event_hooks={"request": [requests.append]}) as client:
        store = InfluxV1SeriesStore(influxd.url, database, client=client)
        store.write([reading(value=i, minutes=i / 60) for i in range(12_000)])
        writes = [request for request in requests if request.url.path == "/write"]

        assert len(writes) == 3
        assert all(request.headers["content-encoding"] == "gzip" for request in writes)
        assert writes[0].url.params["precision"] == "u"
        assert store.count() == 12_000
        assert LINES_PER_REQUEST == 5_000
        store.close()
        assert not client.is_closed  # the store closes only clients it made itself


def test_database_is_created_on_first_use_and_creation_is_idempotent(influxd: InfluxdServer, database: str) -> None:
    with InfluxV1SeriesStore(influxd.url, database) as first, InfluxV1SeriesStore(influxd.url, database) as second:
        assert first.count() == 0
        first.write([reading()])
        second.write([reading(minutes=1)])
        assert second.count() == 2

    names = [name for (name,) in influxql(influxd, "", "SHOW DATABASES")[0]["values"]]
    assert names.count(database) == 1


def test_retention_policy_is_written_to_and_read_from(influxd: InfluxdServer, database: str) -> None:
    httpx.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{database}"'}, timeout=10).raise_for_status()
    httpx.post(
        f"{influxd.url}/query",
        data={"q": f'CREATE RETENTION POLICY "raw" ON "{database}" DURATION INF REPLICATION 1'},
        timeout=10,
    ).raise_for_status()
    with InfluxV1SeriesStore(influxd.url, database, retention_policy="raw") as store:
        store.write([reading(value=0.9), reading(value=0.3, minutes=1)])

        assert store.count() == 2
        assert store.query("bin-wae-0001", Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1)) == [
            SeriesPoint(T0, 0.9),
            SeriesPoint(T0 + timedelta(minutes=1), 0.3),
        ]
    assert influxql(influxd, database, 'SELECT count(value) FROM "autogen"."fill_ratio"') == []
    assert influxql(influxd, database, 'SELECT count(value) FROM "raw"."fill_ratio"')[0]["values"][0][1] == 2


def test_a_line_the_server_refuses_is_a_value_error_with_its_message(
    store: InfluxV1SeriesStore, influxd: InfluxdServer
) -> None:
    # A string `value` in the same shard first makes the store's float `value` a field type conflict.
    store.count()
    httpx.post(
        f"{influxd.url}/write",
        params={"db": store.database, "precision": "s"},
        content=f'fill_ratio,asset=x,device={DEVICE} value="full" {int(T0.timestamp())}',
        timeout=10,
    ).raise_for_status()

    with pytest.raises(ValueError, match="field type conflict"):
        store.write([reading(asset="y")])


def test_readings_outside_influx_time_range_are_refused_before_sending(store: InfluxV1SeriesStore) -> None:
    far_future = reading().model_copy(update={"time": datetime(2300, 1, 1, tzinfo=UTC)})

    with pytest.raises(ValueError, match="outside InfluxDB's time range"):
        store.write([reading(), far_future])
    assert store.count() == 0


def test_naive_times_and_empty_windows_are_refused(store: InfluxV1SeriesStore) -> None:
    with pytest.raises(ValueError, match="time zone"):
        store.query("a", Quantity.FILL_RATIO, datetime(2024, 1, 1), T0)
    with pytest.raises(ValueError, match="at least one microsecond"):
        store.query("a", Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1), every=timedelta(0))


def test_a_stopped_server_makes_every_call_unavailable(influxd_factory: Callable[[], InfluxdServer]) -> None:
    server = influxd_factory()
    store = InfluxV1SeriesStore(server.url, "flurfunk", timeout_s=2)
    store.write([reading()])
    server.stop()

    with pytest.raises(SeriesStoreUnavailableError, match="cannot reach InfluxDB"):
        store.write([reading(minutes=1)])
    with pytest.raises(SeriesStoreUnavailableError):
        store.query("bin-wae-0001", Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1))
    with pytest.raises(SeriesStoreUnavailableError):
        store.count()
    store.close()


def test_a_server_that_never_answers_is_unavailable_after_the_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections into the backlog, never reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with (
            InfluxV1SeriesStore(url, "flurfunk", timeout_s=0.3) as store,
            pytest.raises(SeriesStoreUnavailableError, match="did not answer"),
        ):
            store.write([reading()])


@pytest.mark.parametrize("status", [500, 503, 401])
def test_server_errors_and_rejected_credentials_are_unavailable(status: int) -> None:
    # influxd cannot be made to fail on demand; this checks only how the store maps such answers.
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        return httpx.Response(status, json={"error": "engine: cache-max-memory-size exceeded"})

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        store = InfluxV1SeriesStore("http://influx.invalid", "flurfunk", client=client)
        with pytest.raises(SeriesStoreUnavailableError, match=f"HTTP {status}"):
            store.write([reading()])
