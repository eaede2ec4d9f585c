"""Accounts: password login, opaque expiring tokens, API keys, roles; wrong or expired tokens get 401."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql

from cloud.auth import ROLE_PERMISSIONS, Permission, Role, hash_password, verify_password
from tests.cloud_helpers import (
    BOOTSTRAP_HEADERS,
    PASSWORD,
    asset_body,
    bearer,
    cloud_client,
    login,
    make_user,
    user_headers,
)

BAD_ORB = "Bad Orb"
DEV_EUI = "a84041000181c001"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with cloud_client(tmp_path) as test_client:
        yield test_client


def test_login_gives_a_token_that_says_who_you_are(client: TestClient) -> None:
    make_user(client, "anna", "dispatcher", BAD_ORB)
    answer = client.post("/api/v1/auth/login", json={"username": "anna", "password": PASSWORD}).json()
    assert answer["token"].startswith("ffs_") and answer["role"] == "dispatcher"
    assert datetime.fromisoformat(answer["expires_at"]) > datetime.now(UTC) + timedelta(hours=11)
    me = client.get("/api/v1/auth/me", headers=bearer(answer["token"])).json()
    assert me == {"subject": "user:anna", "role": "dispatcher", "municipality": BAD_ORB}


@pytest.mark.parametrize(
    ("username", "password"), [("anna", "wrong password!"), ("nobody", PASSWORD), ("ANNA", PASSWORD)]
)
def test_a_wrong_password_or_unknown_user_gets_the_same_401(client: TestClient, username: str, password: str) -> None:
    make_user(client, "anna", "crew", BAD_ORB)
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json()["detail"] == "username or password not accepted"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ffs_guessed-token", "Bearer ffk_guessed-key", "Bearer gateway-token-0123456789", "Basic abc", ""],
)
def test_wrong_tokens_get_401(client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for method, path in [("GET", "/api/v1/assets"), ("GET", "/api/v1/feed/tasks"), ("POST", "/api/v1/devices")]:
        response = client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_expired_login_gets_401(tmp_path: Path) -> None:
    with cloud_client(tmp_path, session_ttl_hours=0.5 / 3600) as client:
        make_user(client, "anna", "crew", BAD_ORB)
        headers = login(client, "anna")
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
        time.sleep(0.6)
        expired = client.get("/api/v1/auth/me", headers=headers)
        assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_logout_ends_the_login(client: TestClient) -> None:
    make_user(client, "anna", "crew", BAD_ORB)
    headers = login(client, "anna")
    assert client.post("/api/v1/auth/logout", headers=headers).json() == {"revoked": True}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_a_deactivated_user_or_new_password_ends_logins(client: TestClient) -> None:
    user = make_user(client, "anna", "crew", BAD_ORB)
    headers = login(client, "anna")
    changed = client.patch(
        f"/api/v1/users/{user['id']}", json={"password": "a new passphrase"}, headers=BOOTSTRAP_HEADERS
    )
    assert changed.status_code == 200
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    headers = login(client, "anna", "a new passphrase")
    client.patch(f"/api/v1/users/{user['id']}", json={"active": False}, headers=BOOTSTRAP_HEADERS)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert (
        client.post("/api/v1/auth/login", json={"username": "anna", "password": "a new passphrase"}).status_code == 401
    )


def test_api_keys_work_until_deleted_or_expired(client: TestClient) -> None:
    admin = user_headers(client, "admin", BAD_ORB)
    created = client.post("/api/v1/api-keys", json={"name": "GIS export", "role": "dispatcher"}, headers=admin)
    assert created.status_code == 201
    key = created.json()
    assert key["key"].startswith("ffk_") and key["municipality"] == BAD_ORB
    assert "key" not in client.get(f"/api/v1/api-keys/{key['id']}", headers=admin).json()
    assert client.get("/api/v1/auth/me", headers=bearer(key["key"])).json()["role"] == "dispatcher"

    store = client.app.state.cloud.store  # type: ignore[attr-defined]
    with store.engine.begin() as connection:
        connection.execute(sql("UPDATE api_keys SET expires_at = :past"), {"past": datetime(2020, 1, 1)})
    assert client.get("/api/v1/auth/me", headers=bearer(key["key"])).status_code == 401

    other = client.post("/api/v1/api-keys", json={"name": "Bauhof", "role": "crew"}, headers=admin).json()
    assert client.delete(f"/api/v1/api-keys/{other['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(other["key"])).status_code == 401


def test_secrets_are_stored_only_as_hashes(client: TestClient) -> None:
    make_user(client, "anna", "admin", BAD_ORB)
    token = login(client, "anna")["Authorization"].removeprefix("Bearer ")
    key = client.post("/api/v1/api-keys", json={"name": "k", "role": "crew"}, headers=bearer(token)).json()["key"]
    store = client.app.state.cloud.store  # type: ignore[attr-defined]
    with store.engine.connect() as connection:
        dump = " ".join(
            str(row)
            for table in ("users", "session_tokens", "api_keys", "audit_log")
            for row in connection.execute(sql(f"SELECT * FROM {table}"))
        )
    for secret in (PASSWORD, token, key):
        assert secret not in dump


def test_a_crew_user_cannot_change_devices_but_can_move_tasks(client: TestClient) -> None:
    client.post("/api/v1/assets", json=asset_body("orb-bin-1", BAD_ORB), headers=BOOTSTRAP_HEADERS)
    device = {"dev_eui": DEV_EUI, "model_id": "dragino/lse01", "asset": "orb-bin-1", "app_key": "00" * 16}
    assert client.post("/api/v1/devices", json=device, headers=BOOTSTRAP_HEADERS).status_code == 201
    crew = user_headers(client, "crew", BAD_ORB)
    assert client.get(f"/api/v1/devices/{DEV_EUI}", headers=crew).status_code == 200
    refused = [
        client.post("/api/v1/devices", json={**device, "dev_eui": "a84041000181c002"}, headers=crew),
        client.patch(f"/api/v1/devices/{DEV_EUI}", json={"report_interval_s": 60}, headers=crew),
        client.delete(f"/api/v1/devices/{DEV_EUI}", headers=crew),
        client.post(f"/api/v1/devices/{DEV_EUI}/keys/export", headers=crew),
        client.post("/api/v1/devices/import", content=b"dev_eui,model,asset\n", headers=crew),
    ]
    for response in refused:
        assert response.status_code == 403, response.request.url
        assert "crew may not" in response.json()["detail"]
    assert client.get(f"/api/v1/devices/{DEV_EUI}", headers=crew).json()["report_interval_s"] == 3600


def test_a_town_admin_cannot_make_district_admins(client: TestClient) -> None:
    admin = user_headers(client, "admin", BAD_ORB)
    answer = client.post(
        "/api/v1/users",
        json={"username": "boss", "password": PASSWORD, "role": "district_admin", "municipality": None},
        headers=admin,
    )
    assert answer.status_code == 403
    assert client.post("/api/v1/municipalities", json={"id": "x", "name": "X"}, headers=admin).status_code == 403


def test_roles_grow_from_crew_to_district_admin() -> None:
    assert ROLE_PERMISSIONS[Role.CREW] < ROLE_PERMISSIONS[Role.DISPATCHER] < ROLE_PERMISSIONS[Role.ADMIN]
    assert ROLE_PERMISSIONS[Role.TECHNICIAN] < ROLE_PERMISSIONS[Role.ADMIN] < ROLE_PERMISSIONS[Role.DISTRICT_ADMIN]
    assert Permission.MANAGE_INVENTORY not in ROLE_PERMISSIONS[Role.CREW]


@settings(max_examples=25, deadline=None)
@given(password=st.text(min_size=1, max_size=80), other=st.text(min_size=1, max_size=80))
def test_a_password_verifies_against_its_own_hash_only(password: str, other: str) -> None:
    stored = hash_password(password, n=2**4)  # cheap parameters: the property does not depend on the cost
    assert verify_password(password, stored)
    assert verify_password(other, stored) == (other == password)
    *_, salt, digest = stored.split("$")  # the cost fields before them are numbers a password may equal
    assert password not in (salt, digest)


@pytest.mark.parametrize(
    "stored", ["", "scrypt$1$2", "bcrypt$x$y$z$a$b", "scrypt$16$8$1$!!$!!", "scrypt$3$8$1$AA==$AA=="]
)
def test_a_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert verify_password("anything", stored) is False
