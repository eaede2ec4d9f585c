"""Dispatchers move, add and cancel tasks; a replan keeps started and dispatcher-made work; every change reaches the
live feed (task events) in the caller's tenant scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.store.operational import OperationalStore, Scope, StoredRoute
from flurfunk.contracts import Task, TaskKind, TaskState
from tests.cloud_helpers import BOOTSTRAP_HEADERS, asset_body, cloud_client, user_headers

TOWN, OTHER = "Birstein", "Bad Orb"
DAY = date(2026, 7, 7)
T0 = datetime(2026, 7, 7, 4, tzinfo=UTC)
DEPOT = (50.35, 9.30)
BINS = ["bir-b1", "bir-b2", "bir-b3", "bir-b4"]


def planned_task(asset: str, route_id: str | None = "r-collect", day: date = DAY, town: str = TOWN) -> Task:
    return Task(
        id=f"{day:%Y%m%d}-collect-{asset}",
        kind=TaskKind.COLLECT,
        asset=asset,
        municipality=town,
        due_from=T0 + timedelta(days=(day - DAY).days),
        due_until=T0 + timedelta(days=(day - DAY).days, hours=9),
        priority=60,
        reason=f"Behälter {asset} ist zu 90 % gefüllt.",
        evidence={"fill_ratio": 0.9},
        route_id=route_id,
    )


def collect_route(stops: list[str], route_id: str = "r-collect", day: date = DAY, town: str = TOWN) -> StoredRoute:
    coordinates = [(50.35 + 0.01 * (i + 1), 9.30) for i in range(len(stops))]
    return StoredRoute(
        id=route_id,
        municipality=town,
        kind=TaskKind.COLLECT,
        day=day,
        stops=stops,
        km=2.6 * len(stops),
        polyline=[DEPOT, *coordinates, DEPOT],
    )


def seed(client: TestClient) -> OperationalStore:
    assets = [asset_body(b, TOWN, latitude=50.35 + 0.01 * (i + 1), longitude=9.30) for i, b in enumerate(BINS)]
    assets.append(asset_body("orb-b1", OTHER))
    depots = [{"municipality": TOWN, "name": "Bauhof Birstein", "latitude": DEPOT[0], "longitude": DEPOT[1]}]
    response = client.post(
        "/api/v1/admin/inventory", json={"depots": depots, "assets": assets}, headers=BOOTSTRAP_HEADERS
    )
    assert response.status_code == 200, response.text
    store: OperationalStore = client.app.state.cloud.store  # type: ignore[attr-defined]
    # Each town's plan in its own scope: a plan for all towns would replace every town's day.
    store.replace_plan(DAY, [planned_task(b) for b in BINS], [collect_route(BINS)], scope=Scope(TOWN))
    store.replace_plan(
        DAY,
        [planned_task("orb-b1", "r-orb", town=OTHER)],
        [collect_route(["orb-b1"], "r-orb", town=OTHER)],
        scope=Scope(OTHER),
    )
    return store


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with cloud_client(tmp_path) as client:
        seed(client)
        yield client


def test_planned_tasks_get_their_routes_crew(client: TestClient) -> None:
    crew = user_headers(client, "crew", TOWN)
    tasks = client.get("/api/v1/feed/tasks", params={"day": DAY.isoformat(), "crew": "collect"}, headers=crew).json()
    assert sorted(t["asset"] for t in tasks) == BINS
    routes = client.get("/api/v1/feed/routes", params={"day": DAY.isoformat()}, headers=crew).json()
    assert [(r["id"], r["crew"]) for r in routes] == [("r-collect", "collect")]


def test_a_replan_keeps_started_finished_assigned_and_dispatcher_work(client: TestClient) -> None:
    store: OperationalStore = client.app.state.cloud.store  # type: ignore[attr-defined]
    dispatcher = user_headers(client, "dispatcher", TOWN)
    b1, b2, b3, b4 = (planned_task(b).id for b in BINS)
    for task_id, states in {
        b1: ["assigned", "in_progress", "done"],
        b2: ["assigned", "in_progress"],
        b3: ["assigned", "skipped"],
    }.items():
        for state in states:
            body = {"state": state} | ({"skip_reason": "Zufahrt zugeparkt"} if state == "skipped" else {})
            assert client.patch(f"/api/v1/tasks/{task_id}", json=body, headers=dispatcher).status_code == 200
    moved = client.post(f"/api/v1/tasks/{b4}/move", json={"position": 0}, headers=dispatcher)
    assert moved.status_code == 200, moved.text
    assert moved.json()["pinned"] is True

    # The new plan knows nothing of the started work and plans one new bin on a fresh route with the same id.
    outcome = store.replace_plan(
        DAY,
        [planned_task(b) for b in BINS] + [planned_task("bir-new", "r-collect")],
        [collect_route(["bir-new"])],
        scope=Scope(TOWN),
    )
    assert outcome.tasks_stored == 1  # only bir-new; the four kept ones are not duplicated
    states = {s.task.id: s.task.state for s in store.tasks(day=DAY, municipality=TOWN)}
    assert states[b1] is TaskState.DONE
    assert states[b2] is TaskState.IN_PROGRESS
    assert states[b3] is TaskState.SKIPPED
    assert states[b4] is TaskState.PLANNED  # moved by the dispatcher: pinned, so kept
    route = next(r for r in store.routes(day=DAY, municipality=TOWN) if r.id == "r-collect")
    assert set(route.stops) == {*BINS, "bir-new"}  # the crew's stops stay on the route
    assert route.stops[-1] == "bir-new"


def test_assigned_stays_assigned_through_a_replan(client: TestClient) -> None:
    store: OperationalStore = client.app.state.cloud.store  # type: ignore[attr-defined]
    task_id = planned_task(BINS[0]).id
    store.transition_task(task_id, TaskState.ASSIGNED)
    store.replace_plan(DAY, [], [], scope=Scope(TOWN))
    kept = store.task(task_id)
    assert kept is not None and kept.task.state is TaskState.ASSIGNED
    assert {s.task.id for s in store.tasks(day=DAY, municipality=TOWN)} == {task_id}  # the planned rest went


def test_moving_to_another_day_and_crew_and_position(client: TestClient) -> None:
    store: OperationalStore = client.app.state.cloud.store  # type: ignore[attr-defined]
    dispatcher = user_headers(client, "dispatcher", TOWN)
    task_id = planned_task(BINS[3]).id
    before = store.routes(day=DAY, municipality=TOWN)[0]

    first = client.post(f"/api/v1/tasks/{task_id}/move", json={"position": 0}, headers=dispatcher).json()
    route = store.routes(day=DAY, municipality=TOWN)[0]
    assert route.stops == [BINS[3], *BINS[:3]]
    assert route.km != before.km  # the polyline and km follow the new order
    assert first["route_id"] == "r-collect"

    tomorrow = DAY + timedelta(days=1)
    moved = client.post(
        f"/api/v1/tasks/{task_id}/move", json={"day": tomorrow.isoformat(), "crew": "collect-2"}, headers=dispatcher
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["day"], body["crew"], body["route_id"]) == (tomorrow.isoformat(), "collect-2", None)
    assert body["due_from"].startswith(tomorrow.isoformat())
    assert BINS[3] not in store.routes(day=DAY, municipality=TOWN)[0].stops


def test_started_tasks_cannot_be_moved_and_crews_cannot_move(client: TestClient) -> None:
    dispatcher = user_headers(client, "dispatcher", TOWN)
    crew = user_headers(client, "crew", TOWN)
    task_id = planned_task(BINS[0]).id
    assert client.post(f"/api/v1/tasks/{task_id}/move", json={"position": 1}, headers=crew).status_code == 403
    for state in ("assigned", "in_progress"):
        client.patch(f"/api/v1/tasks/{task_id}", json={"state": state}, headers=crew)
    refused = client.post(f"/api/v1/tasks/{task_id}/move", json={"position": 1}, headers=dispatcher)
    assert refused.status_code == 409
    assert "in_progress" in refused.json()["detail"]


def test_a_dispatcher_adds_and_cancels_a_task(client: TestClient) -> None:
    dispatcher = user_headers(client, "dispatcher", TOWN)
    body = {
        "kind": "collect",
        "asset": "bir-b2",
        "day": DAY.isoformat(),
        "reason": "Anruf: Sperrmüll neben dem Behälter",
    }
    added = client.post("/api/v1/tasks", json=body | {"priority": 90}, headers=dispatcher)
    assert added.status_code == 201, added.text
    task = added.json()
    assert task["reason"] == body["reason"] and task["evidence"]["source"] == "dispatcher"
    assert (task["crew"], task["route_id"], task["pinned"]) == ("collect", "r-collect", True)
    # another town's asset does not exist for this dispatcher
    foreign = client.post("/api/v1/tasks", json=body | {"asset": "orb-b1"}, headers=dispatcher)
    assert foreign.status_code == 404
    cancelled = client.patch(f"/api/v1/tasks/{task['id']}", json={"state": "cancelled"}, headers=dispatcher)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"


def test_task_events_follow_each_change_within_the_scope(client: TestClient) -> None:
    store: OperationalStore = client.app.state.cloud.store  # type: ignore[attr-defined]
    start = store.last_task_event_id()
    store.transition_task(planned_task(BINS[0]).id, TaskState.ASSIGNED)
    store.transition_task(planned_task("orb-b1").id, TaskState.ASSIGNED)
    store.move_task(planned_task(BINS[1]).id, position=0)
    mine = store.task_events(start, Scope(TOWN))
    assert [(e.action, e.task_id) for e in mine] == [
        ("changed", planned_task(BINS[0]).id),
        ("moved", planned_task(BINS[1]).id),
    ]
    assert mine[0].payload["state"] == "assigned"
    assert len(store.task_events(start)) == 3
    assert store.task_events(mine[0].id, Scope(TOWN))[0].action == "moved"  # resume after an id
