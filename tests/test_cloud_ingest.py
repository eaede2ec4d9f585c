"""Batch ingest: tokens, limits, refusals that name the field, idempotent replays, and nothing acked on failure."""

from __future__ import annotations

import sqlite3
import uuid
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud import create_app
from cloud.settings import CloudSettings
from cloud.store.series import SeriesPoint, SeriesStoreUnavailableError
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Asset, AssetKind, Batch, GatewayStatus, Quantity, Reading
from flurfunk.wire import MEDIA_TYPE, encode_batch

T0 = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)
TOKENS = {"gw-birstein": "birstein-token-0123456789", "gw-sinntal": "sinntal-token-0123456789"}
ADMIN = "admin-token-0123456789"
DEVICE = "a84041000181c001"
BIN = Asset(id="bin-1", kind=AssetKind.BIN, municipality="Birstein", village="Fischborn", latitude=50.35, longitude=9.3)


class SwitchableSeries:
    """A real SQLite series store that can be made to fail like a store that is down."""

    def __init__(self, path: Path) -> None:
        self.inner = SqliteSeriesStore(path)
        self.down = False

    def write(self, readings: Sequence[Reading]) -> None:
        if self.down:
            raise SeriesStoreUnavailableError("disk full")
        self.inner.write(readings)

    def query(self, *args: object, **kwargs: object) -> list[SeriesPoint]:
        return self.inner.query(*args, **kwargs)  # type: ignore[arg-type]

    def count(self) -> int:
        return self.inner.count()


@pytest.fixture
def series(tmp_path: Path) -> SwitchableSeries:
    return SwitchableSeries(tmp_path / "series.sqlite")


@pytest.fixture
def client(tmp_path: Path, series: SwitchableSeries) -> Iterator[TestClient]:
    cloud_settings = CloudSettings(
        data_dir=tmp_path,
        gateway_tokens=TOKENS,
        admin_token=ADMIN,
        max_batch_bytes=64 * 1024,
        ingest_rate_per_s=1000,  # the property tests post hundreds of batches; the rate limit has its own tests
        ingest_burst=1000,
    )
    with TestClient(create_app(cloud_settings, series=series)) as test_client:
        test_client.post("/api/v1/admin/inventory", json={"assets": [BIN.model_dump(mode="json")]}, headers=admin())
        yield test_client


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def reading(value: float, time: datetime, asset: str = "bin-1", quantity: Quantity = Quantity.FILL_RATIO) -> Reading:
    return Reading(device=DEVICE, asset=asset, quantity=quantity, value=value, time=time)


def make_batch(
    readings: Sequence[Reading], last_seq: int = 3, gateway_id: str = "gw-birstein", first_seq: int = 1
) -> Batch:
    return Batch(
        gateway_id=gateway_id,
        first_seq=first_seq,
        last_seq=last_seq,
        sent_at=T0 + timedelta(hours=last_seq),
        readings=tuple(readings),
        status=GatewayStatus(buffered=0, oldest_unsynced_s=0.0, dropped={"duplicate": last_seq}),
    )


def post(client: TestClient, body: bytes, token: str | None = TOKENS["gw-birstein"], **headers: str) -> httpx.Response:
    sent = {"Content-Type": MEDIA_TYPE, **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return client.post("/api/v1/ingest/batches", content=body, headers=sent)


def gateway(client: TestClient, gateway_id: str) -> dict:
    return next(g for g in client.get("/api/v1/summary", headers=admin()).json()["gateways"] if g["id"] == gateway_id)


def latest_fill(client: TestClient) -> float:
    store = client.app.state.cloud.store
    return store.latest()["bin-1"][Quantity.FILL_RATIO].value


def test_a_batch_is_stored_and_acknowledged(client: TestClient, series: SwitchableSeries) -> None:
    body = encode_batch(make_batch([reading(0.4, T0), reading(0.5, T0 + timedelta(hours=1))], last_seq=7))
    response = post(client, body)
    assert response.status_code == 200
    assert response.json() == {"acked_seq": 7, "stored": 2, "unknown_assets": []}
    assert series.count() == 2
    state = gateway(client, "gw-birstein")
    assert state["acked_seq"] == 7
    assert state["status"]["dropped"] == {"duplicate": 7}
    assert state["last_seen"] is not None


def test_the_same_batch_twice_stores_each_point_once(client: TestClient, series: SwitchableSeries) -> None:
    body = encode_batch(make_batch([reading(0.1 * i, T0 + timedelta(minutes=i)) for i in range(10)]))
    first, second = post(client, body), post(client, body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert series.count() == 10
    assert client.get("/api/v1/meta", headers=admin()).json() == {
        "readings": 10,
        "latest_reading_time": (T0 + timedelta(minutes=9)).isoformat(),
    }


def test_readings_of_unknown_assets_are_kept_and_named(client: TestClient, series: SwitchableSeries) -> None:
    body = encode_batch(make_batch([reading(0.3, T0), reading(2.0, T0, asset="ghost-7", quantity=Quantity.RAIN_MM)]))
    response = post(client, body)
    assert response.status_code == 200
    assert response.json()["unknown_assets"] == ["ghost-7"]
    assert series.count() == 2


def test_latest_state_never_moves_back_in_time(client: TestClient) -> None:
    assert (
        post(client, encode_batch(make_batch([reading(0.9, T0 + timedelta(hours=5))], last_seq=5))).status_code == 200
    )
    # a late batch from a gateway that was offline carries older readings: stored, but not "latest"
    late = make_batch([reading(0.2, T0), reading(0.3, T0 + timedelta(hours=4))], last_seq=2)
    assert post(client, encode_batch(late)).status_code == 200
    assert latest_fill(client) == 0.9
    assert gateway(client, "gw-birstein")["acked_seq"] == 5  # the acked sequence does not move back either
    assert (
        post(client, encode_batch(make_batch([reading(0.95, T0 + timedelta(hours=6))], last_seq=6))).status_code == 200
    )
    assert latest_fill(client) == 0.95


def test_without_a_known_token_nothing_is_read(client: TestClient, series: SwitchableSeries) -> None:
    body = encode_batch(make_batch([reading(0.4, T0)]))
    for token in (None, "wrong-token-0123456789", ADMIN):
        response = post(client, body, token=token)
        assert response.status_code == 401, token
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert post(client, body, token=None, Authorization="Basic Zm9vOmJhcg==").status_code == 401
    assert series.count() == 0


def test_a_gateway_cannot_post_for_another_gateway(client: TestClient, series: SwitchableSeries) -> None:
    body = encode_batch(make_batch([reading(0.4, T0)], gateway_id="gw-birstein"))
    response = post(client, body, token=TOKENS["gw-sinntal"])
    assert response.status_code == 403
    assert "gw-sinntal" in response.json()["detail"] and "gw-birstein" in response.json()["detail"]
    assert series.count() == 0


def test_oversized_batches_are_refused_by_declared_and_by_actual_size(client: TestClient) -> None:
    too_big = b"\0" * (64 * 1024 + 1)
    assert post(client, too_big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while reading
        for _ in range(65):
            yield b"\0" * 1024

    response = client.post(
        "/api/v1/ingest/batches",
        content=chunks(),
        headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {TOKENS['gw-birstein']}"},
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_a_wrong_media_type_is_refused(client: TestClient) -> None:
    response = post(client, encode_batch(make_batch([reading(0.4, T0)])), **{"Content-Type": "application/json"})
    assert response.status_code == 415
    assert MEDIA_TYPE in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"not compressed", "body", "not zlib-compressed"),
        (zlib.compress(b"\xff\xfe"), "body", "not valid CBOR"),
        (zlib.compress(cbor2.dumps([1, 2])), "batch", "expected a CBOR map"),
        (zlib.compress(cbor2.dumps({"v": 99})), "v", "unsupported batch version"),
    ],
)
def test_malformed_batches_get_a_400_naming_the_field(client: TestClient, body: bytes, field: str, reason: str) -> None:
    response = post(client, body)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["field"] == field
    assert reason in detail["reason"]


def test_an_invalid_reading_is_named_by_its_path(client: TestClient, series: SwitchableSeries) -> None:
    document = cbor2.loads(zlib.decompress(encode_batch(make_batch([reading(0.4, T0), reading(0.5, T0)]))))
    document["readings"]["value"][1] = float("inf")
    response = post(client, zlib.compress(cbor2.dumps(document)))
    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "readings[1].value"
    assert series.count() == 0


def test_series_store_down_means_503_and_nothing_acked(client: TestClient, series: SwitchableSeries) -> None:
    assert post(client, encode_batch(make_batch([reading(0.4, T0)], last_seq=3))).status_code == 200
    series.down = True
    body = encode_batch(make_batch([reading(0.9, T0 + timedelta(hours=1))], first_seq=4, last_seq=8))
    response = post(client, body)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "nothing was acknowledged" in response.json()["detail"]
    assert gateway(client, "gw-birstein")["acked_seq"] == 3
    assert latest_fill(client) == 0.4
    series.down = False
    assert post(client, body).json()["acked_seq"] == 8  # the gateway's retry goes through
    assert latest_fill(client) == 0.9


def test_operational_database_locked_means_503_and_nothing_acked(tmp_path: Path, series: SwitchableSeries) -> None:
    cloud_settings = CloudSettings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'operational.sqlite'}?timeout=0.2",
        gateway_tokens=TOKENS,
        admin_token=ADMIN,
    )
    body = encode_batch(make_batch([reading(0.4, T0)], last_seq=4))
    with TestClient(create_app(cloud_settings, series=series)) as client:
        blocker = sqlite3.connect(tmp_path / "operational.sqlite", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database longer than the busy timeout
        try:
            response = post(client, body)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert gateway(client, "gw-birstein")["acked_seq"] == 0
        assert series.count() == 1  # written first; the gateway's retry writes it again, harmlessly
        assert post(client, body).json()["acked_seq"] == 4
        assert series.count() == 1
        assert gateway(client, "gw-birstein")["acked_seq"] == 4


def test_token_hashes_not_tokens_are_stored(tmp_path: Path, client: TestClient) -> None:
    database = (tmp_path / "operational.sqlite").read_bytes()
    wal = tmp_path / "operational.sqlite-wal"
    stored = database + (wal.read_bytes() if wal.exists() else b"")
    for token in TOKENS.values():
        assert token.encode() not in stored


def test_short_tokens_are_refused_in_settings() -> None:
    with pytest.raises(ValueError, match="gateway gw: token is shorter than 16"):
        CloudSettings(gateway_tokens={"gw": "short"})


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLURFUNK_CLOUD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FLURFUNK_CLOUD_GATEWAY_TOKENS", '{"gw-1": "token-from-env-0123"}')
    monkeypatch.setenv("FLURFUNK_CLOUD_OPEN_READ", "true")
    loaded = CloudSettings()
    assert loaded.gateway_tokens == {"gw-1": "token-from-env-0123"}
    assert loaded.open_read is True
    assert loaded.database_url == f"sqlite:///{tmp_path / 'operational.sqlite'}"
    assert loaded.series_url == f"sqlite:///{tmp_path / 'series.sqlite'}"
    assert loaded.language == "de"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=512) | st.binary(max_size=256).map(zlib.compress))
def test_hostile_bodies_get_400_and_harm_nothing(client: TestClient, series: SwitchableSeries, body: bytes) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert set(response.json()["detail"]) == {"field", "reason"}
    assert series.count() == 0


_values = st.floats(0, 1, allow_nan=False)
_minutes = st.integers(0, 600)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.tuples(_values, _minutes), min_size=1, max_size=8), min_size=1, max_size=4))
def test_any_order_of_batches_and_replays_ends_with_the_newest_value(
    client: TestClient, series: SwitchableSeries, batches: list[list[tuple[float, int]]]
) -> None:
    """Whatever arrives in whatever order, each twice: every point stored once, latest state = the newest one."""
    asset = f"bin-{uuid.uuid4().hex[:12]}"  # the app outlives hypothesis' examples: keep each example apart
    before = series.count()
    written: dict[datetime, float] = {}
    for seq, points in enumerate(batches, start=1):
        readings = [reading(value, T0 + timedelta(minutes=minute), asset=asset) for value, minute in points]
        body = encode_batch(make_batch(readings, last_seq=seq))
        assert post(client, body).status_code == 200
        assert post(client, body).status_code == 200
        for r in readings:
            written[r.time] = r.value
    assert series.count() - before == len(written)
    latest = client.app.state.cloud.store.latest([asset])[asset][Quantity.FILL_RATIO]
    assert (latest.time, latest.value) == (max(written), written[max(written)])


@pytest.mark.parametrize(
    ("when", "reason"),
    [(datetime(1999, 12, 31, 23, 59, tzinfo=UTC), "before 2000"), (datetime(2200, 1, 1, tzinfo=UTC), "ahead")],
)
def test_a_reading_with_an_impossible_time_refuses_the_whole_batch(
    client: TestClient, series: SwitchableSeries, when: datetime, reason: str
) -> None:
    response = post(client, encode_batch(make_batch([reading(0.4, T0), reading(0.5, when)], last_seq=9)))
    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "readings[1].time"
    assert reason in response.json()["detail"]["reason"]
    assert series.count() == 0
    gateways = client.get("/api/v1/summary", headers=admin()).json()["gateways"]
    assert all(g["acked_seq"] == 0 for g in gateways if g["id"] == "gw-birstein")  # nothing acknowledged
