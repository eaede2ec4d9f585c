"""The task feed's formats: iCal (RFC 5545, checked with the icalendar parser; folding as a property), CSV work
orders for German Excel, NGSI-LD smart-data-model entities, and server-sent events with Last-Event-ID."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from cloud.api.feed import CSV_COLUMNS, fold_line, ical_text, work_order_number
from cloud.store.operational import OperationalStore, Scope, StoredRoute
from flurfunk.contracts import Batch, Quantity, Reading, Task, TaskKind, TaskState
from tests.cloud_helpers import BOOTSTRAP_HEADERS, asset_body, cloud_client, user_headers

TOWN, OTHER = "Birstein", "Bad Orb"
DAY = date(2026, 7, 7)
T0 = datetime(2026, 7, 7, 4, tzinfo=UTC)
WINDOW = {"start": DAY.isoformat(), "end": (DAY + timedelta(days=1)).isoformat()}


def task(asset: str, kind: TaskKind, town: str = TOWN, **extra: object) -> Task:
    return Task(
        id=f"20260707-{kind.value}-{asset}",
        kind=kind,
        asset=asset,
        municipality=town,
        due_from=T0,
        due_until=T0 + timedelta(hours=9),
        priority=80,
        reason=f"Grund für {asset}; mit Komma, Semikolon und einem sehr langen Text, der gefaltet werden muss.",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with cloud_client(tmp_path) as client:
        assets = [
            asset_body("bir-bin", TOWN, latitude=50.35, longitude=9.3),
            asset_body("bir-tree", TOWN, kind="tree", species="Tilia cordata", planting_year=2024),
            asset_body("orb-bin", OTHER),
        ]
        assert (
            client.post("/api/v1/admin/inventory", json={"assets": assets}, headers=BOOTSTRAP_HEADERS).status_code
            == 200
        )
        store: OperationalStore = client.app.state.cloud.store  # type: ignore[attr-defined]
        route = StoredRoute(
            "r-1", TOWN, TaskKind.COLLECT, DAY, ["bir-bin"], 6.0, [(50.3, 9.2), (50.35, 9.3), (50.3, 9.2)]
        )
        tasks = [
            task("bir-bin", TaskKind.COLLECT, route_id="r-1"),
            task("bir-tree", TaskKind.WATER, evidence={"litres": 150.0}, crew="collect"),
        ]
        store.replace_plan(DAY, tasks, [route], scope=Scope(TOWN))
        store.replace_plan(DAY, [task("orb-bin", TaskKind.COLLECT, OTHER)], [], scope=Scope(OTHER))
        readings = (
            Reading(device="a84041000181c001", asset="bir-bin", quantity=Quantity.FILL_RATIO, value=0.91, time=T0),
            Reading(device="a84041000181c002", asset="bir-tree", quantity=Quantity.SOIL_VWC, value=0.12, time=T0),
        )
        store.record_batch(Batch(gateway_id="gw", first_seq=1, last_seq=1, sent_at=T0, readings=readings), T0)
        yield client


def test_ical_per_crew_is_valid_rfc5545(client: TestClient) -> None:
    icalendar = pytest.importorskip("icalendar", reason="icalendar is a dev dependency")
    crew = user_headers(client, "crew", TOWN)
    response = client.get("/api/v1/feed/crew.ics", params={"crew": "collect"} | WINDOW, headers=crew)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    raw = response.content
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    calendar = icalendar.Calendar.from_ical(raw)
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {"20260707-collect-bir-bin@flurfunk", "20260707-water-bir-tree@flurfunk"}
    event = events["20260707-collect-bir-bin@flurfunk"]
    assert event.decoded("DTSTART") == T0 and event.decoded("DTSTART").tzinfo is not None
    assert str(event["SUMMARY"]) == "Leeren: bir-bin"
    assert "Komma, Semikolon" in str(event["DESCRIPTION"])
    assert event.decoded("GEO") is not None
    assert "DTSTART:20260707T040000Z" in raw.decode()
    again = client.get("/api/v1/feed/crew.ics", params={"crew": "collect"} | WINDOW, headers=crew).content
    assert [line for line in again.split(b"\r\n") if line.startswith(b"UID")] == [
        line for line in raw.split(b"\r\n") if line.startswith(b"UID")
    ]


def test_ical_of_another_town_is_404_and_empty_for_unknown_crews(client: TestClient) -> None:
    crew = user_headers(client, "crew", TOWN)
    foreign = client.get("/api/v1/feed/crew.ics", params={"crew": "collect", "municipality": OTHER}, headers=crew)
    assert foreign.status_code == 404
    nobody = client.get("/api/v1/feed/crew.ics", params={"crew": "nobody"} | WINDOW, headers=crew).text
    assert "BEGIN:VEVENT" not in nobody and "orb-bin" not in nobody


@given(st.text(max_size=300))
def test_folded_lines_are_75_octets_at_most_and_unfold_to_the_original(value: str) -> None:
    line = "DESCRIPTION:" + ical_text(value)
    folded = fold_line(line)
    assert folded.endswith("\r\n")
    parts = folded[:-2].split("\r\n")
    assert all(len(part.encode()) <= 75 for part in parts)
    assert all(part.startswith(" ") for part in parts[1:])
    assert "".join([parts[0], *(part[1:] for part in parts[1:])]) == line
    assert "\n" not in ical_text(value).replace("\\n", "")


def test_csv_work_orders_for_german_excel(client: TestClient) -> None:
    crew = user_headers(client, "crew", TOWN)
    response = client.get("/api/v1/feed/tasks.csv", params={"day": DAY.isoformat()}, headers=crew)
    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_task = {row[1]: dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert set(by_task) == {"20260707-collect-bir-bin", "20260707-water-bir-tree"}  # no other town's orders
    collect = by_task["20260707-collect-bir-bin"]
    assert collect["Auftragsnummer"] == work_order_number("20260707-collect-bir-bin")
    assert collect["Datum"] == "07.07.2026" and collect["Art"] == "Leeren"
    assert collect["Planminuten"] == "15"  # 3 min at the bin + 6 km at 30 km/h for its one stop
    water = by_task["20260707-water-bir-tree"]
    assert (water["Liter"], water["Planminuten"]) == ("150", "10")  # 4 min + 150 L at 25 L/min
    assert collect["Kostenstelle"] == "Birstein-collect"


def test_csv_cost_centres_from_settings_and_formula_cells_are_defused(tmp_path: Path) -> None:
    with cloud_client(tmp_path, cost_centres={"Birstein/collect": "53700", "water": "55100"}) as client:
        client.post(
            "/api/v1/admin/inventory", json={"assets": [asset_body("bir-bin", TOWN)]}, headers=BOOTSTRAP_HEADERS
        )
        store: OperationalStore = client.app.state.cloud.store  # type: ignore[attr-defined]
        hostile = task("bir-bin", TaskKind.COLLECT).model_copy(update={"reason": '=HYPERLINK("http://x")'})
        store.replace_plan(DAY, [hostile], [])
        body = client.get("/api/v1/feed/tasks.csv", params={"day": DAY.isoformat()}, headers=BOOTSTRAP_HEADERS)
        row = list(csv.reader(io.StringIO(body.content.decode("utf-8-sig")), delimiter=";"))[1]
        assert row[CSV_COLUMNS.index("Kostenstelle")] == "53700"
        assert row[CSV_COLUMNS.index("Grund")].startswith("'=")


def test_ngsi_ld_entities_follow_the_smart_data_models(client: TestClient) -> None:
    crew = user_headers(client, "crew", TOWN)
    bins = client.get("/api/v1/feed/ngsi-ld/entities", params={"type": "WasteContainer"}, headers=crew)
    assert bins.headers["content-type"].startswith("application/ld+json")
    (container,) = bins.json()
    assert container["id"] == "urn:ngsi-ld:WasteContainer:bir-bin" and container["type"] == "WasteContainer"
    assert container["fillingLevel"] == {"type": "Property", "value": 0.91, "observedAt": "2026-07-07T04:00:00Z"}
    assert container["location"]["type"] == "GeoProperty"
    assert container["location"]["value"] == {"type": "Point", "coordinates": [9.3, 50.35]}
    assert container["binCapacity"]["unitCode"] == "LTR"
    assert container["refDevice"]["type"] == "Relationship"
    assert any("ngsi-ld-core-context" in c for c in container["@context"])
    records = client.get("/api/v1/feed/ngsi-ld/entities", params={"type": "GreenspaceRecord"}, headers=crew).json()
    (record,) = records
    assert record["type"] == "GreenspaceRecord"
    assert record["soilMoistureVwc"]["value"] == 0.12
    assert record["dateObserved"]["value"]["@type"] == "DateTime"
    assert record["refGreenspace"]["object"] == "urn:ngsi-ld:Greenspace:bir-tree"
    assert client.get("/api/v1/feed/ngsi-ld/entities", params={"municipality": OTHER}, headers=crew).status_code == 404


def parse_sse(body: str) -> list[dict[str, str]]:
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append(fields)
    return events


def test_server_sent_events_resume_with_last_event_id_and_keep_to_the_scope(client: TestClient) -> None:
    import json

    store: OperationalStore = client.app.state.cloud.store  # type: ignore[attr-defined]
    crew = user_headers(client, "crew", TOWN)
    start = store.last_task_event_id()
    store.transition_task("20260707-collect-bir-bin", TaskState.ASSIGNED)
    store.transition_task("20260707-collect-orb-bin", TaskState.ASSIGNED)
    store.transition_task("20260707-collect-bir-bin", TaskState.IN_PROGRESS)

    response = client.get("/api/v1/feed/events", params={"max_s": 0.3}, headers=crew | {"Last-Event-ID": str(start)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("retry: ")
    events = parse_sse(response.text)
    assert [json.loads(e["data"])["task"]["state"] for e in events] == ["assigned", "in_progress"]
    assert all(e["event"] == "task" for e in events)
    assert "orb-bin" not in response.text  # another town's change never reaches this crew

    resumed = client.get(
        "/api/v1/feed/events", params={"max_s": 0.3}, headers=crew | {"Last-Event-ID": events[0]["id"]}
    )
    assert [e["id"] for e in parse_sse(resumed.text)] == [events[1]["id"]]
    fresh = client.get("/api/v1/feed/events", params={"max_s": 0.3}, headers=crew)
    assert parse_sse(fresh.text) == []  # without Last-Event-ID: only what happens from now on
    bad = client.get("/api/v1/feed/events", headers=crew | {"Last-Event-ID": "x; DROP"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["detail"]
    assert client.get("/api/v1/feed/events", params={"municipality": OTHER}, headers=crew).status_code == 404
