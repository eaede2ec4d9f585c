"""The service fixtures work: Mosquitto carries a message on the test's prefix, PostgreSQL takes SQL."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import httpx
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from tests.conftest import InfluxdServer, MqttBroker


async def _publish_and_receive(broker: MqttBroker, payload: bytes) -> list[tuple[str, bytes]]:
    topic = f"{broker.topic_prefix}application/demo/up"
    received: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"flurfunk-test-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(f"{broker.topic_prefix}#", qos=1)
        await client.publish(topic, payload, qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received.append((str(message.topic), message.payload))
                break
    return received


def test_mosquitto_carries_a_message_on_the_test_prefix(mosquitto: MqttBroker) -> None:
    received = asyncio.run(_publish_and_receive(mosquitto, b"\x01\x02fill"))

    assert received == [(f"{mosquitto.topic_prefix}application/demo/up", b"\x01\x02fill")]


def test_each_test_gets_its_own_topic_prefix(mosquitto: MqttBroker) -> None:
    assert mosquitto.topic_prefix.startswith("flurfunk-test/")
    assert mosquitto.topic_prefix.endswith("/")
    uuid.UUID(mosquitto.topic_prefix.split("/")[1])


def test_postgres_database_takes_create_insert_select(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:5432/flurfunk_test_")
    metadata = MetaData()
    bins = Table("bins", metadata, Column("id", Integer, primary_key=True), Column("village", String(64)))
    engine = create_engine(postgres_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(insert(bins), [{"id": 1, "village": "Wirtheim"}, {"id": 2, "village": "Neudorf"}])
        with engine.connect() as connection:
            villages = connection.execute(select(bins.c.village).order_by(bins.c.id)).scalars().all()
        assert villages == ["Wirtheim", "Neudorf"]
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_influxd_answers_ping_and_queries(influxd: InfluxdServer) -> None:
    assert httpx.get(f"{influxd.url}/ping", timeout=5).status_code == 204
    response = httpx.get(f"{influxd.url}/query", params={"q": "SHOW DATABASES"}, timeout=5)
    assert response.status_code == 200
    assert "results" in response.json()


def test_service_tests_are_marked_integration(request: pytest.FixtureRequest, mosquitto: MqttBroker) -> None:
    assert request.node.get_closest_marker("integration") is not None
