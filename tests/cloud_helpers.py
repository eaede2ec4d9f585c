"""Shared setup for the cloud's API tests: an app, towns, people and their tokens, readings posted as a gateway does."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi.testclient import TestClient

from cloud import create_app
from cloud.settings import CloudSettings
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Batch, Reading
from flurfunk.wire import MEDIA_TYPE, encode_batch

BOOTSTRAP = "bootstrap-admin-token-0123456789"
BOOTSTRAP_HEADERS = {"Authorization": f"Bearer {BOOTSTRAP}"}
PASSWORD = "correct horse battery"
DEVICE_KEY = base64.b64encode(bytes(range(32))).decode()


def settings_for(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> CloudSettings:
    return CloudSettings(
        data_dir=tmp_path,
        database_url=database_url or "",
        admin_token=BOOTSTRAP,
        device_key=DEVICE_KEY,
        gateway_tokens={"gw-settings": "gateway-token-0123456789"},
        **overrides,
    )


@contextmanager
def cloud_client(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Iterator[TestClient]:
    series = SqliteSeriesStore(tmp_path / "series.sqlite")
    try:
        with TestClient(create_app(settings_for(tmp_path, database_url, **overrides), series=series)) as client:
            yield client
    finally:
        series.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ingest(
    client: httpx.Client,
    token: str,
    readings: Iterable[Reading],
    *,
    gateway_id: str,
    sent_at: datetime,
    first_seq: int = 1,
    last_seq: int = 1,
    status: int = 200,
) -> httpx.Response:
    """Post `readings` as one wire batch of `gateway_id` with its token, as a gateway does; asserts the answer's status.

    `client` is a TestClient or an httpx.Client with the served app's base_url."""
    batch = Batch(
        gateway_id=gateway_id, first_seq=first_seq, last_seq=last_seq, sent_at=sent_at, readings=tuple(readings)
    )
    response = client.post(
        "/api/v1/ingest/batches",
        content=encode_batch(batch),
        headers={"Content-Type": MEDIA_TYPE, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == status, response.text
    return response


def make_user(client: TestClient, username: str, role: str, municipality: str | None) -> dict[str, Any]:
    response = client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "role": role, "municipality": municipality},
        headers=BOOTSTRAP_HEADERS,
    )
    assert response.status_code == 201, response.text
    return response.json()


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["token"])


def user_headers(client: TestClient, role: str, municipality: str | None) -> dict[str, str]:
    """A fresh user of `role` in `municipality`, logged in."""
    username = f"{role}-{secrets.token_hex(4)}"
    make_user(client, username, role, municipality)
    return login(client, username)


def asset_body(asset_id: str, municipality: str, kind: str = "bin", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": asset_id,
        "kind": kind,
        "municipality": municipality,
        "village": municipality,
        "latitude": 50.2,
        "longitude": 9.3,
    }
    if kind == "bin":
        body |= {"capacity_l": 1100, "waste_type": "residual", "sensor_to_bottom_m": 1.2, "sensor_to_full_m": 0.2}
    return body | extra


def postgres_schema_url(postgres_url: str, schema: str) -> str:
    """The same database with its own search_path, so each test starts from an empty schema."""
    return f"{postgres_url}?options={quote(f'-csearch_path={schema}')}"


@contextmanager
def empty_postgres_schema(postgres_url: str, prefix: str) -> Iterator[str]:
    """A new schema in the test database for one test, dropped afterwards; yields the URL that uses it."""
    import psycopg

    schema = f"{prefix}_{secrets.token_hex(5)}"
    plain = postgres_url.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield postgres_schema_url(postgres_url, schema)
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
