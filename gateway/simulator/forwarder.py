"""A packet-forwarder simulator for tests, bench and demo: speaks GWMP v2 from its own UDP sockets.

It sends the virtual sensors' uplinks as encrypted LoRaWAN frames in PUSH_DATA (retrying until a PUSH_ACK with the
token arrives), keeps its downlink path open with PULL_DATA, answers PULL_RESP with TX_ACK, and records what was
acked. Device sessions (DevAddr, keys) come from `simulated_sessions`, deterministic for a seed; export them with
`gateway.lorawan.write_sessions` as the gateway's session bundle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flurfunk.contracts import Device, Uplink, utc_now
from gateway.lorawan.errors import GwmpError
from gateway.lorawan.frame import MType, build_data_frame
from gateway.lorawan.gwmp import (
    PacketType,
    encode_base64,
    format_time,
    pull_data,
    push_data,
    read_datagram,
    tx_ack,
)
from gateway.lorawan.session import DeviceSession

SIMULATED_NWK_ID = 0x13  # DevAddr prefix 0x26/0x27 (NetID 000013): addresses that look like a real network's
RXPK_PER_DATAGRAM = 8  # the reference forwarder puts at most 8 packets in one PUSH_DATA


def simulated_sessions(devices: Iterable[Device], seed: int) -> dict[str, DeviceSession]:
    """A session per device (dev_eui -> session): DevAddr and keys derived from the seed, unique DevAddrs."""
    sessions: dict[str, DeviceSession] = {}
    used: set[int] = set()
    for device in sorted(devices, key=lambda d: d.dev_eui):

        def derive(label: str, size: int, dev_eui: str = device.dev_eui) -> bytes:
            digest = hashlib.blake2b(f"{seed}/{dev_eui}/{label}".encode(), digest_size=size, person=b"flurfunk-sim")
            return digest.digest()

        nwk_addr = int.from_bytes(derive("devaddr", 4), "big") & 0x01FF_FFFF
        dev_addr = (SIMULATED_NWK_ID << 25) | nwk_addr
        while dev_addr in used:  # rare; stepping keeps the choice deterministic
            nwk_addr = (nwk_addr + 1) & 0x01FF_FFFF
            dev_addr = (SIMULATED_NWK_ID << 25) | nwk_addr
        used.add(dev_addr)
        sessions[device.dev_eui] = DeviceSession(
            dev_eui=device.dev_eui, dev_addr=dev_addr, nwk_s_key=derive("nwk", 16), app_s_key=derive("app", 16)
        )
    return sessions


def simulated_bin_assets(count: int) -> list[dict[str, Any]]:
    """`count` bins `bin-0` … in Bad Orb as the cloud's device bundle lists assets: where simulated sensors sit."""
    return [
        {
            "id": f"bin-{index}",
            "kind": "bin",
            "municipality": "Bad Orb",
            "village": "Bad Orb",
            "latitude": 50.2,
            "longitude": 9.35,
            "sensor_to_bottom_m": 1.5,
            "sensor_to_full_m": 0.2,
        }
        for index in range(count)
    ]


def encrypt_uplink(session: DeviceSession, uplink: Uplink, *, confirmed: bool = False) -> bytes:
    """The PHYPayload a device with this session sends for the uplink (FCnt = uplink.f_cnt, FRMPayload encrypted)."""
    return build_data_frame(
        mtype=MType.CONFIRMED_DATA_UP if confirmed else MType.UNCONFIRMED_DATA_UP,
        dev_addr=session.dev_addr,
        f_cnt=uplink.f_cnt,
        f_port=uplink.f_port,
        payload=uplink.payload,
        nwk_s_key=session.nwk_s_key,
        app_s_key=session.app_s_key,
    )


def rxpk_of(uplink: Uplink, phy_payload: bytes, tmst: int, *, padded_base64: bool = False) -> dict[str, Any]:
    """An rxpk as the packet forwarder writes it, with the uplink's radio metadata and reception time."""
    rx = uplink.rx[0] if uplink.rx else None
    return {
        "time": format_time(uplink.received_at),
        "tmst": tmst & 0xFFFFFFFF,
        "chan": 0,
        "rfch": 0,
        "freq": (rx.frequency_hz if rx else 868_100_000) / 1_000_000,
        "stat": 1,
        "modu": "LORA",
        "datr": rx.data_rate if rx else "SF7BW125",
        "codr": "4/5",
        "rssi": rx.rssi if rx else -80,
        "lsnr": rx.snr if rx else 7.0,
        "size": len(phy_payload),
        "data": encode_base64(phy_payload, padded=padded_base64),
    }


@dataclass
class PushOutcome:
    """What became of a `send_uplinks` call: which uplinks were acked, which not, and how many tries it took."""

    acked: list[Uplink] = field(default_factory=list)
    unacked: list[Uplink] = field(default_factory=list)
    datagrams: int = 0
    retries: int = 0


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, simulator: ForwarderSimulator, name: str) -> None:
        self.simulator = simulator
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.simulator._received(self.name, data)

    def error_received(self, exc: Exception) -> None:  # the target is not (yet) listening: retries cover it
        pass


class ForwarderSimulator:
    """A Semtech packet forwarder with an uplink socket and a downlink socket, like the reference implementation.

    Use as `async with ForwarderSimulator((host, port), gateway_eui, sessions) as forwarder:`.
    """

    def __init__(
        self,
        target: tuple[str, int],
        gateway_eui: str,
        sessions: Mapping[str, DeviceSession],
        *,
        ack_timeout_s: float = 0.5,
        attempts: int = 4,
        rxpk_per_datagram: int = RXPK_PER_DATAGRAM,
        in_flight: int = 8,
        keepalive_s: float | None = None,
        padded_base64: bool = False,
        local_host: str = "127.0.0.1",
        seed: int = 0,
    ) -> None:
        if not 1 <= rxpk_per_datagram <= 256 or in_flight < 1 or attempts < 1:
            raise ValueError("rxpk_per_datagram 1..256, in_flight and attempts at least 1")
        self.target = target
        self.gateway_eui = gateway_eui.lower()
        self.sessions = dict(sessions)
        self.ack_timeout_s = ack_timeout_s
        self.attempts = attempts
        self.rxpk_per_datagram = rxpk_per_datagram
        self.in_flight = in_flight
        self.keepalive_s = keepalive_s
        self.padded_base64 = padded_base64
        self.local_host = local_host
        self.acked: list[Uplink] = []  # every uplink a PUSH_ACK confirmed, over all calls
        self.sent: list[tuple[str, bytes]] = []  # (socket "up" or "down", datagram), all that went out
        self.received: list[tuple[str, bytes]] = []  # (socket "up" or "down", datagram), all that arrived
        self.downlinks: list[bytes] = []  # PULL_RESP datagrams
        self.pull_acks = 0
        self._random = random.Random(seed)
        self._tmst = self._random.randrange(2**32)
        self._up: _Socket | None = None
        self._down: _Socket | None = None
        self._waiting: dict[tuple[PacketType, int], asyncio.Future[bytes]] = {}
        self._downlink_arrived = asyncio.Event()
        self._keepalive: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for name in ("up", "down"):
            _, protocol = await loop.create_datagram_endpoint(
                lambda name=name: _Socket(self, name), local_addr=(self.local_host, 0), remote_addr=self.target
            )
            setattr(self, f"_{name}", protocol)
        if self.keepalive_s is not None:
            self._keepalive = asyncio.create_task(self._keep_pulling(self.keepalive_s))

    async def stop(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        for sock in (self._up, self._down):
            if sock is not None and sock.transport is not None:
                sock.transport.close()

    async def __aenter__(self) -> ForwarderSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        """The local addresses of the uplink and downlink sockets."""
        return {
            sock.name: sock.transport.get_extra_info("sockname")[:2]
            for sock in (self._up, self._down)
            if sock is not None and sock.transport is not None
        }

    # --- sending ----------------------------------------------------------------------------------------------

    def frames_of(self, uplinks: Sequence[Uplink]) -> list[dict[str, Any]]:
        """The rxpk objects for these uplinks, frames encrypted with each device's session."""
        packets = []
        for uplink in uplinks:
            phy = encrypt_uplink(self.sessions[uplink.dev_eui], uplink)
            self._tmst = (self._tmst + 1_000) & 0xFFFFFFFF
            packets.append(rxpk_of(uplink, phy, self._tmst, padded_base64=self.padded_base64))
        return packets

    async def send_uplinks(self, uplinks: Sequence[Uplink]) -> PushOutcome:
        """Send the uplinks as PUSH_DATA (`rxpk_per_datagram` each, `in_flight` at once), each until acked."""
        outcome = PushOutcome()
        chunks = [list(uplinks[i : i + self.rxpk_per_datagram]) for i in range(0, len(uplinks), self.rxpk_per_datagram)]
        gate = asyncio.Semaphore(self.in_flight)

        async def send(chunk: list[Uplink]) -> tuple[bool, int]:
            async with gate:
                return await self._push_until_acked({"rxpk": self.frames_of(chunk)})

        results = await asyncio.gather(*(send(chunk) for chunk in chunks))
        for chunk, (acked, tries) in zip(chunks, results, strict=True):
            (outcome.acked if acked else outcome.unacked).extend(chunk)
            outcome.datagrams += tries
            outcome.retries += tries - 1
        self.acked.extend(outcome.acked)
        return outcome

    async def push(self, document: dict[str, Any]) -> bool:
        """Send one PUSH_DATA with this JSON document (rxpk and/or stat); whether it was acked."""
        acked, _ = await self._push_until_acked(document)
        return acked

    async def send_stat(self, **fields: Any) -> bool:
        stat = {"time": utc_now().strftime("%Y-%m-%d %H:%M:%S GMT"), "rxnb": 0, "rxok": 0, "rxfw": 0, "ackr": 100.0}
        return await self.push({"stat": {**stat, **fields}})

    async def pull(self, timeout_s: float | None = None) -> bool:
        """Send PULL_DATA from the downlink socket; whether a PULL_ACK with its token came back."""
        token = self._new_token(PacketType.PULL_ACK)
        future = self._expect(PacketType.PULL_ACK, token)
        self._send("down", pull_data(token, self.gateway_eui))
        try:
            await asyncio.wait_for(future, timeout_s or self.ack_timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting.pop((PacketType.PULL_ACK, token), None)

    def send_raw(self, data: bytes, via: str = "up") -> None:
        """Send any bytes from the uplink or downlink socket (hostile-input tests)."""
        self._send(via, data)

    async def wait_for_downlink(self, timeout_s: float = 2.0) -> bytes:
        """The next PULL_RESP (or one that already arrived and was not taken)."""
        if not self.downlinks:
            self._downlink_arrived.clear()
            await asyncio.wait_for(self._downlink_arrived.wait(), timeout_s)
        return self.downlinks.pop(0)

    async def _push_until_acked(self, document: dict[str, Any]) -> tuple[bool, int]:
        token = self._new_token(PacketType.PUSH_ACK)
        datagram = push_data(token, self.gateway_eui, document)
        future = self._expect(PacketType.PUSH_ACK, token)
        try:
            for attempt in range(1, self.attempts + 1):
                self._send("up", datagram)
                try:
                    await asyncio.wait_for(asyncio.shield(future), self.ack_timeout_s)
                    return True, attempt
                except TimeoutError:
                    continue
            return False, self.attempts
        finally:
            self._waiting.pop((PacketType.PUSH_ACK, token), None)

    async def _keep_pulling(self, interval_s: float) -> None:
        while True:
            await self.pull()
            await asyncio.sleep(interval_s)

    # --- receiving --------------------------------------------------------------------------------------------

    def _received(self, socket_name: str, data: bytes) -> None:
        self.received.append((socket_name, data))
        try:
            datagram = read_datagram(data)
        except GwmpError:
            return
        if datagram.type is PacketType.PULL_ACK:
            self.pull_acks += 1
        if datagram.type is PacketType.PULL_RESP:
            self.downlinks.append(data)
            self._downlink_arrived.set()
            self._send("down", tx_ack(datagram.token, self.gateway_eui))  # a real forwarder confirms each downlink
            return
        future = self._waiting.get((datagram.type, datagram.token))
        if future is not None and not future.done():
            future.set_result(data)

    def _expect(self, packet_type: PacketType, token: int) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[(packet_type, token)] = future
        return future

    def _new_token(self, answer_type: PacketType) -> int:
        while True:
            token = self._random.randrange(0x10000)
            if (answer_type, token) not in self._waiting:
                return token

    def _send(self, socket_name: str, data: bytes) -> None:
        sock = self._up if socket_name == "up" else self._down
        if sock is None or sock.transport is None:
            raise RuntimeError("the forwarder simulator is not started")
        self.sent.append((socket_name, data))
        sock.transport.sendto(data)


def received_at_now(uplinks: Sequence[Uplink], now: datetime | None = None) -> list[Uplink]:
    """The uplinks as if heard now (for runs against a live clock)."""
    moment = now or utc_now()
    return [uplink.model_copy(update={"received_at": moment}) for uplink in uplinks]
