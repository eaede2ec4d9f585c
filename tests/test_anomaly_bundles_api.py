"""The cloud's anomaly bundle API on SQLite and the real PostgreSQL: upload checked by loading, clear 4xx for bad
archives, versions with sha256, assignment per town or gateway within the tenant scope, audit lines, and the
gateway's download with ETag / If-None-Match."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flurfunk import bundle_archive
from flurfunk.bundle_archive import pack_bundle, sha256_hex
from tests.anomaly_bundle_helpers import packed_test_bundle, write_test_bundle
from tests.cloud_helpers import BOOTSTRAP_HEADERS, bearer, cloud_client, empty_postgres_schema, user_headers

GATEWAY_TOKEN = "gateway-token-0123456789"  # gw-settings, from tests.cloud_helpers.settings_for
BUNDLES = "/api/v1/anomaly-bundles"
FETCH = "/api/v1/gateway/anomaly-bundle"


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    if request.param == "sqlite":
        with cloud_client(tmp_path) as test_client:
            yield test_client
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    with empty_postgres_schema(postgres_url, "bundles") as database_url, cloud_client(tmp_path, database_url) as test:
        yield test


def upload(client: TestClient, archive: bytes, headers: dict[str, str], **params: str) -> tuple[int, dict]:
    response = client.post(BUNDLES, content=archive, headers=headers, params=params)
    return response.status_code, response.json()


def test_publish_assign_fetch_with_etag_and_audit(client: TestClient, tmp_path: Path) -> None:
    archive = packed_test_bundle(tmp_path / "b1", "t-1")
    status, stored = upload(client, archive, BOOTSTRAP_HEADERS)
    assert status == 201, stored
    assert stored["sha256"] == sha256_hex(archive) and stored["size_bytes"] == len(archive)
    assert stored["families"] == ["bin", "soil", "weather"] and stored["municipality"] is None
    assert upload(client, archive, BOOTSTRAP_HEADERS)[0] == 200  # the same archive again: nothing new

    gateway = bearer(GATEWAY_TOKEN)
    assert client.get(FETCH, headers=gateway).status_code == 204  # nothing assigned yet
    answer = client.put(
        "/api/v1/gateways/gw-settings/anomaly-bundle", json={"version": "t-1"}, headers=BOOTSTRAP_HEADERS
    )
    assert answer.status_code == 200, answer.text

    first = client.get(FETCH, headers=gateway)
    assert first.status_code == 200 and first.content == archive
    assert first.headers["etag"] == f'"{sha256_hex(archive)}"'
    assert first.headers["x-flurfunk-bundle-version"] == "t-1"
    again = client.get(FETCH, headers=gateway | {"If-None-Match": f'"{"0" * 64}", {first.headers["etag"]}'})
    assert again.status_code == 304 and again.content == b""
    assert client.get(FETCH, headers=bearer("not-a-gateway-token")).status_code == 401

    # Another version under the same name is refused; under a new name it is accepted and replaces the first.
    other = packed_test_bundle(tmp_path / "b1-other", "t-1", seed=1)
    status, refused = upload(client, other, BOOTSTRAP_HEADERS)
    assert status == 409 and "t-1" in refused["detail"]
    second = packed_test_bundle(tmp_path / "b2", "t-2", seed=2)
    assert upload(client, second, BOOTSTRAP_HEADERS)[0] == 201
    client.put("/api/v1/gateways/gw-settings/anomaly-bundle", json={"version": "t-2"}, headers=BOOTSTRAP_HEADERS)
    changed = client.get(FETCH, headers=gateway | {"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.content == second

    rollout = client.get("/api/v1/anomaly-rollout", headers=BOOTSTRAP_HEADERS).json()
    line = next(line for line in rollout if line["gateway_id"] == "gw-settings")
    assert line["assigned_version"] == "t-2" and line["assigned_through"] == "gateway"
    assert line["running_version"] is None and line["in_step"] is False  # it has not reported yet

    audit = client.get("/api/v1/audit", params={"entity": "anomaly_bundles"}, headers=BOOTSTRAP_HEADERS).json()
    actions = sorted((entry["action"], entry["entity_id"]) for entry in audit)
    assert actions == [
        ("assign", "gateway:gw-settings"),
        ("assign", "gateway:gw-settings"),
        ("create", "t-1"),
        ("create", "t-2"),
    ]
    # A bundle in use cannot be deleted; once unassigned it can.
    assert client.delete(f"{BUNDLES}/t-2", headers=BOOTSTRAP_HEADERS).status_code == 409
    assert client.delete("/api/v1/gateways/gw-settings/anomaly-bundle", headers=BOOTSTRAP_HEADERS).status_code == 204
    assert client.delete(f"{BUNDLES}/t-2", headers=BOOTSTRAP_HEADERS).status_code == 204
    assert client.get(FETCH, headers=gateway).status_code == 204


def tar_with(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_bad_uploads_get_a_4xx_naming_what_is_wrong_and_store_nothing(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_test_bundle(tmp_path / "good", "t-bad")
    manifest = (folder / "bundle.json").read_bytes()
    cases = [
        (tar_with([("bundle.json", manifest), ("../../etc/cron.d/x", b"* * * * * root sh")]), "path traversal"),
        (tar_with([("/etc/passwd", b"x"), ("bundle.json", manifest)]), "absolute"),
        (b"definitely not an archive", "not a tar.gz or zip"),
        (tar_with([("bundle.json", b"{not json")]), "bundle: bundle.json: not JSON"),
        (tar_with([("bundle.json", manifest)]), "bin.npz is missing"),  # the weights are not in the archive
    ]
    broken = json.loads(manifest)
    broken["families"]["soil"]["threshold"] = 7
    (folder / "bundle.json").write_text(json.dumps(broken))
    cases.append((pack_bundle(folder), "families.soil: threshold must be in (0, 1]"))
    folder = write_test_bundle(tmp_path / "bad-tflite", "t-bad")
    (folder / "bin.tflite").write_bytes(b"not a flatbuffer" * 8)  # the .npz is fine: only LiteRT would fail
    cases.append((pack_bundle(folder), "bundle: The model is not a valid Flatbuffer"))
    for archive, reason in cases:
        status, answer = upload(client, archive, BOOTSTRAP_HEADERS)
        assert status == 422, answer
        assert reason in answer["detail"], answer
        assert str(tmp_path) not in answer["detail"] and "/tmp" not in answer["detail"]  # no server paths
    assert client.post(BUNDLES, content=b"", headers=BOOTSTRAP_HEADERS).status_code == 422

    monkeypatch.setattr(bundle_archive, "MAX_ARCHIVE_BYTES", 1000)
    monkeypatch.setattr("cloud.api.anomaly_bundles.MAX_ARCHIVE_BYTES", 1000)
    too_big = client.post(BUNDLES, content=b"\0" * 1001, headers=BOOTSTRAP_HEADERS)
    assert too_big.status_code == 413 and "1000" in too_big.json()["detail"]
    assert client.get(BUNDLES, headers=BOOTSTRAP_HEADERS).json() == []


def test_towns_see_and_assign_only_their_own_and_district_bundles(client: TestClient, tmp_path: Path) -> None:
    orb_admin = user_headers(client, "admin", "Bad Orb")
    sinntal_admin = user_headers(client, "admin", "Sinntal")
    orb_crew = user_headers(client, "crew", "Bad Orb")
    for gateway_id, town in (("gw-orb", "Bad Orb"), ("gw-sinntal", "Sinntal")):
        body = {"id": gateway_id, "municipality": town}
        assert client.post("/api/v1/gateways", json=body, headers=BOOTSTRAP_HEADERS).status_code == 201

    assert upload(client, packed_test_bundle(tmp_path / "d", "district-1"), BOOTSTRAP_HEADERS)[0] == 201
    status, orb_bundle = upload(client, packed_test_bundle(tmp_path / "o", "orb-1", seed=3), orb_admin)
    assert status == 201 and orb_bundle["municipality"] == "Bad Orb"
    assert upload(client, packed_test_bundle(tmp_path / "c", "crew-1", seed=4), orb_crew)[0] == 403
    # A town admin cannot upload for another town: as if it did not exist.
    assert (
        upload(client, packed_test_bundle(tmp_path / "s", "s-1", seed=5), orb_admin, municipality="Sinntal")[0] == 404
    )

    def versions(headers: dict[str, str]) -> list[str]:
        return [bundle["version"] for bundle in client.get(BUNDLES, headers=headers).json()]

    assert versions(orb_admin) == ["district-1", "orb-1"]
    assert versions(orb_crew) == ["district-1", "orb-1"]
    assert versions(sinntal_admin) == ["district-1"]
    assert client.get(f"{BUNDLES}/orb-1", headers=sinntal_admin).status_code == 404
    assert client.get(f"{BUNDLES}/orb-1/archive", headers=sinntal_admin).status_code == 404

    town_bundle = "/api/v1/municipalities/{}/anomaly-bundle"
    assert (
        client.put(town_bundle.format("sinntal"), json={"version": "orb-1"}, headers=sinntal_admin).status_code == 404
    )
    assert (
        client.put(town_bundle.format("bad-orb"), json={"version": "district-1"}, headers=sinntal_admin).status_code
        == 404
    )
    put_gateway = client.put("/api/v1/gateways/gw-orb/anomaly-bundle", json={"version": "orb-1"}, headers=sinntal_admin)
    assert put_gateway.status_code == 404
    assert client.put(town_bundle.format("bad-orb"), json={"version": "orb-1"}, headers=orb_crew).status_code == 403
    # A district admin cannot send one town's bundle to another town's gateways.
    cross = client.put(town_bundle.format("sinntal"), json={"version": "orb-1"}, headers=BOOTSTRAP_HEADERS)
    assert cross.status_code == 409 and "Bad Orb" in cross.json()["detail"]

    assert client.put(town_bundle.format("bad-orb"), json={"version": "orb-1"}, headers=orb_admin).status_code == 200
    assert (
        client.put(town_bundle.format("sinntal"), json={"version": "district-1"}, headers=sinntal_admin).status_code
        == 200
    )
    assert client.put(town_bundle.format("sinntal"), json={"version": "../x"}, headers=sinntal_admin).status_code == 422

    rollout = {line["gateway_id"]: line for line in client.get("/api/v1/anomaly-rollout", headers=orb_admin).json()}
    assert set(rollout) == {"gw-orb"}
    assert rollout["gw-orb"]["assigned_version"] == "orb-1" and rollout["gw-orb"]["assigned_through"] == "municipality"
    state = client.get("/api/v1/gateways/gw-sinntal/anomaly-bundle", headers=sinntal_admin).json()
    assert state["assigned_version"] == "district-1"
    assert client.get("/api/v1/gateways/gw-sinntal/anomaly-bundle", headers=orb_admin).status_code == 404

    # The gateway's own assignment wins over its town's; the town's applies again once it is removed.
    token = client.post("/api/v1/gateways/gw-orb/token", headers=orb_admin).json()["token"]
    assert client.get(FETCH, headers=bearer(token)).headers["x-flurfunk-bundle-version"] == "orb-1"
    client.put("/api/v1/gateways/gw-orb/anomaly-bundle", json={"version": "district-1"}, headers=orb_admin)
    assert client.get(FETCH, headers=bearer(token)).headers["x-flurfunk-bundle-version"] == "district-1"
    client.delete("/api/v1/gateways/gw-orb/anomaly-bundle", headers=orb_admin)
    assert client.get(FETCH, headers=bearer(token)).headers["x-flurfunk-bundle-version"] == "orb-1"
    # Only a district admin deletes a district-wide bundle.
    client.delete(town_bundle.format("sinntal"), headers=sinntal_admin)
    assert client.delete(f"{BUNDLES}/district-1", headers=sinntal_admin).status_code == 409
    assert client.delete(f"{BUNDLES}/district-1", headers=BOOTSTRAP_HEADERS).status_code == 204
