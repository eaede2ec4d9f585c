"""Tenancy on the real PostgreSQL: people of one town get 404 for every object of another town, on every endpoint.

The test walks the app's OpenAPI spec, not a hand-picked list: a new endpoint with a path parameter the test does not
know fails here until it is classified below.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.alerts.engine import AlertRecord
from cloud.store.operational import Scope, StoredRoute
from flurfunk.contracts import AlertState, Batch, Quantity, Reading, Severity, Task, TaskKind
from tests.anomaly_bundle_helpers import packed_test_bundle
from tests.cloud_helpers import (
    BOOTSTRAP_HEADERS,
    asset_body,
    cloud_client,
    empty_postgres_schema,
    make_user,
    user_headers,
)

HOME, OTHER = "Birstein", "Bad Orb"
DAY = date(2026, 7, 7)
T0 = datetime(2026, 7, 7, 6, tzinfo=UTC)
TOWN_ROLES = ("admin", "dispatcher", "technician", "crew")
# Path parameters that are not town objects: a day is a day everywhere, device models are shared on purpose.
NOT_TOWN_OBJECTS = {"day": DAY.isoformat(), "vendor": "dragino", "model": "lse01"}
SHARED_PATHS = {"/api/v1/device-models/{vendor}/{model}"}
# gateway tokens, not people: see test_cloud_ingest and test_anomaly_bundles_api
GATEWAY_AUTH_PATHS = {"/api/v1/ingest/batches", "/api/v1/gateway/anomaly-bundle"}


@dataclass(frozen=True)
class Town:
    name: str
    marker: str  # in every id, so a leak in any answer is easy to find
    ids: dict[str, str]


def _route(route_id: str, municipality: str, stops: list[str]) -> StoredRoute:
    return StoredRoute(
        id=route_id,
        municipality=municipality,
        kind=TaskKind.COLLECT,
        day=DAY,
        stops=stops,
        km=3.0,
        polyline=[(50.2, 9.3), (50.21, 9.31)],
    )


def populate(client: TestClient, name: str, marker: str, dev_eui: str) -> Town:
    asset_id, gateway_id, task_id = f"{marker}-bin", f"{marker}-gw", f"{marker}-task"
    post = lambda path, body: client.post(path, json=body, headers=BOOTSTRAP_HEADERS)  # noqa: E731
    assert post("/api/v1/assets", asset_body(asset_id, name)).status_code == 201
    device = {"dev_eui": dev_eui, "model_id": "dragino/lse01", "asset": asset_id, "app_key": "11" * 16}
    assert post("/api/v1/devices", device).status_code == 201
    assert post("/api/v1/gateways", {"id": gateway_id, "municipality": name}).status_code == 201
    user = make_user(client, f"{marker}-user", "crew", name)
    key = post("/api/v1/api-keys", {"name": f"{marker}-key", "role": "crew", "municipality": name}).json()
    store = client.app.state.cloud.store  # type: ignore[attr-defined]
    task = Task(
        id=task_id,
        kind=TaskKind.COLLECT,
        asset=asset_id,
        municipality=name,
        due_from=T0,
        due_until=T0 + timedelta(hours=8),
        priority=50,
        reason=f"{marker} full",
        route_id=f"{marker}-route",
    )
    store.replace_plan(DAY, [task], [_route(f"{marker}-route", name, [asset_id])], scope=Scope(name), actor="test")
    reading = Reading(device=dev_eui, asset=asset_id, quantity=Quantity.FILL_RATIO, value=0.9, time=T0)
    store.record_batch(Batch(gateway_id=gateway_id, first_seq=1, last_seq=1, sent_at=T0, readings=(reading,)), T0)
    alert = AlertRecord(
        id=f"{marker}-alert",
        municipality=name,
        rule="bin-full",
        group=asset_id,
        crew="abfall",
        severity=Severity.INFO,
        state=AlertState.OPEN,
        members=[asset_id],
        first_seen=T0,
        last_seen=T0,
    )
    client.app.state.alerts.alerts.save([alert], [])  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as scratch:  # an anomaly model bundle of the town's own
        archive = packed_test_bundle(Path(scratch), f"{marker}-model")
    answer = client.post(
        "/api/v1/anomaly-bundles", content=archive, params={"municipality": name}, headers=BOOTSTRAP_HEADERS
    )
    assert answer.status_code == 201, answer.text
    slug = client.get("/api/v1/municipalities", headers=BOOTSTRAP_HEADERS).json()
    municipality_id = next(m["id"] for m in slug if m["name"] == name)
    ids = {
        "municipality_id": municipality_id,
        "asset_id": asset_id,
        "dev_eui": dev_eui,
        "gateway_id": gateway_id,
        "version": f"{marker}-model",
        "user_id": str(user["id"]),
        "key_id": str(key["id"]),
        "task_id": task_id,
        "alert_id": alert.id,
    }
    return Town(name=name, marker=marker, ids=ids)


@pytest.fixture
def pg_client(postgres_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with empty_postgres_schema(postgres_url, "tenancy") as database_url, cloud_client(tmp_path, database_url) as client:
        assert client.app.state.cloud.store.engine.dialect.name == "postgresql"  # type: ignore[attr-defined]
        yield client


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [
        (path, method.upper(), operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if path not in GATEWAY_AUTH_PATHS
    ]


def _fill(path: str, ids: dict[str, str]) -> str | None:
    """The path with the town's ids, None when it names no town object; fails for an unknown parameter."""
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    unknown = [n for n in names if n not in ids and n not in NOT_TOWN_OBJECTS]
    assert not unknown, f"{path}: classify path parameter(s) {unknown} in test_cloud_tenancy"
    if path in SHARED_PATHS or not any(n in ids for n in names):
        return None
    for name in names:
        path = path.replace(f"{{{name}}}", ids.get(name) or NOT_TOWN_OBJECTS[name])
    return path


def _query_names(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


@pytest.mark.integration
def test_people_of_one_town_get_404_for_every_object_of_another_town(pg_client: TestClient) -> None:
    client = pg_client
    home = populate(client, HOME, "bir-secret", "a84041000181b001")
    other = populate(client, OTHER, "orb-secret", "a84041000181a001")
    people = {role: user_headers(client, role, HOME) for role in TOWN_ROLES}

    checked = 0
    for path, method, operation in _operations(client):
        foreign = _fill(path, other.ids)
        if foreign is not None:
            for role, headers in people.items():
                response = client.request(method, foreign, headers=headers, json={})
                assert response.status_code == 404, (role, method, foreign, response.status_code, response.text)
                assert other.marker not in response.text or other.marker in response.json()["detail"]
            checked += 1
            if method == "GET":
                # Control: the same call on the home town's object is answered, so the 404s above are the scope's.
                own = _fill(path, home.ids)
                assert own is not None
                query = {"quantity": "fill_ratio", "start": T0.isoformat(), "end": (T0 + timedelta(1)).isoformat()}
                response = client.get(own, headers=people["admin"], params=query if "series" in own else None)
                assert response.status_code == 200, (own, response.text)
            continue
        if "municipality" in _query_names(operation):
            filled = _fill(path, {}) if "{" in path else path
            target = filled or path.replace("{day}", NOT_TOWN_OBJECTS["day"])
            for role, headers in people.items():
                response = client.request(method, target, headers=headers, params={"municipality": OTHER})
                assert response.status_code == 404, (role, method, path, response.status_code, response.text)
            checked += 1
            continue
        if method == "GET":
            # Lists, pages and shared objects: nothing of the other town may show, whatever the role.
            for name, value in NOT_TOWN_OBJECTS.items():
                path = path.replace(f"{{{name}}}", value)
            for role, headers in people.items():
                response = client.get(path, headers=headers)
                assert response.status_code in (200, 403), (role, path, response.text)
                assert other.marker not in response.text, (role, path)
                assert OTHER not in response.text, (role, path)
            checked += 1
    assert checked >= 30


@pytest.mark.integration
def test_creating_in_another_town_is_404_too(pg_client: TestClient) -> None:
    client = pg_client
    populate(client, OTHER, "orb-secret", "a84041000181a001")
    admin = user_headers(client, "admin", HOME)
    device = {"dev_eui": "a84041000181b009", "model_id": "dragino/lse01", "asset": "orb-secret-bin"}
    attempts = {
        "/api/v1/assets": asset_body("sneaky-bin", OTHER),
        "/api/v1/gateways": {"id": "sneaky-gw", "municipality": OTHER},
        "/api/v1/users": {"username": "sneaky", "password": "long enough pw", "role": "crew", "municipality": OTHER},
        "/api/v1/api-keys": {"name": "sneaky", "role": "crew", "municipality": OTHER},
        "/api/v1/devices": device | {"app_key": "22" * 16},
        "/api/v1/admin/inventory": {"assets": [asset_body("sneaky-bin", OTHER)]},
    }
    spec_posts = {path for path, method, op in _operations(client) if method == "POST" and "requestBody" in op}
    for path, body in attempts.items():
        assert path in spec_posts, path
        response = client.post(path, json=body, headers=admin)
        assert response.status_code == 404, (path, response.text)
    csv = b"dev_eui,model,asset,app_key\na84041000181b00a,dragino/lse01,orb-secret-bin," + b"33" * 16 + b"\n"
    imported = client.post("/api/v1/devices/import", content=csv, headers=admin | {"Content-Type": "text/csv"})
    assert imported.status_code == 422
    assert imported.json()["detail"]["errors"] == [{"row": 2, "column": "asset", "reason": "no asset 'orb-secret-bin'"}]
    moved = client.patch("/api/v1/assets/sneaky-bin", json={"municipality": OTHER}, headers=admin)
    assert moved.status_code == 404


@pytest.mark.integration
def test_a_dispatcher_sees_only_the_own_towns_tasks_and_plans_only_them(pg_client: TestClient) -> None:
    client = pg_client
    populate(client, HOME, "bir-secret", "a84041000181b001")
    populate(client, OTHER, "orb-secret", "a84041000181a001")
    dispatcher = user_headers(client, "dispatcher", OTHER)
    tasks = client.get("/api/v1/feed/tasks", headers=dispatcher).json()
    assert [t["id"] for t in tasks] == ["orb-secret-task"]
    assert {r["municipality"] for r in client.get("/api/v1/feed/routes", headers=dispatcher).json()} == {OTHER}
    page = client.get("/", headers=dispatcher, params={"day": DAY.isoformat()}).text
    assert "orb-secret-bin" in page and "bir-secret" not in page and HOME not in page
    summary = client.get("/api/v1/summary", headers=dispatcher).json()
    assert set(summary["tasks"]) == {OTHER} and [g["id"] for g in summary["gateways"]] == ["orb-secret-gw"]

    class EmptyPlanner:
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            self.assets = args[2]
            return type("Plan", (), {"tasks": [], "routes": [], "skipped": []})()

    planner = EmptyPlanner()
    client.app.state.cloud = replace(client.app.state.cloud, planner=planner)  # type: ignore[attr-defined]
    assert client.post(f"/api/v1/plan/{DAY}", headers=dispatcher).status_code == 200
    assert [a.id for a in planner.assets] == ["orb-secret-bin"]
    everything = client.get("/api/v1/feed/tasks", headers=BOOTSTRAP_HEADERS).json()
    assert [t["id"] for t in everything] == ["bir-secret-task"]  # only Bad Orb's planned task was replaced
