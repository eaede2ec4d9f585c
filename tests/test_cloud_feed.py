"""Planning a day, the task feed (JSON, GeoJSON), task state changes, the summary and the dispatcher page."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud import create_app
from cloud.settings import CloudSettings
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Asset, AssetKind, Depot, Device, Quantity, Reading, Task, TaskKind
from tests.cloud_helpers import ingest

DAY = date(2026, 7, 7)
WORK_START = datetime(2026, 7, 7, 4, 0, tzinfo=UTC)
ADMIN = "admin-token-0123456789"
GATEWAY_TOKEN = "gateway-token-0123456789"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}

DEPOTS = [
    Depot(municipality="Birstein", name="Bauhof Birstein", latitude=50.352, longitude=9.301),
    Depot(municipality="Sinntal", name="Bauhof Sinntal", latitude=50.317, longitude=9.634),
]
ASSETS = [
    Asset(id="bin-1", kind=AssetKind.BIN, municipality="Birstein", village="Fischborn", latitude=50.36, longitude=9.28),
    Asset(
        id="bin-2", kind=AssetKind.BIN, municipality="Birstein", village="Kirchbracht", latitude=50.38, longitude=9.33
    ),
    Asset(
        id="tree-1", kind=AssetKind.TREE, municipality="Sinntal", village="Sterbfritz", latitude=50.31, longitude=9.61
    ),
]
DEVICES = [
    Device(dev_eui="a84041000181c001", model_id="dragino/ldds75", asset="bin-1", report_interval_s=3600),
    Device(dev_eui="a84041000181c002", model_id="dragino/ldds75", asset="bin-2", report_interval_s=3600),
    Device(dev_eui="a84041000181c003", model_id="dragino/lse01", asset="tree-1", report_interval_s=3600),
]


@dataclass
class TinyPlan:
    tasks: list[Task]
    routes: list[Any]
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class TinyRoute:
    id: str
    municipality: str
    kind: TaskKind
    day: date
    stops: list[str]
    km: float
    polyline: list[tuple[float, float]]


@dataclass
class TinyPlanner:
    """Collect every bin over `threshold`, water every tree; remembers what it was given."""

    threshold: float = 0.8
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self,
        day: date,
        depots: Sequence[Depot],
        assets: Sequence[Asset],
        latest: Mapping[str, Mapping[Quantity, Any]],
        language: str = "de",
    ) -> TinyPlan:
        self.calls.append({"day": day, "depots": depots, "assets": assets, "latest": latest, "language": language})
        tasks: list[Task] = []
        for asset in assets:
            fill = latest.get(asset.id, {}).get(Quantity.FILL_RATIO)
            if asset.kind is AssetKind.BIN and fill is not None and fill.value >= self.threshold:
                kind, reason = TaskKind.COLLECT, f"<b>{asset.id}</b> ist voll"
            elif asset.kind is AssetKind.TREE:
                kind, reason = TaskKind.WATER, f"{asset.id} ist trocken"
            else:
                continue
            tasks.append(
                Task(
                    id=f"{day}-{kind.value}-{asset.id}",
                    kind=kind,
                    asset=asset.id,
                    municipality=asset.municipality,
                    due_from=WORK_START,
                    due_until=WORK_START + timedelta(hours=8),
                    priority=90 if kind is TaskKind.COLLECT else 50,
                    reason=reason,
                    evidence={"litres": 150.0} if kind is TaskKind.WATER else {"fill_ratio": fill.value},
                    route_id=f"{day}-{kind.value}-{asset.municipality}",
                )
            )
        routes = []
        for (municipality, kind), stops in _group(tasks).items():
            depot = next(d for d in depots if d.municipality == municipality)
            points = [(depot.latitude, depot.longitude)]
            points += [(a.latitude, a.longitude) for s in stops for a in assets if a.id == s]
            routes.append(
                TinyRoute(
                    f"{day}-{kind.value}-{municipality}", municipality, kind, day, stops, 3.5, [*points, points[0]]
                )
            )
        return TinyPlan(tasks=tasks, routes=routes, skipped=[("bin-9", "kein Messwert")])


def _group(tasks: list[Task]) -> dict[tuple[str, TaskKind], list[str]]:
    grouped: dict[tuple[str, TaskKind], list[str]] = {}
    for task in sorted(tasks, key=lambda t: t.asset, reverse=True):  # reverse: route order differs from id order
        grouped.setdefault((task.municipality, task.kind), []).append(task.asset)
    return grouped


def make_client(tmp_path: Path, planner: Any = None, open_read: bool = False) -> TestClient:
    settings = CloudSettings(
        data_dir=tmp_path, gateway_tokens={"gw-1": GATEWAY_TOKEN}, admin_token=ADMIN, open_read=open_read
    )
    return TestClient(create_app(settings, series=SqliteSeriesStore(tmp_path / "series.sqlite"), planner=planner))


def seed(client: TestClient, fills: Mapping[str, float], time: datetime = WORK_START - timedelta(hours=2)) -> None:
    inventory = {
        "depots": [d.model_dump(mode="json") for d in DEPOTS],
        "assets": [a.model_dump(mode="json") for a in ASSETS],
        "devices": [d.model_dump(mode="json") for d in DEVICES],
    }
    assert client.post("/api/v1/admin/inventory", json=inventory, headers=ADMIN_HEADERS).json() == {
        "depots": 2,
        "assets": 3,
        "devices": 3,
    }
    device_of = {d.asset: d.dev_eui for d in DEVICES}
    readings = [
        Reading(device=device_of[asset], asset=asset, quantity=Quantity.FILL_RATIO, value=fill, time=time)
        for asset, fill in fills.items()
    ]
    ingest(client, GATEWAY_TOKEN, readings, gateway_id="gw-1", sent_at=time)


@pytest.fixture
def planner() -> TinyPlanner:
    return TinyPlanner()


@pytest.fixture
def client(tmp_path: Path, planner: TinyPlanner) -> Iterator[TestClient]:
    with make_client(tmp_path, planner) as test_client:
        seed(test_client, {"bin-1": 0.92, "bin-2": 0.85})
        response = test_client.post(f"/api/v1/plan/{DAY}", headers=ADMIN_HEADERS)
        assert response.status_code == 200, response.text
        yield test_client


def test_planning_hands_the_planner_the_inventory_and_latest_state(client: TestClient, planner: TinyPlanner) -> None:
    call = planner.calls[-1]
    assert call["day"] == DAY and call["language"] == "de"
    assert {a.id for a in call["assets"]} == {"bin-1", "bin-2", "tree-1"}
    assert {d.municipality for d in call["depots"]} == {"Birstein", "Sinntal"}
    assert call["latest"]["bin-1"][Quantity.FILL_RATIO].value == 0.92
    assert call["latest"]["bin-1"][Quantity.FILL_RATIO].time == WORK_START - timedelta(hours=2)


def test_plan_answer_counts_what_was_stored(tmp_path: Path, planner: TinyPlanner) -> None:
    with make_client(tmp_path, planner) as fresh:
        seed(fresh, {"bin-1": 0.95, "bin-2": 0.1})
        answer = fresh.post(f"/api/v1/plan/{DAY}", headers=ADMIN_HEADERS).json()
    assert answer == {
        "day": "2026-07-07",
        "tasks_stored": 2,
        "tasks_kept": 0,
        "routes_stored": 2,
        "km": 7.0,
        "not_acted_on": [{"asset": "bin-9", "reason": "kein Messwert"}],
    }


def test_task_feed_has_the_task_fields_and_where_the_asset_is(client: TestClient) -> None:
    feed = client.get("/api/v1/feed/tasks", headers=ADMIN_HEADERS).json()
    assert {t["asset"] for t in feed} == {"bin-1", "bin-2", "tree-1"}
    bin_task = next(t for t in feed if t["asset"] == "bin-1")
    assert bin_task["kind"] == "collect" and bin_task["state"] == "planned" and bin_task["day"] == "2026-07-07"
    assert (bin_task["village"], bin_task["latitude"], bin_task["longitude"]) == ("Fischborn", 50.36, 9.28)
    assert bin_task["asset_kind"] == "bin"
    assert bin_task["evidence"] == {"fill_ratio": 0.92}
    assert bin_task["due_from"].startswith("2026-07-07T04:00:00")
    assert {"id", "kind", "asset", "municipality", "state", "reason", "priority", "route_id"} <= set(bin_task)


@pytest.mark.parametrize(
    ("query", "assets"),
    [
        ({"municipality": "Sinntal"}, {"tree-1"}),
        ({"kind": "collect"}, {"bin-1", "bin-2"}),
        ({"state": "planned", "day": "2026-07-07"}, {"bin-1", "bin-2", "tree-1"}),
        ({"day": "2026-07-08"}, set()),
        ({"state": "done"}, set()),
    ],
)
def test_task_feed_filters(client: TestClient, query: dict[str, str], assets: set[str]) -> None:
    feed = client.get("/api/v1/feed/tasks", params=query, headers=ADMIN_HEADERS).json()
    assert {t["asset"] for t in feed} == assets


def test_task_feed_refuses_unknown_filter_values(client: TestClient) -> None:
    assert client.get("/api/v1/feed/tasks", params={"kind": "sweep"}, headers=ADMIN_HEADERS).status_code == 422
    assert client.get("/api/v1/feed/tasks", params={"day": "07.07.2026"}, headers=ADMIN_HEADERS).status_code == 422


def test_routes_feed_gives_order_km_and_polyline(client: TestClient) -> None:
    routes = client.get("/api/v1/feed/routes", params={"day": "2026-07-07"}, headers=ADMIN_HEADERS).json()
    collect = next(r for r in routes if r["kind"] == "collect")
    assert collect["municipality"] == "Birstein" and collect["stops"] == ["bin-2", "bin-1"]
    assert collect["km"] == 3.5
    assert collect["polyline"][0] == [50.352, 9.301] and collect["polyline"][-1] == [50.352, 9.301]
    sinntal = client.get("/api/v1/feed/routes", params={"municipality": "Sinntal"}, headers=ADMIN_HEADERS).json()
    assert [r["kind"] for r in sinntal] == ["water"]


def test_geojson_has_route_lines_and_task_points_in_lon_lat_order(client: TestClient) -> None:
    response = client.get("/api/v1/feed/routes.geojson", params={"day": "2026-07-07"}, headers=ADMIN_HEADERS)
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    lines = [f for f in collection["features"] if f["geometry"]["type"] == "LineString"]
    points = [f for f in collection["features"] if f["geometry"]["type"] == "Point"]
    assert len(lines) == 2 and len(points) == 3
    birstein = next(f for f in lines if f["properties"]["municipality"] == "Birstein")
    assert birstein["geometry"]["coordinates"][0] == [9.301, 50.352]
    assert birstein["properties"]["stops"] == ["bin-2", "bin-1"]
    bin_point = next(f for f in points if f["properties"]["asset"] == "bin-1")
    assert bin_point["geometry"]["coordinates"] == [9.28, 50.36]
    assert bin_point["properties"]["kind"] == "collect" and bin_point["properties"]["village"] == "Fischborn"
    assert all(f["type"] == "Feature" for f in collection["features"])
    empty = client.get("/api/v1/feed/routes.geojson", params={"day": "2026-07-09"}, headers=ADMIN_HEADERS).json()
    assert empty == {"type": "FeatureCollection", "features": []}


def _patch(client: TestClient, task_id: str, **body: str) -> Any:
    return client.patch(f"/api/v1/tasks/{task_id}", json=body, headers=ADMIN_HEADERS)


def test_a_task_goes_through_its_states(client: TestClient) -> None:
    task_id = "2026-07-07-collect-bin-1"
    for state in ("assigned", "in_progress", "done"):
        response = _patch(client, task_id, state=state)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == state
    assert response.json()["village"] == "Fischborn"
    done = client.get("/api/v1/feed/tasks", params={"state": "done"}, headers=ADMIN_HEADERS).json()
    assert [t["id"] for t in done] == [task_id]


def test_invalid_transitions_are_409_with_a_clear_message(client: TestClient) -> None:
    task_id = "2026-07-07-collect-bin-1"
    response = _patch(client, task_id, state="done")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"task {task_id}: cannot go from planned to done; allowed from here: assigned, cancelled"
    )
    _patch(client, task_id, state="assigned")
    no_reason = _patch(client, task_id, state="skipped")
    assert no_reason.status_code == 409 and "skipping needs a reason" in no_reason.json()["detail"]
    skipped = _patch(client, task_id, state="skipped", skip_reason="Zufahrt zugeparkt")
    assert skipped.status_code == 200 and skipped.json()["skip_reason"] == "Zufahrt zugeparkt"
    finished = _patch(client, task_id, state="planned")
    assert finished.status_code == 409 and finished.json()["detail"].endswith("the task is finished")


def test_patching_needs_a_known_task_a_known_state_and_the_admin_token(client: TestClient) -> None:
    assert _patch(client, "no-such-task", state="assigned").status_code == 404
    assert _patch(client, "2026-07-07-collect-bin-1", state="sleeping").status_code == 422
    anonymous = client.patch("/api/v1/tasks/2026-07-07-collect-bin-1", json={"state": "assigned"})
    assert anonymous.status_code == 401
    as_gateway = client.patch(
        "/api/v1/tasks/2026-07-07-collect-bin-1",
        json={"state": "assigned"},
        headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
    )
    assert as_gateway.status_code == 401


def test_replanning_replaces_planned_tasks_and_keeps_started_ones(client: TestClient, planner: TinyPlanner) -> None:
    _patch(client, "2026-07-07-collect-bin-1", state="assigned")
    planner.threshold = 0.9  # now only bin-1 would be collected
    answer = client.post(f"/api/v1/plan/{DAY}", headers=ADMIN_HEADERS).json()
    assert (answer["tasks_stored"], answer["tasks_kept"]) == (1, 1)  # tree-1 new; bin-1 kept as it was
    feed = {t["asset"]: t for t in client.get("/api/v1/feed/tasks", headers=ADMIN_HEADERS).json()}
    assert set(feed) == {"bin-1", "tree-1"}
    assert feed["bin-1"]["state"] == "assigned"


def test_summary_counts_readings_gateways_tasks_and_km(client: TestClient) -> None:
    summary = client.get("/api/v1/summary", headers=ADMIN_HEADERS).json()
    assert summary["readings_stored"] == 2
    assert summary["gateways"] == [
        {"id": "gw-1", "acked_seq": 1, "last_seen": summary["gateways"][0]["last_seen"], "status": None}
    ]
    assert summary["tasks"] == {"Birstein": {"collect": 2}, "Sinntal": {"water": 1}}
    assert summary["km_planned"] == 7.0
    assert summary["km_planned_by_municipality"] == {"Birstein": 3.5, "Sinntal": 3.5}
    assert client.get("/api/v1/summary", params={"day": "2026-07-08"}, headers=ADMIN_HEADERS).json()["tasks"] == {}


def test_reads_need_a_token_unless_open_read(client: TestClient, tmp_path: Path) -> None:
    for path in ("/api/v1/feed/tasks", "/api/v1/feed/routes", "/api/v1/feed/routes.geojson", "/api/v1/summary", "/"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer guessed-token-000000"}).status_code == 401, path
        assert client.get(path, headers=ADMIN_HEADERS).status_code == 200, path
    assert client.get("/healthz").json() == {"status": "ok"}
    with make_client(tmp_path / "open", open_read=True) as open_client:
        assert open_client.get("/api/v1/feed/tasks").status_code == 200
        assert open_client.get("/api/v1/meta").json() == {"readings": 0, "latest_reading_time": None}
        assert open_client.post(f"/api/v1/plan/{DAY}").status_code == 401  # writes still need the admin token


def test_without_a_bootstrap_admin_token_no_bearer_token_is_an_admin(tmp_path: Path) -> None:
    settings = CloudSettings(data_dir=tmp_path, open_read=True)
    with TestClient(create_app(settings, series=SqliteSeriesStore(":memory:"))) as no_admin:
        response = no_admin.post(
            "/api/v1/admin/inventory", json={}, headers={"Authorization": "Bearer anything-at-all"}
        )
        assert response.status_code == 401
        assert "not accepted" in response.json()["detail"]


def test_inventory_refuses_invalid_items_and_unknown_keys(client: TestClient) -> None:
    bad_asset = {**ASSETS[0].model_dump(mode="json"), "latitude": 123.0}
    assert (
        client.post("/api/v1/admin/inventory", json={"assets": [bad_asset]}, headers=ADMIN_HEADERS).status_code == 422
    )
    assert client.post("/api/v1/admin/inventory", json={"bins": []}, headers=ADMIN_HEADERS).status_code == 422


def test_the_dispatcher_page_speaks_german(client: TestClient) -> None:
    page = client.get("/", params={"day": "2026-07-07"}, headers=ADMIN_HEADERS)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="de">' in html
    assert "Leeren" in html and "Gießen" in html and "geplant" in html
    assert "Bauhof-Disposition 07.07.2026" in html
    assert "Route Leeren: 2 Stopps, 3,5 km" in html
    # the route order is the crew's order: bin-2 before bin-1
    assert html.index('id="task-2026-07-07-collect-bin-2"') < html.index('id="task-2026-07-07-collect-bin-1"')
    assert "Fischborn" in html and "Sterbfritz" in html
    assert "2 Messwerte gespeichert" in html
    # offline: nothing fetched from elsewhere (the live-update script comes from the cloud itself)
    assert not re.findall(r'(?:src|href)="(?!/)', html)


def test_the_dispatcher_page_escapes_what_the_data_says(client: TestClient) -> None:
    html = client.get("/", params={"day": "2026-07-07"}, headers=ADMIN_HEADERS).text
    assert "<b>bin-1</b>" not in html
    assert "&lt;b&gt;bin-1&lt;/b&gt; ist voll" in html


def test_the_dispatcher_page_in_english_and_on_an_empty_day(client: TestClient) -> None:
    html = client.get("/", params={"day": "2026-07-07", "lang": "en"}, headers=ADMIN_HEADERS).text
    assert '<html lang="en">' in html
    assert "Collect" in html and "Route Water: 1 stops, 3.5 km" in html and "planned" in html
    empty = client.get("/", params={"day": "2026-07-20"}, headers=ADMIN_HEADERS).text
    assert "Leeren" in empty  # the overview names every kind, even on a day without tasks
    assert "Nächster Tag mit Aufgaben" in empty and 'href="/?day=2026-07-07&amp;lang=de"' in empty
    skipped_state = client.get("/", params={"day": "2026-07-07", "lang": "xx"}, headers=ADMIN_HEADERS)
    assert skipped_state.status_code == 422


def test_the_default_planner_is_the_scheduler(tmp_path: Path) -> None:
    """Without `planner=`, planning runs `cloud.scheduler.plan_day` on the stored inventory and latest state."""
    with make_client(tmp_path) as default_client:
        seed(default_client, {"bin-1": 0.95, "bin-2": 0.1}, time=WORK_START - timedelta(hours=1))
        answer = default_client.post(f"/api/v1/plan/{DAY}", headers=ADMIN_HEADERS)
        assert answer.status_code == 200, answer.text
        feed = default_client.get("/api/v1/feed/tasks", params={"kind": "collect"}, headers=ADMIN_HEADERS).json()
    assert [t["asset"] for t in feed] == ["bin-1"]
    assert "95" in feed[0]["reason"]
