"""The gateway service as a real process against real Mosquitto and the real cloud app in its own process.

ChirpStack/TTS events arrive; a broker restart loses nothing published with QoS 1; kill -9 at random moments
during a 10,000-uplink run loses and duplicates nothing; a cloud that is down for the first half gets everything,
oldest first, and live data waits at most one sync interval once the backlog is through.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest

import decoders
from flurfunk.contracts import Quantity
from tests.conftest import MqttBroker, free_port
from tests.processes import MODEL, Cloud, distance_of, event_time, wait_until, write_gateway_config

pytestmark = pytest.mark.integration

DEVICES = [f"24e124713b22{index:04x}" for index in range(20)]


# -- a second Mosquitto that a test may stop and restart -----------------------------------------------------------


@dataclass
class OwnBroker:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.directory}/\nautosave_interval 1\n"
            # the broker is the queue while the gateway is away: no limit on queued messages
            "max_queued_messages 0\nmax_inflight_messages 100\nlog_dest none\n"
            # Started as root, mosquitto drops to the user "mosquitto", which cannot write its persistence file into
            # pytest's 0700 tmp dir: a restart then forgets the gateway's session and what was queued for it.
            # "user root" keeps it able to write (it is ignored when not started as root).
            "user root\n"
        )
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def listens() -> bool:
            assert self.process is not None and self.process.poll() is None, "mosquitto exited"
            try:
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(listens, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: mosquitto saves its persistence file on the way out
            self.process.wait(timeout=10)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    directory = tmp_path / "mosquitto"
    directory.mkdir()
    broker = OwnBroker(port=free_port(), directory=directory)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# -- what the LNS would publish ------------------------------------------------------------------------------------


def chirpstack_body(index: int) -> bytes:
    f_port, payload = decoders.encode_quantities(
        MODEL, {Quantity.DISTANCE_M: distance_of(index), Quantity.BATTERY_PCT: 90}
    )
    return json.dumps(
        {
            "time": event_time(index).isoformat(),
            "deviceInfo": {"devEui": DEVICES[index % len(DEVICES)], "deviceName": f"bin-{index % len(DEVICES)}"},
            "fCnt": index // len(DEVICES),
            "fPort": f_port,
            "data": base64.b64encode(payload).decode(),
            "rxInfo": [{"gatewayId": "0016c001ff10a235", "rssi": -100, "snr": 2.5}],
            "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 9}}},
        }
    ).encode()


def tts_body(index: int) -> bytes:
    f_port, payload = decoders.encode_quantities(
        MODEL, {Quantity.DISTANCE_M: distance_of(index), Quantity.BATTERY_PCT: 90}
    )
    return json.dumps(
        {
            "end_device_ids": {"device_id": f"bin-{index}", "dev_eui": DEVICES[index % len(DEVICES)].upper()},
            "received_at": event_time(index).isoformat().replace("+00:00", "Z"),
            "uplink_message": {
                "f_port": f_port,
                "f_cnt": index // len(DEVICES),
                "frm_payload": base64.b64encode(payload).decode(),
                "rx_metadata": [{"gateway_ids": {"eui": "B827EBFFFE6A1F0C"}, "rssi": -90, "snr": 8}],
                "settings": {
                    "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
                    "frequency": "867100000",
                },
            },
        }
    ).encode()


def expected_point(index: int) -> tuple[str, int]:
    moment = event_time(index)
    return DEVICES[index % len(DEVICES)], (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


class Publisher:
    """A QoS 1 publisher like an LNS: `publish` returns once the broker acknowledged (PUBACK)."""

    def __init__(self, host: str, port: int) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"lns-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(100)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish_all(self, messages: list[tuple[str, bytes]]) -> None:
        infos = [self.client.publish(topic, body, qos=1) for topic, body in messages]
        for info in infos:
            info.wait_for_publish(timeout=60)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def forget_session(host: str, port: int, client_id: str) -> None:
    """Drop the gateway's persistent session from a shared broker after the test."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        client.connect(host, port)
        client.loop_start()
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass


# -- the tests -----------------------------------------------------------------------------------------------------


def test_chirpstack_and_tts_events_are_decoded_and_arrive_in_the_cloud(
    mosquitto: MqttBroker, cloud: Cloud, gateway_dir: Path
) -> None:
    cloud.start()
    prefix = mosquitto.topic_prefix
    gateway = write_gateway_config(
        gateway_dir,
        cloud.url,
        devices=DEVICES,
        chirpstack=(mosquitto.host, mosquitto.port, f"{prefix}application/+/device/+/event/up"),
        tts=(mosquitto.host, mosquitto.port, f"{prefix}v3/+/devices/+/up"),
    )
    gateway.start()
    try:
        gateway.wait_connected()
        publisher = Publisher(mosquitto.host, mosquitto.port)
        app = "17c82e96-be03-4f38-aef3-f83d48582d97"
        messages = [
            (f"{prefix}application/{app}/device/{DEVICES[i % 20]}/event/up", chirpstack_body(i)) for i in range(40)
        ]
        messages += [(f"{prefix}v3/flurfunk@ttn/devices/bin-{i}/up", tts_body(i)) for i in range(40, 80)]
        messages.append((f"{prefix}application/{app}/device/x/event/up", b"{broken"))
        publisher.publish_all(messages)
        publisher.close()
        expected = {expected_point(i): distance_of(i) for i in range(80)}
        wait_until(lambda: len(cloud.points()) >= 80, 30, "80 distance readings in the cloud")
        arrived = {(device, time_us): value for device, time_us, value in cloud.points()}
        assert arrived == pytest.approx(expected)
        status = gateway.status()
        assert status["received"] == {"chirpstack": 41, "tts": 40}
        assert status["dropped"] == {"mqtt_not_json": 1}
        assert len([e for e in gateway.log_events("input_refused")]) == 1
        assert gateway.stop() == 0
    finally:
        gateway.stop()
        forget_session(mosquitto.host, mosquitto.port, f"gw-test-chirpstack-{gateway.config_path}")


def test_broker_restart_mid_run_loses_nothing_published_with_qos1(
    own_broker: OwnBroker, cloud: Cloud, gateway_dir: Path
) -> None:
    cloud.start()
    gateway = write_gateway_config(
        gateway_dir,
        cloud.url,
        devices=DEVICES,
        chirpstack=("127.0.0.1", own_broker.port, "application/+/device/+/event/up"),
    )
    gateway.start()
    try:
        gateway.wait_connected()
        topic = "application/app/device/{}/event/up"
        first = [(topic.format(DEVICES[i % 20]), chirpstack_body(i)) for i in range(0, 500)]
        second = [(topic.format(DEVICES[i % 20]), chirpstack_body(i)) for i in range(500, 1000)]
        publisher = Publisher("127.0.0.1", own_broker.port)
        publisher.publish_all(first)
        publisher.close()
        own_broker.stop()  # whatever the gateway has not taken yet stays in the broker's persistence file
        assert (own_broker.directory / "mosquitto.db").exists(), "the broker could not save its sessions"
        time.sleep(0.5)
        own_broker.start()
        publisher = Publisher("127.0.0.1", own_broker.port)
        publisher.publish_all(second)
        publisher.close()
        try:
            wait_until(lambda: len(cloud.points()) >= 1000, 120, "1000 distance readings in the cloud")
        except AssertionError as error:
            arrived = {(d, t) for d, t, _ in cloud.points()}
            missing = [i for i in range(1000) if expected_point(i) not in arrived]
            raise AssertionError(f"{error}: {len(missing)} missing, first {missing[:5]}; {gateway.status()}") from None
        assert {(d, t) for d, t, _ in cloud.points()} == {expected_point(i) for i in range(1000)}
        assert len(gateway.log_events("mqtt_connected")) >= 2  # it did reconnect
    finally:
        gateway.stop()


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    own_broker: OwnBroker, cloud: Cloud, gateway_dir: Path
) -> None:
    total = 10_000
    cloud.start()
    gateway = write_gateway_config(
        gateway_dir,
        cloud.url,
        devices=DEVICES,
        chirpstack=("127.0.0.1", own_broker.port, "application/+/device/+/event/up"),
    )
    gateway.start()
    gateway.wait_connected()
    topic = "application/app/device/{}/event/up"
    messages = [(topic.format(DEVICES[i % 20]), chirpstack_body(i)) for i in range(total)]
    published = threading.Event()

    def publish() -> None:
        publisher = Publisher("127.0.0.1", own_broker.port)
        for start in range(0, total, 500):
            publisher.publish_all(messages[start : start + 500])
            time.sleep(0.05)  # an LNS publishes over time, not all at once
        publisher.close()
        published.set()

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    chooser = random.Random(4)
    kills = 0
    try:
        while kills < 6:
            time.sleep(chooser.uniform(0.3, 1.5))
            gateway.kill()
            kills += 1
            gateway.start()
        thread.join(timeout=60)
        assert published.is_set()
        wait_until(lambda: len(cloud.points()) >= total, 60, f"{total} distance readings in the cloud", 0.25)
        points = cloud.points()
        identities = [(device, time_us) for device, time_us, _ in points]
        assert len(identities) == len(set(identities)) == total  # none duplicated
        assert set(identities) == {expected_point(i) for i in range(total)}  # none lost
        assert gateway.stop() == 0
    finally:
        gateway.stop()


def test_cloud_down_for_the_first_half_gets_everything_oldest_first_and_live_data_promptly(
    mosquitto: MqttBroker, cloud: Cloud, gateway_dir: Path
) -> None:
    sync_interval_s = 0.5
    prefix = mosquitto.topic_prefix
    gateway = write_gateway_config(
        gateway_dir,
        cloud.url,
        devices=DEVICES,
        chirpstack=(mosquitto.host, mosquitto.port, f"{prefix}application/+/device/+/event/up"),
        sync_interval_s=sync_interval_s,
    )
    gateway.start()
    try:
        gateway.wait_connected()
        publisher = Publisher(mosquitto.host, mosquitto.port)
        topic = prefix + "application/app/device/{}/event/up"
        backlog = 600
        publisher.publish_all([(topic.format(DEVICES[i % 20]), chirpstack_body(i)) for i in range(backlog)])
        wait_until(lambda: gateway.status()["decoded"] == backlog, 20, "the backlog in the gateway's buffer")
        assert cloud.points() == []

        cloud.start()
        first_seen: dict[tuple[str, int], float] = {}
        published_at: dict[tuple[str, int], float] = {}
        for index in range(backlog, backlog + 30):
            published_at[expected_point(index)] = time.monotonic()
            publisher.publish_all([(topic.format(DEVICES[index % 20]), chirpstack_body(index))])
            for device, time_us, _ in cloud.points():
                first_seen.setdefault((device, time_us), time.monotonic())
            time.sleep(0.1)
        deadline = time.monotonic() + 20
        while len(first_seen) < backlog + 30 and time.monotonic() < deadline:
            for device, time_us, _ in cloud.points():
                first_seen.setdefault((device, time_us), time.monotonic())
            time.sleep(0.05)
        publisher.close()

        assert set(first_seen) == {expected_point(i) for i in range(backlog + 30)}
        acked = [event for event in gateway.log_events("sync") if event.get("outcome") == "acked"]
        assert acked[0]["first_seq"] == 1  # the oldest data went first
        assert [event["first_seq"] for event in acked] == sorted(event["first_seq"] for event in acked)
        backlog_done = max(first_seen[expected_point(i)] for i in range(backlog))
        live_waits = [first_seen[point] - sent for point, sent in published_at.items() if sent > backlog_done]
        assert live_waits, "no live reading was sent after the backlog went through"
        # one sync interval, plus the polling of this test and a loaded 2-core machine
        assert max(live_waits) <= sync_interval_s + 1.0, live_waits
    finally:
        gateway.stop()
        forget_session(mosquitto.host, mosquitto.port, "unused")
