"""Alerts end to end with simulated time: a drying young tree (real Mosquitto, local SMTP), 1,000 flapping sensors,
and a webhook receiver down for an hour."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import aiomqtt
import pytest
from aiosmtpd.controller import Controller

from cloud.alerts.channels import EmailChannel, MqttChannel, WebhookChannel, verify_webhook
from cloud.alerts.config import parse_config
from cloud.alerts.service import AlertService
from cloud.store.migrations import upgrade_to_head
from cloud.store.operational import ALL_TOWNS, OperationalStore
from flurfunk.contracts import AlertState, Asset, AssetKind, Batch, Quantity, Reading
from tests.conftest import MqttBroker, free_port

START = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
SECRET = "webhook-secret-0123456789"


class SimClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def make_store(tmp_path: Path) -> OperationalStore:
    store = OperationalStore.from_url(f"sqlite:///{tmp_path / 'operational.sqlite'}")
    upgrade_to_head(store.engine)
    return store


def report(store: OperationalStore, readings: list[Reading], at: datetime, seq: list[int] = [0]) -> None:  # noqa: B006
    seq[0] += 1
    store.record_batch(Batch(gateway_id="gw-test", first_seq=seq[0], last_seq=seq[0], sent_at=at, readings=readings),
                       received_at=at)  # fmt: skip


def tree(index: int, village: str = "Fischborn") -> Asset:
    return Asset(id=f"tree-{index:04d}", kind=AssetKind.TREE, municipality="Birstein", village=village,
                 latitude=50.35, longitude=9.3, planting_year=2024)  # fmt: skip


def tension(asset: Asset, kpa: float, at: datetime, device: str = "a84041000181c001") -> Reading:
    return Reading(device=device, asset=asset.id, quantity=Quantity.SOIL_TENSION_KPA, value=kpa, time=at)


ROSTER = '[{name = "Anna", email = "anna@bauhof.example"}, {name = "Ben", email = "ben@bauhof.example"}]'
GREEN_CREW = """
municipality = "Birstein"
[[crews]]
name = "gruen"
members = ["anna"]
on_call = {on_call}
mqtt = {mqtt}
webhooks = {webhooks}
[[crews]]
name = "abfall"
[[rules]]
id = "young-tree-dry"
kind = "threshold"
crew = "gruen"
quantity = "soil_tension_kpa"
asset_kinds = ["tree"]
max_tree_age_years = 5
above = 80
clear_below = 50
text = "alert.tree_dry"
escalate_after_s = 3600
cooldown_s = 21600
"""


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[str, str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.mails.append((",".join(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def _collect(broker: MqttBroker, topic: str, into: list[dict[str, object]], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            into.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]


@pytest.mark.timeout(60)
def test_drying_young_tree_one_alert_to_its_crew_escalates_and_resolves_when_watered(
    tmp_path: Path, mosquitto: MqttBroker, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, smtp_port = smtp_server
    store = make_store(tmp_path)
    young, old = tree(1), tree(2).model_copy(update={"planting_year": 1990})
    store.upsert_assets([young, old])
    clock = SimClock(START)
    config = parse_config(GREEN_CREW.format(mqtt="true", webhooks="[]", on_call=ROSTER))
    prefix = mosquitto.topic_prefix + "flurfunk"
    service = AlertService(
        store,
        {"Birstein": config},
        {"mqtt": MqttChannel(mosquitto.host, mosquitto.port), "email": EmailChannel("127.0.0.1", smtp_port)},
        clock=clock,
        mqtt_topic_prefix=prefix,
    )
    received: list[dict[str, object]] = []

    async def scenario() -> None:
        ready = asyncio.Event()
        listener = asyncio.create_task(_collect(mosquitto, f"{mosquitto.topic_prefix}#", received, ready))
        await asyncio.wait_for(ready.wait(), 10)
        # 08:00 the young and the old tree are dry; only the young one is the green crew's concern
        report(store, [tension(young, 95, clock()), tension(old, 99, clock(), "a84041000181c002")], clock())
        assert await service.tick() == 2  # MQTT to the crew, e-mail to the first on-call
        for _ in range(5):  # 08:10 … 08:50 still dry: nothing new
            clock.advance(minutes=10)
            report(store, [tension(young, 97, clock())], clock())
            assert await service.tick() == 0
        clock.advance(minutes=15)  # 09:05: nobody acknowledged within an hour -> the next on-call
        assert await service.tick() == 2
        clock.advance(minutes=25)  # 09:30: watered
        report(store, [tension(young, 20, clock())], clock())
        assert await service.tick() == 1  # the resolution goes to the crew's topic (machines), not by mail
        await asyncio.sleep(0.5)
        listener.cancel()

    asyncio.run(scenario())
    alerts = service.alerts.alerts(ALL_TOWNS)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.rule, alert.crew, alert.group, alert.state) == ("young-tree-dry", "gruen", "Fischborn",
                                                                   AlertState.RESOLVED)  # fmt: skip
    assert alert.resolved_by == "auto" and alert.level == 1
    topic_events = [(m["event"], m["level"], m["alert_id"]) for m in received]
    assert topic_events == [("opened", 0, alert.id), ("escalated", 1, alert.id), ("resolved", 1, alert.id)]
    assert all(m["members"] in (["tree-0001"], []) for m in received)
    assert [to for to, _ in inbox.mails] == ["anna@bauhof.example", "ben@bauhof.example"]
    assert "Junge Bäume trocknen aus in Fischborn" in inbox.mails[0][1] or "Fischborn" in inbox.mails[0][1]
    assert service.alerts.pending_count() == 0


def test_a_thousand_flapping_sensors_for_a_day_stay_within_the_stated_bound(tmp_path: Path) -> None:
    """1,000 young trees in 20 villages, each flapping across both limits every 30 minutes for a simulated day.

    Bound (README, "Alerts"): per condition (rule x village) and day at most 1 + floor(86,400 / cooldown_s) alerts,
    each with at most one `opened`, (roster - 1) `escalated` and roster `resolved` notices. Here: 20 conditions,
    cooldown 6 h, roster of 2 -> at most 20 x 5 = 100 alerts and 100 x 4 = 400 notices (one MQTT message each).
    """
    store = make_store(tmp_path)
    villages = [f"Dorf-{v:02d}" for v in range(20)]
    trees = [tree(i, villages[i % 20]) for i in range(1000)]
    store.upsert_assets(trees)
    clock = SimClock(START)
    config = parse_config(GREEN_CREW.format(mqtt="true", webhooks="[]", on_call=ROSTER))
    service = AlertService(store, {"Birstein": config}, {}, clock=clock)
    crossings = 0
    for step in range(48):  # a day in 30-minute steps
        dry = step % 2 == 0
        values = [(95.0 if dry else 30.0) + (i % 7) for i in range(1000)]
        crossings += 1000
        devices = [f"{i:016x}" for i in range(1000)]
        report(store, [tension(t, v, clock(), d) for t, v, d in zip(trees, values, devices, strict=True)], clock())
        service.evaluate()
        clock.advance(minutes=30)
    alerts = service.alerts.alerts(ALL_TOWNS, limit=10_000)
    with store.session() as session:
        from sqlalchemy import func, select

        from cloud.store.alerts import AlertDeliveryRow

        messages = session.scalar(select(func.count()).select_from(AlertDeliveryRow))
    conditions, per_condition, roster = 20, 1 + 86_400 // 21_600, 2
    assert len({(a.rule, a.group) for a in alerts}) == conditions
    assert len(alerts) <= conditions * per_condition == 100
    assert messages is not None and messages <= len(alerts) * 2 * roster <= 400
    assert crossings == 48_000  # what a naive threshold would have sent


class _Receiver(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, bool]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        ok = verify_webhook(SECRET.encode(), headers, body, now_s=float(self.headers["Flurfunk-Timestamp"]))
        self.seen.append((self.headers["Flurfunk-Delivery-Id"], ok))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhook_down_for_an_hour_every_alert_arrives_once_after_it_returns(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    trees = [tree(i, f"Dorf-{i}") for i in range(5)]
    store.upsert_assets(trees)
    port = free_port()
    clock = SimClock(START)
    hooks = f'[{{url = "http://127.0.0.1:{port}/alerts", secret = "{SECRET}"}}]'
    config = parse_config(GREEN_CREW.format(mqtt="false", webhooks=hooks, on_call="[]"))
    webhook = WebhookChannel(secret_for=lambda m: SECRET.encode(), clock_s=lambda: clock().timestamp(), timeout_s=2)
    service = AlertService(store, {"Birstein": config}, {"webhook": webhook}, clock=clock)
    _Receiver.seen = []

    async def hour_down() -> None:
        for minute in range(60):  # one alert opens every 12 minutes while the receiver is down
            if minute % 12 == 0:
                tree_now = trees[minute // 12]
                report(store, [tension(tree_now, 95, clock(), f"{minute:016x}")], clock())
            assert await service.tick() == 0
            clock.advance(minutes=1)

    asyncio.run(hour_down())
    assert service.alerts.pending_count() == 5 and _Receiver.seen == []
    server = HTTPServer(("127.0.0.1", port), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:

        async def back_up() -> int:
            delivered = 0
            for _ in range(20):  # backoff is capped at 15 minutes
                delivered += await service.tick()
                clock.advance(minutes=1)
            return delivered

        assert asyncio.run(back_up()) == 5
    finally:
        server.shutdown()
    ids = [delivery for delivery, _ in _Receiver.seen]
    assert len(ids) == 5 and len(set(ids)) == 5, "every alert once"
    assert all(ok for _, ok in _Receiver.seen), "signatures verify"
    assert service.alerts.pending_count() == 0
    attempts = [m.attempts for alert in service.alerts.alerts(ALL_TOWNS) for m in service.alerts.deliveries(alert.id)]
    assert min(attempts) >= 2  # failed while down (logged), then delivered
