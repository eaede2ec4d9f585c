"""Ingest end to end against a real influxd: the real gateway SyncClient and DurableBuffer post to the cloud app
served by uvicorn. InfluxDB stopped, frozen or restarted mid-run; replays; one bad reading; the rate limit."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cloud import create_app
from cloud.api.ingest import RETRY_AFTER_S, GatewayRateLimiter
from cloud.settings import CloudSettings
from flurfunk.contracts import Batch, Quantity, Reading
from flurfunk.wire import MEDIA_TYPE, encode_batch
from gateway.buffer import DurableBuffer
from gateway.sync import SyncClient, SyncOutcome
from tests.cloud_helpers import ingest
from tests.conftest import InfluxdServer

GATEWAY = "gw-steinau"
TOKEN = "steinau-token-0123456789"
T0 = datetime(2026, 8, 3, 5, 0, tzinfo=UTC)
READINGS_PER_ENTRY = 4


def entry(seq: int, asset_count: int = 1) -> list[Reading]:
    """The readings of one uplink: a bin's fill ratio and battery, a tree's soil tension, the rain."""
    time = T0 + timedelta(minutes=15 * seq)
    return [
        Reading(device="a84041000181c001", asset=f"bin-{seq % asset_count}", quantity=Quantity.FILL_RATIO,
                value=(seq % 10) / 10, time=time),
        Reading(device="a84041000181c001", asset=f"bin-{seq % asset_count}", quantity=Quantity.BATTERY_V,
                value=3.6, time=time),
        Reading(device="a84041000181c002", asset="tree-1", quantity=Quantity.SOIL_TENSION_KPA, value=40.0 + seq,
                time=time),
        Reading(device="a84041000181c003", asset="station-1", quantity=Quantity.RAIN_MM, value=0.2, time=time),
    ]  # fmt: skip


def influx_count(server: InfluxdServer, database: str) -> int:
    answer = httpx.get(f"{server.url}/query", params={"db": database, "q": "SELECT count(value) FROM /.*/"}).json()
    return sum(series["values"][0][1] for series in answer["results"][0].get("series", []))


def cloud_settings(tmp_path: Path, series_url: str, **overrides: object) -> CloudSettings:
    return CloudSettings(
        data_dir=tmp_path / "cloud", series_url=series_url, gateway_tokens={GATEWAY: TOKEN}, **overrides
    )


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[DurableBuffer]:
    gateway_buffer = DurableBuffer(tmp_path / "gateway.sqlite", quota_bytes=16 * 1024 * 1024)
    yield gateway_buffer
    gateway_buffer.close()


def acked_seq(app: object) -> int:
    states = {state.id: state for state in app.state.cloud.store.gateways()}  # type: ignore[attr-defined]
    return states[GATEWAY].acked_seq if GATEWAY in states else 0


def test_influxd_stopped_mid_run_means_503s_and_no_ack_then_everything_arrives(
    tmp_path: Path,
    influxd_factory: Callable[[], InfluxdServer],
    serve_app: Callable[[object], str],
    buffer: DurableBuffer,
) -> None:
    influx = influxd_factory()
    app = create_app(cloud_settings(tmp_path, f"influx-v1://127.0.0.1:{influx.port}/flurfunk?timeout=3"))
    sync = SyncClient(serve_app(app), TOKEN, GATEWAY, buffer, max_readings_per_batch=5 * READINGS_PER_ENTRY)

    for seq in range(1, 11):
        buffer.append(entry(seq))
    assert sync.sync_until_drained().drained
    assert influx_count(influx, "flurfunk") == 10 * READINGS_PER_ENTRY

    influx.stop()
    for seq in range(11, 31):
        buffer.append(entry(seq))
    for _attempt in range(3):  # the gateway retries while InfluxDB is down: every answer is a 503
        result = sync.sync_once()
        assert result.outcome is SyncOutcome.RETRY_LATER
        assert result.status_code == 503
        assert result.retry_after_s == RETRY_AFTER_S
    assert buffer.stats().entries == 20  # nothing deleted on the gateway
    assert acked_seq(app) == 10  # nothing acknowledged by the cloud

    influx.restart()
    drained = sync.sync_until_drained()
    assert drained.drained
    assert drained.readings_acked == 20 * READINGS_PER_ENTRY
    assert buffer.stats().entries == 0
    assert acked_seq(app) == 30
    assert influx_count(influx, "flurfunk") == 30 * READINGS_PER_ENTRY
    series = app.state.cloud.series
    assert [p.value for p in series.query("tree-1", Quantity.SOIL_TENSION_KPA, T0, T0 + timedelta(days=1))] == [
        40.0 + seq for seq in range(1, 31)
    ]


def test_influxd_too_slow_means_503_after_the_timeout_and_no_ack(
    tmp_path: Path,
    influxd_factory: Callable[[], InfluxdServer],
    serve_app: Callable[[object], str],
    buffer: DurableBuffer,
) -> None:
    influx = influxd_factory()
    app = create_app(cloud_settings(tmp_path, f"influx-v1://127.0.0.1:{influx.port}/flurfunk?timeout=1"))
    sync = SyncClient(serve_app(app), TOKEN, GATEWAY, buffer)
    buffer.append(entry(1))
    assert sync.sync_until_drained().drained  # the database exists; now the server stops answering

    buffer.append(entry(2))
    influx.pause()
    try:
        result = sync.sync_once()
    finally:
        influx.resume()
    assert (result.outcome, result.status_code) == (SyncOutcome.RETRY_LATER, 503)
    assert buffer.stats().entries == 1
    assert acked_seq(app) == 1

    assert sync.sync_until_drained().drained
    assert influx_count(influx, "flurfunk") == 2 * READINGS_PER_ENTRY


def post(base_url: str, body: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": MEDIA_TYPE}
    return httpx.post(f"{base_url}/api/v1/ingest/batches", content=body, headers=headers, timeout=30)


def test_the_same_batch_posted_twice_stores_each_point_once(
    tmp_path: Path, influxd: InfluxdServer, serve_app: Callable[[object], str]
) -> None:
    database = f"flurfunk_{uuid.uuid4().hex[:10]}"
    base_url = serve_app(create_app(cloud_settings(tmp_path, f"influx-v1://127.0.0.1:{influxd.port}/{database}")))
    readings = [reading for seq in range(1, 26) for reading in entry(seq, asset_count=5)]
    body = encode_batch(Batch(gateway_id=GATEWAY, first_seq=1, last_seq=25, sent_at=T0, readings=tuple(readings)))

    first, second = post(base_url, body), post(base_url, body)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"acked_seq": 25, "stored": 100, "unknown_assets": sorted(
        {r.asset for r in readings})}  # fmt: skip
    assert influx_count(influxd, database) == 100


def test_one_bad_reading_refuses_its_batch_and_the_gateway_quarantines_only_its_entry(
    tmp_path: Path, influxd: InfluxdServer, serve_app: Callable[[object], str], buffer: DurableBuffer
) -> None:
    """The policy (cloud/api/ingest.py): refused whole, naming the reading; the gateway narrows it down."""
    database = f"flurfunk_{uuid.uuid4().hex[:10]}"
    app = create_app(cloud_settings(tmp_path, f"influx-v1://127.0.0.1:{influxd.port}/{database}"))
    sync = SyncClient(serve_app(app), TOKEN, GATEWAY, buffer)
    bad = entry(5)
    bad[2] = bad[2].model_copy(update={"time": datetime(2099, 1, 1, tzinfo=UTC)})  # a gateway clock gone wrong
    for seq in range(1, 13):
        buffer.append(bad if seq == 5 else entry(seq))

    first = sync.sync_once()
    assert first.status_code == 400
    assert "readings[18].time" in first.detail and "ahead" in first.detail  # entry 5's third reading
    assert influx_count(influxd, database) == 0  # refused whole: nothing of the batch stored

    assert sync.sync_until_drained().drained
    (quarantined,) = buffer.quarantined()
    assert quarantined.seq == 5
    assert "readings[2].time" in quarantined.reason
    assert influx_count(influxd, database) == 11 * READINGS_PER_ENTRY
    assert acked_seq(app) == 12


def test_points_influxdb_refuses_are_a_400_not_a_503(
    tmp_path: Path, influxd: InfluxdServer, serve_app: Callable[[object], str]
) -> None:
    database = f"flurfunk_{uuid.uuid4().hex[:10]}"
    httpx.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{database}"'}).raise_for_status()
    # Someone wrote `value` as a string into the shard: InfluxDB refuses our float `value` (field type conflict).
    httpx.post(
        f"{influxd.url}/write",
        params={"db": database, "precision": "s"},
        content=f'fill_ratio,asset=x,device=y value="full" {int(T0.timestamp())}',
    ).raise_for_status()
    base_url = serve_app(create_app(cloud_settings(tmp_path, f"influx-v1://127.0.0.1:{influxd.port}/{database}")))

    with httpx.Client(base_url=base_url, timeout=30) as http:
        response = ingest(http, TOKEN, entry(1), gateway_id=GATEWAY, sent_at=T0, status=400)

    assert response.json()["detail"]["field"] == "readings"
    assert "field type conflict" in response.json()["detail"]["reason"]


def test_a_gateway_over_its_rate_gets_429_with_retry_after_and_others_go_on(
    tmp_path: Path, serve_app: Callable[[object], str]
) -> None:
    settings = CloudSettings(
        data_dir=tmp_path,
        gateway_tokens={GATEWAY: TOKEN, "gw-birstein": "birstein-token-0123456789"},
        ingest_rate_per_s=0.2,
        ingest_burst=2,
    )
    base_url = serve_app(create_app(settings))
    batch = Batch(gateway_id=GATEWAY, first_seq=1, last_seq=1, sent_at=T0, readings=tuple(entry(1)))

    answers = [post(base_url, encode_batch(batch)) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 5
    assert "nothing was acknowledged" in answers[2].json()["detail"]
    with httpx.Client(base_url=base_url, timeout=30) as http:  # the same batch from another gateway: its own bucket
        ingest(http, "birstein-token-0123456789", entry(1), gateway_id="gw-birstein", sent_at=T0)


def test_the_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [100.0]
    limiter = GatewayRateLimiter(rate_per_s=2.0, burst=3, clock=lambda: now[0])

    assert [limiter.take("gw-a") for _ in range(3)] == [None, None, None]
    assert limiter.take("gw-a") == pytest.approx(0.5)  # one token comes back after half a second
    assert limiter.take("gw-b") is None  # each gateway has its own bucket
    now[0] += 0.5
    assert limiter.take("gw-a") is None
    assert limiter.take("gw-a") == pytest.approx(0.5)
    now[0] += 3600  # a long pause fills the bucket only up to the burst
    assert [limiter.take("gw-a") for _ in range(4)][-1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="rate_per_s > 0"):
        GatewayRateLimiter(rate_per_s=0, burst=1)
