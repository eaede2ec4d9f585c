"""The v1 store against an influxd with authentication on: user/password and retention policy from the series URL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cloud.store import open_series_store
from cloud.store.influx_v1 import InfluxV1SeriesStore
from cloud.store.series import SeriesPoint, SeriesStoreUnavailableError
from flurfunk.contracts import Quantity, Reading
from tests.conftest import INFLUXD_ADMIN, InfluxdServer

T0 = datetime(2025, 9, 1, 6, 0, tzinfo=UTC)


def reading(value: float, minutes: int = 0) -> Reading:
    return Reading(
        device="70b3d57ed0001a2b", asset="bin-bo-0007", quantity=Quantity.FILL_RATIO, value=value,
        time=T0 + timedelta(minutes=minutes),
    )  # fmt: skip


def as_admin(server: InfluxdServer, statement: str) -> None:
    response = httpx.post(f"{server.url}/query", data={"q": statement}, auth=INFLUXD_ADMIN, timeout=10)
    response.raise_for_status()
    assert "error" not in response.json()["results"][0], response.text


def test_an_admin_url_creates_the_database_writes_and_reads(influxd_with_auth: InfluxdServer) -> None:
    user, password = INFLUXD_ADMIN
    database = f"flurfunk_{uuid.uuid4().hex[:10]}"
    store = open_series_store(f"influx-v1://{user}:{password}@127.0.0.1:{influxd_with_auth.port}/{database}")
    assert isinstance(store, InfluxV1SeriesStore)
    with store:
        store.write([reading(0.4), reading(0.6, minutes=15)])
        assert store.count() == 2
        assert store.query("bin-bo-0007", Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1)) == [
            SeriesPoint(T0, 0.4),
            SeriesPoint(T0 + timedelta(minutes=15), 0.6),
        ]


def test_a_user_with_grants_only_writes_and_reads_into_a_given_retention_policy(
    influxd_with_auth: InfluxdServer,
) -> None:
    """Production: the operator creates database, policy and an ingest user; the cloud holds no admin password."""
    database = f"flurfunk_{uuid.uuid4().hex[:10]}"
    as_admin(influxd_with_auth, f'CREATE DATABASE "{database}"')
    as_admin(influxd_with_auth, f'CREATE RETENTION POLICY "ten_years" ON "{database}" DURATION 520w REPLICATION 1')
    as_admin(influxd_with_auth, "CREATE USER ingest WITH PASSWORD 'p@ss word/0123'")
    as_admin(influxd_with_auth, f'GRANT ALL ON "{database}" TO ingest')
    url = f"influx-v1://ingest:p%40ss%20word%2F0123@127.0.0.1:{influxd_with_auth.port}/{database}?rp=ten_years"

    with open_series_store(url) as store:  # type: ignore[attr-defined]
        store.write([reading(0.1), reading(0.2, minutes=15)])
        store.write([reading(0.1)])  # a replay
        assert store.count() == 2
        assert [p.value for p in store.query("bin-bo-0007", Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1))] == [
            0.1,
            0.2,
        ]
    check = httpx.get(
        f"{influxd_with_auth.url}/query",
        params={"db": database, "q": 'SELECT count(value) FROM "ten_years"."fill_ratio"'},
        auth=INFLUXD_ADMIN,
    ).json()
    assert check["results"][0]["series"][0]["values"][0][1] == 2


@pytest.mark.parametrize("credentials", ["", "flurfunk_admin:wrong-password@", "nobody:nothing@"])
def test_missing_or_wrong_credentials_make_the_store_unavailable(
    influxd_with_auth: InfluxdServer, credentials: str
) -> None:
    # Unavailable, not a bad request: the gateway keeps its data and retries once an operator fixed the settings.
    with (
        open_series_store(f"influx-v1://{credentials}127.0.0.1:{influxd_with_auth.port}/flurfunk") as store,  # type: ignore[attr-defined]
        pytest.raises(SeriesStoreUnavailableError, match="HTTP 401"),
    ):
        store.write([reading(0.5)])
