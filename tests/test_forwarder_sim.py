"""Forwarder simulator → Semtech UDP source → Pipeline with a real DurableBuffer, with upstream servers in the path.

The virtual sensors of edge/sim send encrypted frames; every acked uplink must be in the buffer with the values the
decoders give for its plaintext, and the upstream network servers must get every datagram byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import decoders
from edge.sim import Simulation, build_world
from flurfunk.contracts import Uplink
from gateway.buffer import DurableBuffer, all_readings
from gateway.lorawan import FrameOpener, SessionStore, load_sessions, write_sessions
from gateway.lorawan.gwmp import PacketType, pull_ack, pull_resp, push_ack, read_datagram
from gateway.pipeline import DeviceBinding, Pipeline
from gateway.simulator import ForwarderSimulator, simulated_sessions
from gateway.sources.semtech_udp import SemtechUdpConfig, SemtechUdpSource, Upstream, pipeline_handler

START = datetime(2026, 7, 6, tzinfo=UTC)
GATEWAY = "aa555a0000000202"
TXPK = {"imme": True, "freq": 869.525, "rfch": 0, "powe": 14, "modu": "LORA", "datr": "SF9BW125", "data": "AQIDBA=="}


class UpstreamServer(asyncio.DatagramProtocol):
    """A network server stand-in: records every datagram with its sender, and acks like one if asked to."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append((data, addr))
        if not self.answer or self.transport is None:
            return
        datagram = read_datagram(data)
        if datagram.type is PacketType.PUSH_DATA:
            self.transport.sendto(push_ack(datagram.token), addr)
        elif datagram.type is PacketType.PULL_DATA:
            self.transport.sendto(pull_ack(datagram.token), addr)

    def pull_address(self) -> tuple[str, int]:
        return next(addr for data, addr in reversed(self.datagrams) if data[3] == PacketType.PULL_DATA)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


async def upstream_server(answer: bool = True) -> UpstreamServer:
    _, server = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: UpstreamServer(answer), local_addr=("127.0.0.1", 0)
    )
    return server


async def eventually(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def _world_uplinks(hours: int) -> tuple[object, list[Uplink]]:
    world = build_world(3, scale=0.05)
    simulation = Simulation(world, 3, START, decoders.encode_quantities)
    return world, simulation.advance(START + timedelta(hours=hours))


def test_encrypted_sensor_frames_arrive_decoded_and_upstreams_get_every_datagram(tmp_path: Path) -> None:
    world, uplinks = _world_uplinks(hours=4)
    assert {d.model_id for d in world.devices} >= {"milesight-iot/em310-udl", "dragino/lse01"}
    sessions = simulated_sessions(world.devices, seed=3)
    bundle = tmp_path / "sessions.json"
    write_sessions(bundle, sessions.values())  # the gateway reads its sessions as it would from the config bundle
    assets = {asset.id: asset for asset in world.assets}
    bindings = {d.dev_eui: DeviceBinding(device=d, asset=assets[d.asset]) for d in world.devices}
    models = {d.dev_eui: d for d in world.devices}

    async def main() -> tuple[list[Uplink], list[bytes], list[list[bytes]], object]:
        upstreams = [await upstream_server(), await upstream_server(answer=False)]
        config = SemtechUdpConfig(
            host="127.0.0.1", port=0, upstreams=tuple(Upstream("127.0.0.1", u.port) for u in upstreams)
        )
        with (
            DurableBuffer(tmp_path / "buffer.sqlite", quota_bytes=64 * 1024 * 1024) as buffer,
            SessionStore(tmp_path / "sessions.sqlite", load_sessions(bundle)) as store,
        ):
            pipeline = Pipeline(GATEWAY, bindings, buffer, clock=lambda: START + timedelta(hours=4))
            async with (
                SemtechUdpSource(config, FrameOpener(store), pipeline_handler(pipeline)) as source,
                ForwarderSimulator(source.address, GATEWAY, sessions, ack_timeout_s=1.0) as forwarder,
            ):
                assert await forwarder.pull()  # the first upstream's PULL_ACK, relayed
                outcome = await forwarder.send_uplinks(uplinks)
                assert outcome.unacked == [] and len(outcome.acked) == len(uplinks)
                await forwarder.send_stat(rxnb=len(uplinks))
                sent = [data for _, data in forwarder.sent]
                await eventually(lambda: all(len(u.datagrams) >= len(sent) for u in upstreams))
                pushes_acked = [data for via, data in forwarder.received if data[3] == PacketType.PUSH_ACK]
                stats = source.stats()
                assert stats.upstream_push_acks_dropped == stats.push_data  # only Flurfunk's acks got through
                assert len(pushes_acked) == stats.push_data
                health = source.gateways()[GATEWAY]
                assert health.stat is not None and health.stat.rx_received == len(uplinks)
                return outcome.acked, sent, [[d for d, _ in u.datagrams] for u in upstreams], buffer.pending(10**6)

    acked, sent, received_upstream, pending = asyncio.run(main())
    assert len(acked) == len(uplinks) > 100
    for received in received_upstream:
        assert sorted(received) == sorted(sent)  # byte for byte, none missing, none extra

    stored = {(r.device, r.quantity, r.time): r.value for r in all_readings(pending)}
    for uplink in acked:
        decoded = decoders.decode(models[uplink.dev_eui].model_id, uplink.f_port, uplink.payload)
        for reading in decoded.readings(uplink.dev_eui, bindings[uplink.dev_eui].asset.id, uplink.received_at):
            assert stored[(reading.device, reading.quantity, reading.time)] == reading.value
    assert len(pending) == len(acked)


def test_pull_resp_from_upstream_reaches_the_forwarder_and_its_tx_ack_goes_back(tmp_path: Path) -> None:
    async def main() -> None:
        first, second = await upstream_server(), await upstream_server()
        config = SemtechUdpConfig(
            host="127.0.0.1", port=0, upstreams=(Upstream("127.0.0.1", first.port), Upstream("127.0.0.1", second.port))
        )
        with SessionStore(tmp_path / "sessions.sqlite", []) as store:

            async def nothing(uplinks: object) -> None:
                return None

            async with (
                SemtechUdpSource(config, FrameOpener(store), nothing) as source,
                ForwarderSimulator(source.address, GATEWAY, {}) as forwarder,
            ):
                assert await forwarder.pull()
                await eventually(lambda: forwarder.pull_acks == 1 and len(second.datagrams) == 1)
                await asyncio.sleep(0.1)
                assert forwarder.pull_acks == 1  # two upstreams acked, the forwarder saw one PULL_ACK

                assert first.transport is not None
                downlink = pull_resp(0x4242, TXPK)
                first.transport.sendto(downlink, first.pull_address())
                assert await forwarder.wait_for_downlink() == downlink
                await eventually(lambda: any(d[3] == PacketType.TX_ACK for d, _ in first.datagrams))
                tx_ack = next(d for d, _ in first.datagrams if d[3] == PacketType.TX_ACK)
                assert read_datagram(tx_ack).token == 0x4242
                assert source.stats().relayed_to_forwarder == 2  # one PULL_ACK, one PULL_RESP

    asyncio.run(main())


def test_without_upstreams_flurfunk_answers_pull_data_itself(tmp_path: Path) -> None:
    async def main() -> None:
        with SessionStore(tmp_path / "sessions.sqlite", []) as store:

            async def nothing(uplinks: object) -> None:
                return None

            config = SemtechUdpConfig(host="127.0.0.1", port=0)
            async with (
                SemtechUdpSource(config, FrameOpener(store), nothing) as source,
                ForwarderSimulator(source.address, GATEWAY, {}, keepalive_s=0.05) as forwarder,
            ):
                await eventually(lambda: forwarder.pull_acks >= 3)
                token = source.send_downlink(GATEWAY, TXPK)
                downlink = await forwarder.wait_for_downlink()
                assert read_datagram(downlink).token == token
                await eventually(lambda: source.stats().tx_ack == 1)

    asyncio.run(main())


def test_a_full_buffer_means_no_push_ack_even_when_the_forwarder_retries(tmp_path: Path) -> None:
    # Every attempt of the forwarder must be refused: the pipeline's duplicate filter once remembered uplinks the
    # full buffer refused, so the first retry passed as a "duplicate" and was acked though never stored.
    world, uplinks = _world_uplinks(hours=1)
    sessions = simulated_sessions(world.devices, seed=3)
    assets = {asset.id: asset for asset in world.assets}
    bindings = {d.dev_eui: DeviceBinding(device=d, asset=assets[d.asset]) for d in world.devices}

    async def main() -> None:
        with (
            DurableBuffer(tmp_path / "buffer.sqlite", quota_bytes=200) as buffer,
            SessionStore(tmp_path / "sessions.sqlite", sessions.values()) as store,
        ):
            pipeline = Pipeline(GATEWAY, bindings, buffer, clock=lambda: START)
            config = SemtechUdpConfig(host="127.0.0.1", port=0)
            async with (
                SemtechUdpSource(config, FrameOpener(store), pipeline_handler(pipeline)) as source,
                ForwarderSimulator(source.address, GATEWAY, sessions, ack_timeout_s=0.2, attempts=3) as forwarder,
            ):
                outcome = await forwarder.send_uplinks(uplinks[:8])
                assert outcome.acked == [] and len(outcome.unacked) == 8
                assert outcome.datagrams == 3  # the forwarder tried three times, each refused
                stats = source.stats()
                assert stats.push_acks == 0 and stats.dropped["not_durable"] == 3
                assert pipeline.dropped_totals["buffer_full"] >= 3
                assert store.last_f_cnt(sessions[uplinks[0].dev_eui]) is None  # counters rolled back
                assert buffer.stats().entries == 0

    asyncio.run(main())
