"""Manual PUBACKs through aiomqtt's private paho client, against the real Mosquitto.

aiomqtt has no public manual ack (gateway/sources/mqtt.py, `_paho_client`): these tests fail as soon as an aiomqtt
release stops keeping a paho client with `manual_ack_set`/`ack` in `_client`, or stops honouring it, so a version
bump cannot silently turn "acknowledged once durable" into "acknowledged on arrival".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from types import SimpleNamespace

import aiomqtt
import paho.mqtt.client as paho
import pytest

from flurfunk.contracts import Uplink
from gateway.sources.mqtt import MqttSource, MqttSourceSettings, _paho_client, acknowledge
from tests.conftest import MqttBroker

RECEIVE_TIMEOUT_S = 10.0


def settings_for(broker: MqttBroker) -> MqttSourceSettings:
    return MqttSourceSettings(
        flavour="chirpstack",
        host=broker.host,
        port=broker.port,
        topic=broker.topic_prefix + "up",
        client_id=f"flurfunk-ack-test-{uuid.uuid4().hex[:12]}",
    )


async def publish(broker: MqttBroker, topic: str, payload: bytes) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as publisher:
        await publisher.publish(topic, payload, qos=1)  # returns once the broker has it (PUBACK)


async def first_message(client: aiomqtt.Client, what: str) -> aiomqtt.Message:
    try:
        return await asyncio.wait_for(anext(client.messages), RECEIVE_TIMEOUT_S)
    except TimeoutError:
        raise AssertionError(f"no message within {RECEIVE_TIMEOUT_S:.0f} s: {what}") from None


def never_delivers(uplinks: Sequence[Uplink]) -> None:
    raise AssertionError("the source must not be run in this test")


def test_aiomqtt_keeps_a_paho_client_with_manual_acks(mosquitto: MqttBroker) -> None:
    async def scenario() -> None:
        client = MqttSource(settings_for(mosquitto), never_delivers)._client()  # type: ignore[arg-type]
        assert isinstance(_paho_client(client), paho.Client)

    asyncio.run(scenario())


def test_a_message_not_acknowledged_comes_again_and_an_acknowledged_one_does_not(mosquitto: MqttBroker) -> None:
    settings = settings_for(mosquitto)
    source = MqttSource(settings, never_delivers)  # type: ignore[arg-type]

    async def scenario() -> None:
        # The first connection creates the persistent session and its subscription.
        async with source._client() as client:
            await client.subscribe(settings.topic_filter, qos=1)
            await publish(mosquitto, settings.topic_filter, b"uplink")
            message = await first_message(client, "the broker did not deliver")
            assert message.payload == b"uplink"
            # not acknowledged: as if the buffer had failed or the process died before the commit

        async with source._client() as client:
            again = await first_message(client, "the unacknowledged message did not come again (acked on arrival?)")
            assert again.payload == b"uplink"
            acknowledge(client, [again])

        # Mosquitto resends unacknowledged messages before newer queued ones: if the ack had not reached it, the
        # first message would come before this marker.
        await publish(mosquitto, settings.topic_filter, b"marker")
        async with source._client() as client:
            after_ack = await first_message(client, "the marker was not delivered")
            assert after_ack.payload == b"marker", "the acknowledged message came again: the PUBACK did not go out"
            acknowledge(client, [after_ack])

    asyncio.run(scenario())


def test_an_aiomqtt_without_its_paho_client_is_refused_loudly() -> None:
    with pytest.raises(RuntimeError, match=rf"aiomqtt {aiomqtt.__version__} no longer keeps a paho-mqtt client"):
        _paho_client(SimpleNamespace())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="manual acks"):
        _paho_client(SimpleNamespace(_client=SimpleNamespace(ack=print)))  # type: ignore[arg-type]
