"""Routes as the fleet planned them reach every feed format and both pages — vehicle, each vehicle copy's own crew,
trips to the disposal site or hydrant with their loads, times — and stay right after a dispatcher's cancel, add or
move. Through the real API (plan endpoint, PyVRP, ingest), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from cloud.scheduler.fleet import PlanningFileError, parse_town_planning, reload_positions, trip_loads
from flurfunk.contracts import Device, Quantity, Reading
from tests.cloud_helpers import BOOTSTRAP_HEADERS, cloud_client, empty_postgres_schema, ingest

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 7, 9)  # a Thursday: a watering day; bins at 95 % pass the overflow rule on any workday
READ_AT = datetime(2026, 7, 9, 4, 0, tzinfo=BERLIN).astimezone(UTC)
TOWN = "Birstein"
GATEWAY_TOKEN = "gateway-token-0123456789"  # tests.cloud_helpers' gateway "gw-settings"
BIN_LOAD = 228  # 240 L at 95 %

PLANNING = f"""
[routing]
time_limit_s = 2.0
max_iterations = 200
seed = 1

[sites.waste-centre]
name = "Umladestation Gelnhausen"
latitude = 50.30
longitude = 9.25
unload_min = 15

[towns."{TOWN}".sites.hydrant]
name = "Hydrant Bauhof Birstein"
latitude = 50.352
longitude = 9.301
unload_min = 10

[[towns."{TOWN}".vehicles]]
id = "rear-loader"
serves = "residual"
capacity_l = 1000
count = 2
crew = "Rest"

[[towns."{TOWN}".vehicles]]
id = "paper-truck"
serves = "paper"
capacity_l = 500
reload_at = "waste-centre"

[[towns."{TOWN}".vehicles]]
id = "tanker"
serves = "water"
capacity_l = 300
reload_at = "hydrant"
service_min = 2
pump_l_per_min = 100
"""

RESIDUAL = [f"bir-rest-{n}" for n in range(8)]  # 8 × 228 L: more than one 1,000 L truck holds
PAPER = [f"bir-paper-{n}" for n in range(4)]  # 4 × 228 L on a 500 L truck: trips to the waste centre
TREES = [f"bir-tree-{n}" for n in range(3)]  # 3 × 200 L from a 300 L tank: refills at the hydrant
SPARE_PAPER = "bir-paper-spare"  # a paper bin only a dispatcher adds
ASSET_IDS = [*RESIDUAL, *PAPER, *TREES, SPARE_PAPER]


def asset(asset_id: str, index: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": asset_id,
        "municipality": TOWN,
        "village": "Fischborn",
        "latitude": 50.34 + 0.002 * index,
        "longitude": 9.28 + 0.003 * (index % 5),
    }
    if "tree" in asset_id:
        return body | {"kind": "tree", "planting_year": DAY.year}
    waste = "paper" if "paper" in asset_id else "residual"
    return body | {"kind": "bin", "capacity_l": 240, "waste_type": waste}


def load_town(client: TestClient) -> None:
    ids = ASSET_IDS
    devices = [
        Device(dev_eui=f"a84041000182{index:04x}", model_id="dragino/lse01", asset=asset_id, report_interval_s=3600)
        for index, asset_id in enumerate(ids)
    ]
    inventory = {
        "depots": [{"municipality": TOWN, "name": "Bauhof Birstein", "latitude": 50.352, "longitude": 9.301}],
        "assets": [asset(asset_id, index) for index, asset_id in enumerate(ids)],
        "devices": [device.model_dump(mode="json") for device in devices],
    }
    answer = client.post("/api/v1/admin/inventory", json=inventory, headers=BOOTSTRAP_HEADERS)
    assert answer.status_code == 200, answer.text
    readings = [
        Reading(
            device=device.dev_eui,
            asset=device.asset,
            quantity=Quantity.SOIL_VWC if "tree" in device.asset else Quantity.FILL_RATIO,
            value=0.08 if "tree" in device.asset else (0.3 if device.asset == SPARE_PAPER else 0.95),
            time=READ_AT,
        )
        for device in devices
    ]
    ingest(client, GATEWAY_TOKEN, readings, gateway_id="gw-settings", sent_at=READ_AT)
    planned = client.post(f"/api/v1/plan/{DAY}", headers=BOOTSTRAP_HEADERS)
    assert planned.status_code == 200, planned.text


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    planning = tmp_path / "towns.toml"
    planning.write_text(PLANNING, encoding="utf-8")
    if request.param == "sqlite":
        with cloud_client(tmp_path, town_planning_file=planning) as test_client:
            load_town(test_client)
            yield test_client
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    with (
        empty_postgres_schema(postgres_url, "fleet") as database_url,
        cloud_client(tmp_path, database_url, town_planning_file=planning) as test,
    ):
        load_town(test)
        yield test


def routes(client: TestClient, **params: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/feed/routes", params={"day": DAY.isoformat()} | params, headers=BOOTSTRAP_HEADERS)
    assert answer.status_code == 200, answer.text
    return answer.json()


def route_of(client: TestClient, vehicle: str) -> dict[str, Any]:
    return next(route for route in routes(client) if route["vehicle"] == vehicle)


def tasks(client: TestClient, **params: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/feed/tasks", params={"day": DAY.isoformat()} | params, headers=BOOTSTRAP_HEADERS)
    assert answer.status_code == 200, answer.text
    return answer.json()


def mid_reloads(route: dict[str, Any]) -> list[int]:
    """Positions of the trips to the site that lie between two stops."""
    places = route["sequence"]
    return [
        visit["position"]
        for visit in places
        if visit["type"] == "reload"
        and any(other["type"] == "stop" for other in places[visit["position"] + 1 :])
        and visit["position"] > 0
    ]


def check_loads(route: dict[str, Any]) -> None:
    """The route's loads add up: each trip holds at most the capacity (or the route says by how much it does not),
    the trips carry all stops' loads, and each trip to the site tips (or refills) what the trip before it took."""
    stops = [visit for visit in route["sequence"] if visit["type"] == "stop"]
    assert [visit["asset"] for visit in stops] == route["stops"]
    assert sum(route["trip_loads"]) == sum(visit["load_l"] for visit in stops)
    assert max(route["trip_loads"]) - route["capacity_l"] == route["overload_l"] or (
        route["overload_l"] == 0 and all(load <= route["capacity_l"] for load in route["trip_loads"])
    )
    times = [visit["at"] for visit in stops]  # HH:MM, in driving order, within the route's start and end
    assert all(times) and times == sorted(times) and route["start"] <= times[0] and times[-1] <= route["end"]
    trip, carried = 0, 0
    for visit in route["sequence"]:
        if visit["type"] == "stop":
            carried += visit["load_l"]
        else:
            assert visit["load_l"] == carried == route["trip_loads"][trip]
            trip, carried = trip + 1, 0


def test_the_plan_reaches_the_feed_with_vehicles_crews_trips_and_loads(client: TestClient) -> None:
    planned = routes(client)
    residual = sorted((r for r in planned if r["vehicle"] == "rear-loader"), key=lambda r: r["crew"])
    assert [r["crew"] for r in residual] == ["Rest-1", "Rest-2"]  # two trucks, two crews, two routes
    assert sorted(s for r in residual for s in r["stops"]) == sorted(RESIDUAL)
    for route in planned:
        check_loads(route)
        assert route["overload_l"] == 0 and route["late"] is None
        assert route["start"] is not None and route["end"] > route["start"] and route["late_s"] == 0
    paper = route_of(client, "paper-truck")
    assert paper["crew"] == "paper-truck"  # no crew in the file: named by the vehicle
    assert {v["load_l"] for v in paper["sequence"] if v["type"] == "stop"} == {BIN_LOAD}
    assert len(mid_reloads(paper)) >= 1  # 912 L on a 500 L truck
    labels = {v["label"] for v in paper["sequence"] if v["type"] == "reload"}
    assert labels == {"Entleeren an: Umladestation Gelnhausen"}
    assert "Fahrzeug paper-truck, Kolonne paper-truck" in paper["summary"]
    tanker = route_of(client, "tanker")
    assert len(mid_reloads(tanker)) == 2  # 200 L each from a 300 L tank
    assert all(load == 200 for load in tanker["trip_loads"])
    assert {v["label"] for v in tanker["sequence"] if v["type"] == "reload"} == {
        "Nachfüllen an: Hydrant Bauhof Birstein"
    }
    hydrant = (50.352, 9.301)
    assert sum(1 for point in tanker["polyline"] if tuple(point) == hydrant) >= 2 + 2  # yard = hydrant, and refills
    english = next(r for r in routes(client, lang="en") if r["vehicle"] == "tanker")
    assert {v["label"] for v in english["sequence"] if v["type"] == "reload"} == {"Refill at: Hydrant Bauhof Birstein"}

    # each crew sees its own route and tasks
    for route in planned:
        mine = tasks(client, crew=route["crew"])
        assert sorted(t["asset"] for t in mine) == sorted(route["stops"])
        assert {t["route_id"] for t in mine} == {route["id"]}
        assert [r["id"] for r in routes(client, crew=route["crew"])] == [route["id"]]


def unfolded(ical: str) -> str:
    return ical.replace("\r\n ", "")


def test_every_feed_format_and_both_pages_show_the_trips(client: TestClient) -> None:
    paper = route_of(client, "paper-truck")
    trips = [v for v in paper["sequence"] if v["type"] == "reload"]

    geojson = client.get("/api/v1/feed/routes.geojson", params={"day": DAY.isoformat()}, headers=BOOTSTRAP_HEADERS)
    features = geojson.json()["features"]
    points = [
        f for f in features if f["properties"]["feature"] == "reload" and f["properties"]["route_id"] == paper["id"]
    ]
    assert [p["properties"]["position"] for p in points] == [t["position"] for t in trips]
    assert all(p["geometry"]["coordinates"] == [9.25, 50.30] for p in points)
    line = next(f for f in features if f["id"] == f"route:{paper['id']}")
    assert line["properties"]["vehicle"] == "paper-truck" and line["properties"]["crew"] == "paper-truck"

    body = client.get("/api/v1/feed/tasks.csv", params={"day": DAY.isoformat()}, headers=BOOTSTRAP_HEADERS)
    rows = list(csv.DictReader(io.StringIO(body.content.decode("utf-8-sig")), delimiter=";"))
    unloading = [row for row in rows if row["Art"] == "Entleeren"]
    assert [int(row["Ladung"]) for row in unloading] == [t["load_l"] for t in trips]
    assert {row["Objekt"] for row in unloading} == {"waste-centre"}
    refills = [row for row in rows if row["Art"] == "Nachfüllen"]
    assert len(refills) == len([v for v in route_of(client, "tanker")["sequence"] if v["type"] == "reload"])
    first_paper = next(row for row in rows if row["Objekt"] == paper["stops"][0])
    assert (first_paper["Fahrzeug"], first_paper["Ladung"], first_paper["Kolonne"]) == (
        "paper-truck",
        "228",
        "paper-truck",
    )
    assert first_paper["Tourposition"] == str(paper["sequence"][0]["position"] + 1)

    window = {"start": DAY.isoformat(), "end": (DAY + timedelta(days=1)).isoformat()}
    ical = client.get("/api/v1/feed/crew.ics", params={"crew": "paper-truck"} | window, headers=BOOTSTRAP_HEADERS)
    calendar = unfolded(ical.text)
    assert f"UID:route-{paper['id']}@flurfunk" in calendar
    description = calendar.replace("\\n", "\n").replace("\\,", ",")
    assert f"Entleeren an: Umladestation Gelnhausen ({trips[0]['load_l']} L)" in description
    assert f"1. {paper['sequence'][0]['at']} {paper['stops'][0]} (228 L)" in description
    assert "UID:route-" not in unfolded(
        client.get("/api/v1/feed/crew.ics", params={"crew": "nobody"} | window, headers=BOOTSTRAP_HEADERS).text
    )

    vehicles = client.get(
        "/api/v1/feed/ngsi-ld/entities", params={"type": "Vehicle", "day": DAY.isoformat()}, headers=BOOTSTRAP_HEADERS
    ).json()
    paper_vehicle = next(v for v in vehicles if v["name"]["value"] == "paper-truck")
    assert paper_vehicle["serviceProvided"]["value"] == ["garbageCollection"]
    sequence = paper_vehicle["plannedSequence"]["value"]
    assert [v.get("asset", v.get("site")) for v in sequence] == [
        v.get("asset", v.get("site")) for v in paper["sequence"]
    ]

    page = client.get("/", params={"day": DAY.isoformat()}, headers=BOOTSTRAP_HEADERS).text
    assert "Entleeren an: Umladestation Gelnhausen" in page and "Nachfüllen an: Hydrant Bauhof Birstein" in page
    assert "Kolonne Rest-1" in page and "Kolonne Rest-2" in page
    english = client.get("/", params={"day": DAY.isoformat(), "lang": "en"}, headers=BOOTSTRAP_HEADERS).text
    assert "Unload at: Umladestation Gelnhausen" in english
    crew_page = client.get("/crew").text
    assert "Entleeren an: {site}" in crew_page  # the page's script gets the wording of trips to the site


def test_a_dispatchers_cancel_add_and_move_refit_loads_and_trips(client: TestClient) -> None:
    paper = route_of(client, "paper-truck")
    by_asset = {t["asset"]: t for t in tasks(client, crew="paper-truck")}
    for asset_id in paper["stops"][:2]:
        cancelled = client.patch(
            f"/api/v1/tasks/{by_asset[asset_id]['id']}", json={"state": "cancelled"}, headers=BOOTSTRAP_HEADERS
        )
        assert cancelled.status_code == 200, cancelled.text
    after_cancel = route_of(client, "paper-truck")
    assert after_cancel["stops"] == paper["stops"][2:]
    check_loads(after_cancel)
    assert mid_reloads(after_cancel) == []  # 456 L fit one trip
    assert after_cancel["km"] < paper["km"] and after_cancel["end"] < paper["end"]

    added = client.post(
        "/api/v1/tasks",
        json={
            "kind": "collect",
            "asset": SPARE_PAPER,
            "day": DAY.isoformat(),
            "reason": "Anruf",
        },
        headers=BOOTSTRAP_HEADERS,
    )
    assert added.status_code == 201, added.text
    assert added.json()["crew"] == "paper-truck"  # no crew given: the route that empties paper bins that day
    after_add = route_of(client, "paper-truck")
    assert after_add["stops"] == [*paper["stops"][2:], SPARE_PAPER]
    check_loads(after_add)
    # the added bin's load from its latest fill (30 % of 240 L)
    assert [v["load_l"] for v in after_add["sequence"] if v["type"] == "stop"] == [BIN_LOAD, BIN_LOAD, 72]
    assert len(mid_reloads(after_add)) == 1  # 528 L: full after two bins, the third after a trip to the site
    stops_before = [v["type"] for v in after_add["sequence"]].index("reload")
    assert stops_before == 2

    first, second = sorted((r for r in routes(client) if r["vehicle"] == "rear-loader"), key=lambda r: r["crew"])
    moved_asset = first["stops"][-1]
    moved_task = next(t for t in tasks(client, crew="Rest-1") if t["asset"] == moved_asset)
    moved = client.post(
        f"/api/v1/tasks/{moved_task['id']}/move", json={"crew": "Rest-2", "position": 0}, headers=BOOTSTRAP_HEADERS
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["route_id"] == second["id"]
    new_first, new_second = sorted(
        (r for r in routes(client) if r["vehicle"] == "rear-loader"), key=lambda r: r["crew"]
    )
    assert new_first["stops"] == first["stops"][:-1]
    assert new_second["stops"] == [moved_asset, *second["stops"]]
    first_place = new_second["sequence"][0]
    assert (first_place["type"], first_place["asset"], first_place["load_l"]) == ("stop", moved_asset, BIN_LOAD)
    assert sum(new_second["trip_loads"]) == sum(second["trip_loads"]) + BIN_LOAD
    check_loads(new_first)
    check_loads(new_second)
    # the residual trucks have no unloading site: a truck loaded past its capacity says so
    overload = sum(new_second["trip_loads"]) - 1000
    assert new_second["overload_l"] == max(overload, 0)
    assert (new_second["late"] is not None) == (overload > 0)
    assert moved_asset in [t["asset"] for t in tasks(client, crew="Rest-2")]


@given(
    loads=st.lists(st.integers(min_value=0, max_value=2_000), max_size=40),
    capacity=st.integers(min_value=1, max_value=2_000),
)
def test_trips_are_filled_up_to_the_capacity_and_carry_every_load(loads: list[int], capacity: int) -> None:
    positions = reload_positions(loads, capacity)
    trips = trip_loads(loads, positions)
    assert sum(trips) == sum(loads)
    assert positions == sorted(set(positions)) and all(0 < p < len(loads) for p in positions)
    edges = [0, *positions, len(loads)]
    for trip, (start, end) in enumerate(pairwise(edges)):
        taken = loads[start:end]
        assert trips[trip] == sum(taken)
        # only a stop larger than the tank rides over it, and alone (stops of nothing aside)
        assert sum(taken) <= capacity or sum(1 for load in taken if load > 0) == 1
        if end < len(loads):
            assert sum(taken) + loads[end] > capacity  # a trip ends only when the next stop does not fit
    assert reload_positions(loads, None) == []


def test_each_vehicle_copy_has_its_own_crew_and_a_crew_drives_one_vehicle() -> None:
    planning = parse_town_planning(PLANNING, "towns.toml")
    vehicles = {vehicle.id: vehicle for vehicle in planning.fleet.towns[TOWN].vehicles}
    assert [vehicles["rear-loader"].crew_of(copy) for copy in range(2)] == ["Rest-1", "Rest-2"]
    assert vehicles["tanker"].crew_of(0) == "tanker"  # no crew given: the vehicle id
    twice = PLANNING.replace('id = "tanker"', 'id = "tanker"\ncrew = "paper-truck"')
    with pytest.raises(PlanningFileError, match=r"towns.toml: town 'Birstein': field 'vehicles\[2\].crew': crew "):
        parse_town_planning(twice, "towns.toml")
    with pytest.raises(PlanningFileError, match=r"field 'vehicles\[0\].crew': must be 1-90 printable"):
        parse_town_planning(PLANNING.replace('crew = "Rest"', 'crew = "  "'), "towns.toml")


def test_a_replan_keeps_started_work_on_its_route_with_loads_and_trips_that_add_up(client: TestClient) -> None:
    paper = route_of(client, "paper-truck")
    started_asset = paper["stops"][-1]
    started = next(t for t in tasks(client, crew="paper-truck") if t["asset"] == started_asset)
    for state in ("assigned", "in_progress"):
        answer = client.patch(f"/api/v1/tasks/{started['id']}", json={"state": state}, headers=BOOTSTRAP_HEADERS)
        assert answer.status_code == 200, answer.text
    # a dispatcher's bin the planner would not take (30 % full): the replan keeps it on the route, in front
    body = {"kind": "collect", "asset": SPARE_PAPER, "day": DAY.isoformat(), "reason": "Anruf"}
    assert client.post("/api/v1/tasks", json=body, headers=BOOTSTRAP_HEADERS).status_code == 201
    replanned = client.post(f"/api/v1/plan/{DAY}", headers=BOOTSTRAP_HEADERS)
    assert replanned.status_code == 200, replanned.text
    after = route_of(client, "paper-truck")
    assert after["id"] == paper["id"] and sorted(after["stops"]) == sorted([*paper["stops"], SPARE_PAPER])
    first_place = after["sequence"][0]
    assert (first_place["type"], first_place["asset"], first_place["load_l"]) == ("stop", SPARE_PAPER, 72)
    check_loads(after)
    spare = asset(SPARE_PAPER, ASSET_IDS.index(SPARE_PAPER))
    assert after["polyline"][1] == [spare["latitude"], spare["longitude"]]  # yard, then the spare bin
    assert len(mid_reloads(after)) >= 1
    assert next(t for t in tasks(client, crew="paper-truck") if t["asset"] == started_asset)["state"] == "in_progress"
