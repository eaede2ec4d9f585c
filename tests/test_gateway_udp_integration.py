"""The gateway service with its Semtech UDP source as a real process, the real cloud app in its own process.

Encrypted frames from the forwarder simulator arrive with the right values while an upstream network server gets
every datagram byte for byte; kill -9 at random moments during a 10,000-uplink run loses and duplicates nothing
that got a PUSH_ACK; hostile datagrams and frames are counted by reason in /metrics and logged once per cause.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import socket
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

import decoders
from flurfunk.contracts import Device, Quantity, Uplink
from gateway.lorawan import DeviceSession, write_sessions
from gateway.lorawan.frame import MType, build_data_frame
from gateway.lorawan.gwmp import encode_base64, push_data
from gateway.simulator import ForwarderSimulator, simulated_sessions
from tests.processes import MODEL, Cloud, distance_of, event_time, wait_until, write_gateway_config
from tests.test_forwarder_sim import UpstreamServer, upstream_server

pytestmark = pytest.mark.integration

FORWARDER_EUI = "b827ebfffe6a1f0c"
# 100 bins: a wave of 100 uplinks (13 datagrams) holds each device once, so the kill test needs only 100 waves.
DEVICES = [f"24e124713b23{index:04x}" for index in range(100)]
T = TypeVar("T")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def device_sessions(directory: Path) -> tuple[dict[str, DeviceSession], Path]:
    devices = [
        Device(dev_eui=dev_eui, model_id=MODEL, asset=f"bin-{i}", report_interval_s=600)
        for i, dev_eui in enumerate(DEVICES)
    ]
    sessions = simulated_sessions(devices, seed=7)
    bundle = directory / "sessions.json"
    write_sessions(bundle, sessions.values())  # mode 0600, as the service demands
    return sessions, bundle


def expected_point(index: int) -> tuple[str, int]:
    return DEVICES[index % len(DEVICES)], (event_time(index) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )


def uplink_of(index: int) -> Uplink:
    """Uplink `index`: DEVICES round robin, each device counting its frames from 0, 1 ms apart in time."""
    f_port, payload = decoders.encode_quantities(
        MODEL, {Quantity.DISTANCE_M: distance_of(index), Quantity.BATTERY_PCT: 90}
    )
    return Uplink(
        dev_eui=DEVICES[index % len(DEVICES)],
        f_port=f_port,
        f_cnt=index // len(DEVICES),
        payload=payload,
        received_at=event_time(index),
        source="simulator",
    )


class LoopThread:
    """An event loop in a thread: the forwarder and the upstream live here while the test kills gateways."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30) -> T:
        return self.submit(coroutine).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    try:
        yield runner
    finally:
        runner.close()


def metric_samples(health_port: int, name: str) -> dict[str, float]:
    """`flurfunk_gateway_<name>` samples from /metrics, keyed by their labels other than the gateway's."""
    body = httpx.get(f"http://127.0.0.1:{health_port}/metrics", timeout=5).text
    samples = {}
    for line in body.splitlines():
        if line.startswith(f"flurfunk_gateway_{name}{{"):
            labels, value = line[len(f"flurfunk_gateway_{name}") :].rsplit(" ", 1)
            own = ",".join(part for part in labels.strip("{}").split(",") if not part.startswith("gateway="))
            samples[own] = float(value)
    return samples


def test_encrypted_frames_arrive_with_their_values_and_the_upstream_gets_every_datagram(
    cloud: Cloud, gateway_dir: Path, loop_thread: LoopThread
) -> None:
    cloud.start()
    sessions, bundle = device_sessions(gateway_dir)
    upstream: UpstreamServer = loop_thread.call(upstream_server())
    udp_port = free_udp_port()
    gateway = write_gateway_config(
        gateway_dir, cloud.url, semtech_udp=(udp_port, (upstream.port,), bundle), devices=DEVICES
    )
    gateway.start()
    try:
        gateway.wait_connected()
        uplinks = [uplink_of(index) for index in range(400)]

        async def forward() -> tuple[list[Uplink], list[bytes], bool]:
            async with ForwarderSimulator(("127.0.0.1", udp_port), FORWARDER_EUI, sessions) as forwarder:
                pulled = await forwarder.pull(timeout_s=2.0)  # the upstream's PULL_ACK, relayed
                outcome = await forwarder.send_uplinks(uplinks)
                assert await forwarder.send_stat(rxnb=len(uplinks), rxok=len(uplinks))
                return outcome.unacked, [data for _, data in forwarder.sent], pulled

        unacked, sent, pulled = loop_thread.call(forward(), timeout_s=120)
        assert unacked == [] and pulled
        wait_until(lambda: len(cloud.points()) >= len(uplinks), 60, f"{len(uplinks)} readings in the cloud")
        arrived = {(device, time_us): value for device, time_us, value in cloud.points()}
        assert arrived == pytest.approx({expected_point(i): distance_of(i) for i in range(len(uplinks))})

        wait_until(lambda: len(upstream.datagrams) >= len(sent), 10, "every datagram at the upstream")
        assert sorted(data for data, _ in upstream.datagrams) == sorted(sent)  # byte for byte, none extra

        def status_settled() -> bool:
            udp = gateway.status().get("semtech_udp") or {}
            return bool(udp.get("forwarders")) and udp["forwarders"][0].get("stat") is not None

        wait_until(status_settled, 10, "the forwarder's stat in the status")
        status = gateway.status()
        udp = status["semtech_udp"]
        assert isinstance(udp, dict)
        assert udp["uplinks"] == len(uplinks) and udp["push_acks"] == udp["push_data"]
        assert udp["upstream_push_acks_dropped"] == udp["push_data"]  # only Flurfunk's acks reach the forwarder
        (forwarder,) = udp["forwarders"]
        assert forwarder["gateway_eui"] == FORWARDER_EUI and forwarder["stat"]["rx_received"] == len(uplinks)
        assert status["received"] == {"semtech_udp": len(uplinks)}
        assert metric_samples(gateway.health_port, "forwarder_rx_packets") == {
            f'forwarder="{FORWARDER_EUI}"': len(uplinks)
        }
        assert gateway.stop() == 0
    finally:
        gateway.stop()


def test_kill_9_during_a_udp_run_loses_and_duplicates_nothing_that_was_acked(
    cloud: Cloud, gateway_dir: Path, loop_thread: LoopThread
) -> None:
    at_least, at_most, kills_wanted = 10_000, 200_000, 6
    cloud.start()
    sessions, bundle = device_sessions(gateway_dir)
    udp_port = free_udp_port()
    gateway = write_gateway_config(gateway_dir, cloud.url, semtech_udp=(udp_port, (), bundle), devices=DEVICES)
    gateway.start()
    gateway.wait_connected()
    all_killed = threading.Event()

    async def forward() -> tuple[list[Uplink], list[Uplink], int]:
        # Like a forwarder that retries what was not acked. A wave holds each device once and the next wave waits
        # for its acks: a device's frames stay in FCnt order, as they would on air minutes apart. It sends until
        # every kill has happened (and at least `at_least` uplinks), so a fast or slow machine still sees them all.
        forwarder = ForwarderSimulator(
            ("127.0.0.1", udp_port), FORWARDER_EUI, sessions, ack_timeout_s=0.5, attempts=240, in_flight=16
        )
        acked: list[Uplink] = []
        unacked: list[Uplink] = []
        retries = 0
        sent = 0
        async with forwarder:
            while sent < at_most and (sent < at_least or not all_killed.is_set()):
                wave = [uplink_of(index) for index in range(sent, sent + len(DEVICES))]
                sent += len(wave)
                outcome = await forwarder.send_uplinks(wave)
                acked += outcome.acked
                unacked += outcome.unacked
                retries += outcome.retries
        return acked, unacked, retries

    running = loop_thread.submit(forward())
    chooser = random.Random(4)
    kills = 0
    try:
        while kills < kills_wanted and not running.done():
            wait_until(lambda: gateway.status()["decoded"] > 0, 60, "the restarted gateway to store uplinks")
            time_to_kill = chooser.uniform(0.2, 1.2)
            threading.Event().wait(time_to_kill)
            gateway.kill()
            kills += 1
            gateway.start()
            gateway.wait_connected()
        all_killed.set()
        acked, unacked, retries = running.result(timeout=240)
        assert kills == kills_wanted, f"the run ended after {len(acked)} uplinks, before all kills"
        assert unacked == []
        total = len(acked)
        assert total >= at_least and retries > 0  # the kills cost retries
        wait_until(lambda: len(cloud.points()) >= total, 90, f"{total} distance readings in the cloud", 0.25)
        identities = [(device, time_us) for device, time_us, _ in cloud.points()]
        assert len(identities) == len(set(identities)) == total  # none duplicated
        assert set(identities) == {expected_point(i) for i in range(total)}  # none lost
        assert gateway.stop() == 0
    finally:
        all_killed.set()  # a failed kill must not leave the sender running until `at_most`
        gateway.stop()


def frame_of(session: DeviceSession, f_cnt: int, nwk_s_key: bytes | None = None, dev_addr: int | None = None) -> str:
    phy = build_data_frame(
        mtype=MType.UNCONFIRMED_DATA_UP,
        dev_addr=session.dev_addr if dev_addr is None else dev_addr,
        f_cnt=f_cnt,
        f_port=85,
        payload=b"\x01\x75\x5c",
        nwk_s_key=session.nwk_s_key if nwk_s_key is None else nwk_s_key,
        app_s_key=session.app_s_key,
    )
    return encode_base64(phy)


def rxpk(data: str) -> dict[str, object]:
    return {"freq": 868.1, "rssi": -70, "lsnr": 6.5, "datr": "SF9BW125", "modu": "LORA", "stat": 1, "data": data}


def test_hostile_datagrams_and_frames_are_counted_in_metrics_and_logged_once_per_cause(
    cloud: Cloud, gateway_dir: Path, loop_thread: LoopThread
) -> None:
    cloud.start()
    sessions, bundle = device_sessions(gateway_dir)
    session = sessions[DEVICES[0]]
    udp_port = free_udp_port()
    gateway = write_gateway_config(gateway_dir, cloud.url, semtech_udp=(udp_port, (), bundle), devices=DEVICES)
    gateway.start()
    try:
        gateway.wait_connected()
        good = uplink_of(0)
        frames = [
            rxpk(frame_of(session, 1, nwk_s_key=bytes(16))),  # wrong MIC
            rxpk(frame_of(session, 0)),  # a replay of the frame just accepted from the simulator (FCnt 0)
            rxpk(frame_of(session, 40_000)),  # far jump
            rxpk(frame_of(session, 2, dev_addr=0x01020304)),  # unknown DevAddr
            rxpk(encode_base64(bytes.fromhex("40f17dbe49000200"))),  # truncated
        ]
        datagrams = [
            b"\x02",  # truncated header
            b"\x02\x12\x34\x09",  # unknown type
            push_data(9, FORWARDER_EUI, {"rxpk": []})[:-1] + b"!",  # broken JSON
            push_data(10, FORWARDER_EUI, {"rxpk": [{"data": "QAE="}]}),  # rxpk without its fields
        ]

        async def attack() -> bool:
            async with ForwarderSimulator(("127.0.0.1", udp_port), FORWARDER_EUI, sessions) as forwarder:
                first = await forwarder.send_uplinks([good])
                assert first.unacked == []
                for _ in range(3):  # each cause three times: counted three times, logged once
                    assert await forwarder.push({"rxpk": frames})
                    for datagram in datagrams:
                        forwarder.send_raw(datagram)
                await asyncio.sleep(0.2)
                return await forwarder.pull(timeout_s=2.0)  # it still serves

        assert loop_thread.call(attack(), timeout_s=60)
        expected = {
            "mic_mismatch": 3,
            "fcnt_replay": 3,
            "fcnt_jump": 3,
            "unknown_devaddr": 3,
            "malformed_frame": 3,
            "too_short": 3,
            "unknown_type": 3,
            "bad_json": 3,
            "bad_rxpk": 3,
        }

        def counted() -> bool:
            dropped = metric_samples(gateway.health_port, "uplinks_dropped_total")
            return all(dropped.get(f'reason="{reason}"') == count for reason, count in expected.items())

        wait_until(counted, 10, "every refusal counted in /metrics")
        assert gateway.status()["status"] == "ok" and gateway.process is not None and gateway.process.poll() is None
        for reason in expected:
            assert len(gateway.log_events(reason)) == 1, reason
        log_text = gateway.log_path.read_text()
        assert session.nwk_s_key.hex() not in log_text and session.app_s_key.hex() not in log_text
        wait_until(lambda: len(cloud.points()) == 1, 30, "the one good uplink in the cloud")
        assert gateway.stop() == 0
    finally:
        gateway.stop()


def test_a_session_bundle_others_may_read_stops_the_service_before_it_starts(gateway_dir: Path) -> None:
    _, bundle = device_sessions(gateway_dir)
    bundle.chmod(0o644)
    gateway = write_gateway_config(
        gateway_dir, "http://127.0.0.1:9", semtech_udp=(free_udp_port(), (), bundle), devices=DEVICES
    )
    gateway.start()
    assert gateway.process is not None
    assert gateway.process.wait(timeout=60) != 0
    log_text = gateway.log_path.read_text()
    assert "sources.semtech_udp.sessions" in log_text and "chmod 600" in log_text
