"""The admin API: CRUD with audit, device keys sealed at rest, the vendor CSV import, series queries, and
schemathesis against the OpenAPI spec (no 5xx)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from sqlalchemy import text as sql

from cloud import create_app
from cloud.store.device_csv import MAX_CSV_BYTES, DeviceCsvError, parse_device_csv
from cloud.store.keybox import KeyBox, KeyBoxError
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Quantity, Reading
from tests.cloud_helpers import BOOTSTRAP_HEADERS, asset_body, cloud_client, settings_for, user_headers

TOWN = "Sinntal"
APP_KEY = "2b7e151628aed2a6abf7158809cf4f3c"
CSV_HEADERS = {"Content-Type": "text/csv"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with cloud_client(tmp_path) as test_client:
        for index in (1, 2, 3):
            response = test_client.post(
                "/api/v1/assets", json=asset_body(f"sin-bin-{index}", TOWN), headers=BOOTSTRAP_HEADERS
            )
            assert response.status_code == 201
        yield test_client


def test_assets_crud_keeps_an_audit_trail(client: TestClient) -> None:
    technician = user_headers(client, "technician", TOWN)
    tree = asset_body("sin-oak-1", TOWN, kind="tree", species="Quercus robur", planting_year=2024)
    assert client.post("/api/v1/assets", json=tree, headers=technician).status_code == 201
    assert client.post("/api/v1/assets", json=tree, headers=technician).status_code == 409
    changed = client.patch("/api/v1/assets/sin-oak-1", json={"planting_year": 2023}, headers=technician)
    assert changed.json()["planting_year"] == 2023
    assert client.patch("/api/v1/assets/sin-oak-1", json={"latitude": 91}, headers=technician).status_code == 422
    trees = client.get("/api/v1/assets", params={"kind": "tree"}, headers=technician).json()
    assert [t["id"] for t in trees] == ["sin-oak-1"]
    assert client.delete("/api/v1/assets/sin-oak-1", headers=technician).status_code == 204
    assert client.get("/api/v1/assets/sin-oak-1", headers=technician).status_code == 404

    admin = user_headers(client, "admin", TOWN)
    trail = client.get("/api/v1/audit", params={"entity_id": "sin-oak-1"}, headers=admin).json()
    assert [e["action"] for e in trail] == ["delete", "update", "create"]
    assert all(e["actor"].startswith("user:technician-") for e in trail)
    update = trail[1]
    assert (update["before"]["planting_year"], update["after"]["planting_year"]) == (2024, 2023)
    assert client.get("/api/v1/audit", headers=technician).status_code == 403


def test_device_keys_are_sealed_and_only_an_explicit_export_shows_them(client: TestClient) -> None:
    technician = user_headers(client, "technician", TOWN)
    device = {"dev_eui": "A8-40-41-00-01-81-C0-01", "model_id": "dragino/lse01", "asset": "sin-bin-1"}
    created = client.post("/api/v1/devices", json=device | {"app_key": APP_KEY}, headers=technician)
    assert created.status_code == 201
    assert created.json()["keys"] == ["app_key"] and created.json()["activation"] == "otaa"
    for answer in (created.text, client.get("/api/v1/devices", headers=technician).text):
        assert APP_KEY not in answer.lower()
    store = client.app.state.cloud.store  # type: ignore[attr-defined]
    with store.engine.connect() as connection:
        stored = connection.execute(sql("SELECT app_key_enc FROM devices")).scalar_one()
    assert stored.startswith("v1:") and APP_KEY not in stored.lower()

    exported = client.post("/api/v1/devices/a84041000181c001/keys/export", headers=technician)
    assert exported.json() == {"dev_eui": "a84041000181c001", "keys": {"app_key": APP_KEY}}
    dispatcher = user_headers(client, "dispatcher", TOWN)
    assert client.post("/api/v1/devices/a84041000181c001/keys/export", headers=dispatcher).status_code == 403
    admin = user_headers(client, "admin", TOWN)
    audit = client.get("/api/v1/audit", params={"entity_id": "a84041000181c001"}, headers=admin).json()
    assert [e["action"] for e in audit] == ["export_keys", "create"]
    assert APP_KEY not in str(audit).lower()


def test_a_sealed_key_opens_only_for_its_device_and_field_with_the_right_master_key() -> None:
    box = KeyBox(bytes(32))
    sealed = box.seal("a84041000181c001", "app_key", bytes.fromhex(APP_KEY))
    assert box.open("a84041000181c001", "app_key", sealed).hex() == APP_KEY
    for dev_eui, field, other_box in [
        ("a84041000181c002", "app_key", box),
        ("a84041000181c001", "nwk_s_key", box),
        ("a84041000181c001", "app_key", KeyBox(bytes([1]) * 32)),
    ]:
        with pytest.raises(KeyBoxError, match="does not decrypt"):
            other_box.open(dev_eui, field, sealed)
    with pytest.raises(KeyBoxError, match="32 bytes"):
        KeyBox(b"short")


VENDOR_CSV = (
    "DevEUI;Model;Asset;AppKey;JoinEUI;NwkSKey;AppSKey;DevAddr;Latitude;Longitude;Serial Number\n"
    f"A840410001810001;dragino/lse01;sin-bin-1;{APP_KEY};70B3D57ED0000000;;;;50,31;9,60;S-1\n"
    f"a8-40-41-00-01-81-00-02;milesight-iot/em310-udl;sin-bin-2;;;{APP_KEY};{APP_KEY};26011F22;50.32;9.61;S-2\n"
)


def test_a_vendor_csv_is_imported_whole(client: TestClient) -> None:
    technician = user_headers(client, "technician", TOWN)
    answer = client.post("/api/v1/devices/import", content=VENDOR_CSV.encode(), headers=technician | CSV_HEADERS)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"imported": 2, "ignored_columns": ["Serial Number"]}
    devices = {d["dev_eui"]: d for d in client.get("/api/v1/devices", headers=technician).json()}
    assert devices["a840410001810001"]["activation"] == "otaa"
    assert devices["a840410001810001"]["latitude"] == pytest.approx(50.31)
    assert devices["a840410001810002"]["keys"] == ["nwk_s_key", "app_s_key"]
    assert devices["a840410001810002"]["dev_addr"] == "26011f22"


def test_a_csv_with_bad_rows_names_each_and_imports_nothing(client: TestClient) -> None:
    technician = user_headers(client, "technician", TOWN)
    bad = (
        "dev_eui,model,asset,app_key,latitude,longitude\n"
        f"a840410001810001,dragino/lse01,sin-bin-1,{APP_KEY},50.3,9.6\n"  # fine
        f"a84041000181000g,dragino/lse01,sin-bin-1,{APP_KEY},50.3,9.6\n"  # 2: not hex
        "a840410001810003,dragino/lse01,sin-bin-1,1234,50.3,9.6\n"  # 3: short key
        f"a840410001810004,dragino/lse01,sin-bin-1,{APP_KEY},95,9.6\n"  # 4: latitude
        f"a840410001810001,dragino/lse01,sin-bin-2,{APP_KEY},,\n"  # 5: duplicate
        "a840410001810006,dragino/lse01,sin-bin-1,,,\n"  # 6: no keys
    )
    answer = client.post("/api/v1/devices/import", content=bad.encode(), headers=technician | CSV_HEADERS)
    assert answer.status_code == 422
    errors = answer.json()["detail"]["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [
        (3, "dev_eui"),
        (4, "app_key"),
        (5, "latitude"),
        (6, "dev_eui"),
        (7, "nwk_s_key"),
    ]
    assert "16 hex digits" in errors[0]["reason"] and "also in row 2" in errors[3]["reason"]
    assert client.get("/api/v1/devices", headers=technician).json() == []

    unknown = f"dev_eui,model,asset,app_key\na840410001810001,acme/nothing,sin-bin-9,{APP_KEY}\n"
    answer = client.post("/api/v1/devices/import", content=unknown.encode(), headers=technician | CSV_HEADERS)
    assert [(e["row"], e["column"]) for e in answer.json()["detail"]["errors"]] == [(2, "model_id"), (2, "asset")]
    assert client.get("/api/v1/devices", headers=technician).json() == []


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 400, "empty"),
        (b"dev_eui,asset\n", 400, "model_id is missing"),
        (b"\xff\xfe\x00d", 400, "not UTF-8"),
        (b"x" * (MAX_CSV_BYTES + 1), 413, "over the limit"),
    ],
)
def test_an_unusable_csv_is_refused_as_a_whole(client: TestClient, content: bytes, status: int, message: str) -> None:
    technician = user_headers(client, "technician", TOWN)
    answer = client.post("/api/v1/devices/import", content=content, headers=technician | CSV_HEADERS)
    assert answer.status_code == status
    assert message in str(answer.json()["detail"])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600) | st.text(max_size=400).map(str.encode))
def test_the_csv_parser_never_fails_other_than_with_its_own_error(data: bytes) -> None:
    try:
        parsed = parse_device_csv(b"dev_eui,model,asset,app_key\n" + data)
    except DeviceCsvError:
        return
    for row in parsed.rows:
        assert len(row.dev_eui) == 16 and row.activation in ("otaa", "abp")
    assert all(error.row >= 2 for error in parsed.errors)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=8, max_size=8), st.binary(min_size=16, max_size=16), st.sampled_from([",", ";"])),
        min_size=1,
        max_size=20,
        unique_by=lambda t: t[0],
    )
)
def test_what_a_sheet_holds_comes_out_of_the_parser(devices: list[tuple[bytes, bytes, str]]) -> None:
    delimiter = devices[0][2]
    lines = [delimiter.join(["DevEUI", "Model", "Asset", "AppKey"])]
    lines += [delimiter.join([eui.hex().upper(), "dragino/lse01", "bin-1", key.hex()]) for eui, key, _ in devices]
    parsed = parse_device_csv(("\r\n".join(lines) + "\r\n").encode())
    assert parsed.errors == []
    assert [(r.dev_eui, r.keys["app_key"]) for r in parsed.rows] == [(eui.hex(), key) for eui, key, _ in devices]


def test_series_of_an_asset_raw_and_downsampled(client: TestClient) -> None:
    t0 = datetime(2026, 7, 7, tzinfo=UTC)
    series = client.app.state.cloud.series  # type: ignore[attr-defined]
    series.write(
        [
            Reading(
                device="a840410001810001",
                asset="sin-bin-1",
                quantity=Quantity.FILL_RATIO,
                value=minute / 100,
                time=t0 + timedelta(minutes=minute),
            )
            for minute in range(0, 120, 10)
        ]
    )
    crew = user_headers(client, "crew", TOWN)
    window = {"quantity": "fill_ratio", "start": t0.isoformat(), "end": (t0 + timedelta(hours=2)).isoformat()}
    raw = client.get("/api/v1/assets/sin-bin-1/series", params=window, headers=crew).json()
    assert len(raw["points"]) == 12 and raw["unit"] == "1"
    hourly = client.get("/api/v1/assets/sin-bin-1/series", params=window | {"every": "PT1H"}, headers=crew).json()
    assert [p["value"] for p in hourly["points"]] == pytest.approx([0.25, 0.85])
    assert hourly["every_s"] == 3600
    too_fine = client.get("/api/v1/assets/sin-bin-1/series", params=window | {"every": "PT0.1S"}, headers=crew)
    assert too_fine.status_code == 422
    backwards = window | {"start": window["end"], "end": window["start"]}
    assert client.get("/api/v1/assets/sin-bin-1/series", params=backwards, headers=crew).status_code == 422
    naive = window | {"start": "2026-07-07T00:00:00"}
    assert client.get("/api/v1/assets/sin-bin-1/series", params=naive, headers=crew).status_code == 422


def test_gateways_get_tokens_that_ingest_accepts(client: TestClient) -> None:
    technician = user_headers(client, "technician", TOWN)
    assert client.post("/api/v1/gateways", json={"id": "gw-sinntal"}, headers=technician).json()["municipality"] == TOWN
    token = client.post("/api/v1/gateways/gw-sinntal/token", headers=technician).json()["token"]
    assert token.startswith("ffg_")
    shown = client.get("/api/v1/gateways/gw-sinntal", headers=technician).json()
    assert shown["has_token"] is True and token not in str(shown)
    ingest = client.post("/api/v1/ingest/batches", content=b"", headers={"Authorization": f"Bearer {token}"})
    assert ingest.status_code != 401  # the token is known (the empty body is refused for what it is)


def test_municipalities_are_seeded_and_only_empty_ones_can_go(client: TestClient) -> None:
    towns = client.get("/api/v1/municipalities", headers=BOOTSTRAP_HEADERS).json()
    assert len(towns) == 6 and {"id": "sinntal", "name": TOWN} in towns
    assert client.delete("/api/v1/municipalities/sinntal", headers=BOOTSTRAP_HEADERS).status_code == 409
    new = {"id": "gruendau", "name": "Gründau"}
    assert client.post("/api/v1/municipalities", json=new, headers=BOOTSTRAP_HEADERS).status_code == 201
    assert client.delete("/api/v1/municipalities/gruendau", headers=BOOTSTRAP_HEADERS).status_code == 204


# -- schemathesis: generated requests against every operation; the app may refuse them but never fail ------------

# On tmpfs where there is one: thousands of small commits, and durability is not what this test is about.
_SCHEMA_DIR = Path(
    tempfile.mkdtemp(prefix="flurfunk-schemathesis-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
)
_SCHEMA_APP = create_app(settings_for(_SCHEMA_DIR), series=SqliteSeriesStore(_SCHEMA_DIR / "series.sqlite"))
schema = schemathesis.openapi.from_asgi("/openapi.json", _SCHEMA_APP)
# Bounded to well under a minute on 2 cores, every operation still covered: the coverage phase (which ignores
# max_examples) tries boundary values of valid inputs only — with both modes it made ~2,500 requests, ~90 s — while
# the fuzzing phase keeps generating invalid ones too.
schema.config.phases.coverage.generation.modes = [GenerationMode.POSITIVE]


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_generated_requests_never_get_a_server_error(case: schemathesis.Case) -> None:
    response = case.call(headers=BOOTSTRAP_HEADERS)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
