"""The Semtech UDP packet-forwarder source (GWMP v2) and multiplexer: rxpk in, Uplinks out, PUSH_ACK once durable.

Ack policy (what the packet forwarder sees):
- PUSH_ACK comes from Flurfunk alone, and only after the handler returned, i.e. after every uplink of that
  datagram is durable in the buffer. Upstream PUSH_ACKs are dropped, so the forwarder never gets two or gets one
  for data Flurfunk has not stored. A PUSH_DATA whose JSON is unreadable gets no PUSH_ACK from Flurfunk.
- PULL_DATA: without upstreams Flurfunk answers PULL_ACK itself. With upstreams it stays silent and relays the
  first upstream PULL_ACK per token (the forwarder's downlink path is the upstream's, and that is what it reports).
- PULL_RESP from any upstream is relayed to the forwarder; TX_ACK from the forwarder goes to every upstream.
Every well-formed GWMP datagram from the forwarder (PUSH_DATA, PULL_DATA, TX_ACK; version 1 or 2) goes to every
upstream byte for byte, from one socket per forwarder address and upstream, so each upstream sees the forwarder as
it would without Flurfunk and its replies find their way back. Even a PUSH_DATA with broken JSON is relayed: the
upstream decides. Bad input is counted by reason and logged once per cause and interval; nothing stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from flurfunk.contracts import RxInfo, Uplink, utc_now
from gateway.errors import GatewayError
from gateway.lorawan.errors import GwmpError
from gateway.lorawan.gwmp import (
    FROM_FORWARDER,
    MAX_DATAGRAM_BYTES,
    OVERSIZED,
    PROTOCOL_VERSION,
    WRONG_VERSION,
    Datagram,
    GatewayStat,
    PacketType,
    PushData,
    RxPacket,
    parse_push_data,
    pull_ack,
    pull_resp,
    push_ack,
    read_datagram,
)
from gateway.lorawan.opener import DUPLICATE_FRAME, MALFORMED_FRAME, NOT_DATA_UPLINK, FrameOpener, FrameRefusal
from gateway.pipeline import BUFFER_FULL, Pipeline, PipelineReport

log = logging.getLogger(__name__)

DEFAULT_PORT = 1700
CRC_ERROR = "crc_error"
UNEXPECTED_TYPE = "unexpected_type"  # a server-to-forwarder type arriving from a forwarder
OVERLOADED = "overloaded"  # the PUSH_DATA queue was full: no PUSH_ACK, the upstream still got the datagram
NOT_DURABLE = "not_durable"  # the handler failed: no PUSH_ACK, frame counters rolled back
NO_APP_PAYLOAD = "no_app_payload"  # FPort 0 or none: MAC commands only, nothing to decode
UPSTREAM_MALFORMED = "upstream_malformed"
UPSTREAM_UNEXPECTED = "upstream_unexpected_type"
UPSTREAM_UNREACHABLE = "upstream_unreachable"
UPSTREAM_QUEUE_FULL = "upstream_queue_full"
# Not errors: frames that are fine but yield no uplink. Counted, never logged above DEBUG.
BENIGN_REASONS = frozenset({NOT_DATA_UPLINK, DUPLICATE_FRAME, NO_APP_PAYLOAD})

UplinkHandler = Callable[[Sequence[Uplink]], Awaitable[object]]
"""Called with the uplinks of one or more PUSH_DATA; returns once they are durable, raises if they are not."""


class UplinksNotDurableError(GatewayError):
    """The handler could not make the uplinks durable (e.g. the buffer is full): no PUSH_ACK goes out."""


def pipeline_handler(pipeline: Pipeline) -> UplinkHandler:
    """The seam to the gateway core: run `Pipeline.handle_many` in a thread; raise if the buffer refused uplinks.

    Uplinks dropped for other reasons (unknown device, decode error) are final and still acked: a retry would
    not change them. One source calls this at a time; a service with several sources must serialise the calls.
    """

    async def handle(uplinks: Sequence[Uplink]) -> PipelineReport:
        report = await asyncio.to_thread(pipeline.handle_many, list(uplinks))
        if report.dropped.get(BUFFER_FULL):
            raise UplinksNotDurableError(f"{report.dropped[BUFFER_FULL]} uplinks refused: the buffer is full")
        return report

    return handle


@dataclass(frozen=True)
class Upstream:
    """A network server the datagrams are relayed to, e.g. the district's ChirpStack gateway bridge."""

    host: str
    port: int = DEFAULT_PORT

    def __post_init__(self) -> None:
        if not self.host or not 0 < self.port < 65536:
            raise ValueError(f"upstream needs a host and a port 1..65535, got {self.host!r}:{self.port}")

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """From "host:port" (or "[v6addr]:port", or "host" for port 1700)."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or "]" in port:
            return cls(text.strip().strip("[]"))
        if not port.isdigit():
            raise ValueError(f"upstream {text!r}: port {port!r} is not a number")
        return cls(host.strip("[]"), int(port))


@dataclass(frozen=True)
class SemtechUdpConfig:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    upstreams: tuple[Upstream, ...] = ()
    max_datagram_bytes: int = MAX_DATAGRAM_BYTES
    max_queued_datagrams: int = 1_000  # PUSH_DATA waiting for the handler; beyond this they are not acked
    max_batch_datagrams: int = 256  # PUSH_DATA handled (and made durable) together in one handler call
    max_forwarders: int = 64  # forwarder addresses with their own upstream sockets; the least recent is closed
    forwarder_idle_s: float = 600.0  # upstream sockets of a silent forwarder address are closed after this
    log_interval_s: float = 60.0  # per cause: the first occurrence is logged, then at most one line per interval
    # The kernel drops datagrams silently once the socket's receive buffer is full; the default (~200 KB) holds
    # about 60 PUSH_DATA of 8 packets, too few for a burst while a commit is under way. Capped by net.core.rmem_max.
    receive_buffer_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class GatewayHealth:
    """What the source knows about one packet forwarder (by gateway EUI), for /healthz, /metrics and status."""

    gateway_eui: str
    push_address: tuple[str, int] | None = None
    pull_address: tuple[str, int] | None = None  # where downlinks (PULL_RESP) for this gateway go
    last_push_at: datetime | None = None
    last_pull_at: datetime | None = None
    push_data: int = 0
    rxpk: int = 0
    stat: GatewayStat | None = None
    stat_at: datetime | None = None


@dataclass(frozen=True)
class SemtechUdpStats:
    """Counters since start. `dropped` are problems (by reason), `ignored` are fine frames that yield no uplink."""

    datagrams: int = 0
    push_data: int = 0
    pull_data: int = 0
    tx_ack: int = 0
    rxpk: int = 0
    uplinks: int = 0  # handed to the handler and made durable
    push_acks: int = 0
    pull_acks: int = 0
    forwarded_upstream: int = 0
    relayed_to_forwarder: int = 0
    upstream_push_acks_dropped: int = 0
    queued: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)


class CauseLog:
    """Counts events by reason and logs each reason once, then at most once per interval with what it skipped."""

    def __init__(self, logger: logging.Logger, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[str] = Counter()
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._skipped: Counter[str] = Counter()

    def note(self, reason: str, detail: str, level: int = logging.WARNING, **context: object) -> bool:
        """Count one event; whether it was logged."""
        self.counts[reason] += 1
        now = self._clock()
        last = self._last_logged.get(reason)
        if last is not None and now - last < self._interval_s:
            self._skipped[reason] += 1
            return False
        self._last_logged[reason] = now
        skipped = self._skipped.pop(reason, 0)
        more = f" ({skipped} more since the last report)" if skipped else ""
        self._logger.log(level, "%s: %s%s", reason, detail, more, extra={"event": reason, "reason": reason, **context})
        return True


def uplinks_of(
    packets: Sequence[RxPacket],
    gateway_eui: str,
    received_at: datetime,
    frames: FrameOpener,
    causes: CauseLog,
    ignored: Counter[str],
) -> list[Uplink]:
    """The application uplinks in a PUSH_DATA's packets; every packet that yields none is counted by reason."""
    uplinks: list[Uplink] = []
    for packet in packets:
        context: dict[str, Any] = {"gateway_eui": gateway_eui}
        if not packet.crc_ok:
            causes.note(CRC_ERROR, f"packet with a bad or missing CRC from gateway {gateway_eui}", **context)
            continue
        opened = frames.open(packet.phy_payload)
        if isinstance(opened, FrameRefusal):
            if opened.dev_addr is not None:
                context["dev_addr"] = f"{opened.dev_addr:08x}"
            if opened.dev_eui is not None:
                context["dev_eui"] = opened.dev_eui
            if opened.f_cnt is not None:
                context["f_cnt"] = opened.f_cnt
            if opened.reason in BENIGN_REASONS:
                ignored[opened.reason] += 1
                log.debug("frame ignored (%s): %s", opened.reason, opened.detail, extra=context)
            else:
                where = " ".join(f"{key}={value}" for key, value in context.items())
                causes.note(opened.reason, f"{opened.detail} ({where})", **context)
            continue
        if not opened.is_application_data:
            ignored[NO_APP_PAYLOAD] += 1
            continue
        try:
            rx = RxInfo(
                gateway_id=gateway_eui,
                rssi=packet.rssi,
                snr=packet.snr if packet.snr is not None else 0.0,  # FSK has no SNR
                frequency_hz=packet.frequency_hz,
                data_rate=packet.data_rate,
            )
            uplinks.append(
                Uplink(
                    dev_eui=opened.dev_eui,
                    f_port=opened.f_port,
                    f_cnt=opened.f_cnt,
                    payload=opened.payload,
                    received_at=packet.time or received_at,
                    rx=(rx,),
                    source="semtech_udp",
                )
            )
        except ValidationError as error:
            causes.note(MALFORMED_FRAME, f"uplink not representable: {error.errors()[0]['msg']}", **context)
    return uplinks


@dataclass
class _Push:
    datagram: Datagram
    address: tuple[str, int]
    received_at: datetime


class _Relay(asyncio.DatagramProtocol):
    """One socket from Flurfunk to one upstream on behalf of one forwarder address."""

    MAX_PENDING = 256

    def __init__(self, source: SemtechUdpSource, link: _ForwarderLink, upstream: Upstream) -> None:
        self.source = source
        self.link = link
        self.upstream = upstream
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.connecting = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.closed:
            transport.close()
            return
        for data in self.pending:
            self.transport.sendto(data)  # type: ignore[union-attr]
        self.pending.clear()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.source._from_upstream(self.link, self.upstream, data)

    def error_received(self, exc: Exception) -> None:
        self.source._causes.note(
            UPSTREAM_UNREACHABLE, f"upstream {self.upstream.host}:{self.upstream.port}: {exc}", logging.WARNING
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.sendto(data)
            return
        if len(self.pending) >= self.MAX_PENDING:
            self.source._causes.note(UPSTREAM_QUEUE_FULL, f"upstream {self.upstream.host}:{self.upstream.port}")
            return
        self.pending.append(data)
        if not self.connecting:
            self.source._open_relay(self)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass
class _ForwarderLink:
    """A forwarder's socket address (its uplink and downlink sockets have one each) and its relays upstream."""

    address: tuple[str, int]
    last_used: float
    relays: list[_Relay] = field(default_factory=list)
    pull_tokens_relayed: OrderedDict[int, None] = field(default_factory=OrderedDict)


class SemtechUdpSource:
    """Listens for packet forwarders on UDP, hands their uplinks to `handler`, relays everything upstream.

    Use as `async with SemtechUdpSource(config, frames, handler) as source:`; `source.address` is the bound
    address (port 0 in the config picks a free one), `stats()` and `gateways()` give counters and forwarder health.
    """

    def __init__(
        self,
        config: SemtechUdpConfig,
        frames: FrameOpener,
        handler: UplinkHandler,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self._frames = frames
        self._handler = handler
        self._clock = clock
        self._causes = CauseLog(log, config.log_interval_s)
        self._ignored: Counter[str] = Counter()
        self._stats = SemtechUdpStats()
        self._counts: Counter[str] = Counter()
        self._gateways: dict[str, GatewayHealth] = {}
        self._links: OrderedDict[tuple[str, int], _ForwarderLink] = OrderedDict()
        self._transport: asyncio.DatagramTransport | None = None
        self._queue: asyncio.Queue[_Push] = asyncio.Queue(maxsize=config.max_queued_datagrams)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _ServerProtocol(self), local_addr=(self.config.host, self.config.port)
        )
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and self.config.receive_buffer_bytes > 0:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.receive_buffer_bytes)
        self._worker = asyncio.create_task(self._handle_pushes_forever(), name="semtech-udp-worker")
        self._sweeper = asyncio.create_task(self._close_idle_links_forever(), name="semtech-udp-sweeper")
        log.info(
            "semtech udp source listening on %s:%d, upstreams %s",
            *self.address,
            ", ".join(f"{u.host}:{u.port}" for u in self.config.upstreams) or "none",
            extra={"event": "semtech_udp_started"},
        )

    async def stop(self) -> None:
        """Stop listening; PUSH_DATA still queued are not acked (the forwarder may send them again)."""
        for task in (self._worker, self._sweeper, *self._tasks):
            if task is not None:
                task.cancel()
        for task in (self._worker, self._sweeper, *self._tasks):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for link in self._links.values():
            for relay in link.relays:
                relay.close()
        self._links.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def run(self) -> None:
        """Serve until cancelled (the service's source task), then stop."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> SemtechUdpSource:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("the source is not started")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    # --- what the service reads -----------------------------------------------------------------------------------

    def stats(self) -> SemtechUdpStats:
        return replace(
            self._stats,
            **self._counts,
            queued=self._queue.qsize(),
            dropped=dict(self._causes.counts),
            ignored=dict(self._ignored),
        )

    def gateways(self) -> dict[str, GatewayHealth]:
        return dict(self._gateways)

    def send_downlink(self, gateway_eui: str, txpk: dict[str, Any]) -> int:
        """Send a PULL_RESP to the forwarder of `gateway_eui` (to where its last PULL_DATA came from); the token."""
        health = self._gateways.get(gateway_eui.lower())
        if health is None or health.pull_address is None or self._transport is None:
            raise LookupError(f"gateway {gateway_eui} has sent no PULL_DATA: no downlink path known")
        token = secrets.randbelow(0x10000)
        self._transport.sendto(pull_resp(token, txpk), health.pull_address)
        return token

    # --- from the forwarder ---------------------------------------------------------------------------------------

    def _datagram_received(self, data: bytes, address: tuple[str, int]) -> None:
        self._counts["datagrams"] += 1
        address = (str(address[0]), int(address[1]))
        try:
            datagram = read_datagram(data)
        except GwmpError as error:  # not a GWMP frame at all: nobody upstream could use it either
            self._causes.note(error.reason, f"{error.detail} from {address[0]}:{address[1]}", forwarder=address)
            return
        if datagram.type not in FROM_FORWARDER:
            self._causes.note(UNEXPECTED_TYPE, f"{datagram.type.name} from a forwarder at {address}", forwarder=address)
            return
        self._forward_upstream(address, data)
        if len(data) > self.config.max_datagram_bytes:
            self._causes.note(OVERSIZED, f"{len(data)} bytes from {address}, relayed but not read", forwarder=address)
            return
        if datagram.version != PROTOCOL_VERSION:
            self._causes.note(WRONG_VERSION, f"version {datagram.version} from {address}, relayed but not read")
            return
        now = self._clock()
        eui = datagram.gateway_eui or ""
        health = self._gateways.get(eui) or GatewayHealth(gateway_eui=eui)
        if datagram.type is PacketType.PUSH_DATA:
            self._counts["push_data"] += 1
            pushes = health.push_data + 1
            self._keep_health(replace(health, push_address=address, last_push_at=now, push_data=pushes))
            try:
                self._queue.put_nowait(_Push(datagram, address, now))
            except asyncio.QueueFull:
                self._causes.note(OVERLOADED, f"PUSH_DATA from gateway {eui} not acked: queue full", gateway_eui=eui)
        elif datagram.type is PacketType.PULL_DATA:
            self._counts["pull_data"] += 1
            self._keep_health(replace(health, pull_address=address, last_pull_at=now))
            if not self.config.upstreams and self._transport is not None:
                self._transport.sendto(pull_ack(datagram.token), address)
                self._counts["pull_acks"] += 1
        else:
            self._counts["tx_ack"] += 1

    def _keep_health(self, health: GatewayHealth) -> None:
        """Remember a forwarder's health; beyond `max_forwarders` EUIs the least recently heard one is forgotten."""
        self._gateways.pop(health.gateway_eui, None)
        self._gateways[health.gateway_eui] = health  # dicts keep insertion order: the last heard goes last
        while len(self._gateways) > self.config.max_forwarders:
            del self._gateways[next(iter(self._gateways))]

    async def _handle_pushes_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.config.max_batch_datagrams and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._handle_pushes(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not end the worker: the next datagrams still deserve a try
                self._frames.rollback()
                log.exception("semtech udp: handling %d PUSH_DATA failed", len(batch))

    async def _handle_pushes(self, batch: list[_Push]) -> None:
        """Read, open and hand over the uplinks of several PUSH_DATA; ack each only once all are durable."""
        uplinks: list[Uplink] = []
        ackable: list[_Push] = []
        for push in batch:
            eui = push.datagram.gateway_eui or ""
            try:
                content: PushData = parse_push_data(push.datagram.body)
            except GwmpError as error:
                self._causes.note(error.reason, f"PUSH_DATA from gateway {eui}: {error.detail}", gateway_eui=eui)
                continue
            for reason, detail in content.errors:
                self._causes.note(reason, f"PUSH_DATA from gateway {eui}: {detail}", gateway_eui=eui)
            health = self._gateways.get(eui) or GatewayHealth(gateway_eui=eui)
            updates: dict[str, Any] = {"rxpk": health.rxpk + len(content.packets)}
            if content.stat is not None:
                updates.update(stat=content.stat, stat_at=push.received_at)
            self._keep_health(replace(health, **updates))
            self._counts["rxpk"] += len(content.packets)
            uplinks += uplinks_of(content.packets, eui, push.received_at, self._frames, self._causes, self._ignored)
            ackable.append(push)
        if uplinks:
            try:
                await self._handler(uplinks)
            except Exception as error:
                self._frames.rollback()
                for push in ackable:
                    self._causes.note(
                        NOT_DURABLE,
                        f"{len(uplinks)} uplinks not stored ({type(error).__name__}: {error}); no PUSH_ACK",
                        logging.ERROR,
                        gateway_eui=push.datagram.gateway_eui,
                    )
                return
            self._counts["uplinks"] += len(uplinks)
        try:
            self._frames.commit()
        except Exception:  # the uplinks are durable: ack them; a counter lost on disk only lets a replay in twice
            log.exception("semtech udp: frame counters not persisted")
        if self._transport is None:
            return
        for push in ackable:
            self._transport.sendto(push_ack(push.datagram.token), push.address)
        self._counts["push_acks"] += len(ackable)

    # --- the multiplexer ------------------------------------------------------------------------------------------

    def _forward_upstream(self, address: tuple[str, int], data: bytes) -> None:
        if not self.config.upstreams:
            return
        link = self._links.get(address)
        now = time.monotonic()
        if link is None:
            while len(self._links) >= self.config.max_forwarders:
                _, oldest = self._links.popitem(last=False)
                for relay in oldest.relays:
                    relay.close()
            link = _ForwarderLink(address=address, last_used=now)
            link.relays = [_Relay(self, link, upstream) for upstream in self.config.upstreams]
            self._links[address] = link
        else:
            link.last_used = now
            self._links.move_to_end(address)
        for relay in link.relays:
            relay.send(data)
        self._counts["forwarded_upstream"] += len(link.relays)

    def _open_relay(self, relay: _Relay) -> None:
        relay.connecting = True
        task = asyncio.get_running_loop().create_task(self._connect(relay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, relay: _Relay) -> None:
        upstream = relay.upstream
        try:
            await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: relay, remote_addr=(upstream.host, upstream.port)
            )
        except OSError as error:
            self._causes.note(UPSTREAM_UNREACHABLE, f"upstream {upstream.host}:{upstream.port}: {error}")
            relay.pending.clear()
        finally:
            relay.connecting = False

    def _from_upstream(self, link: _ForwarderLink, upstream: Upstream, data: bytes) -> None:
        try:
            datagram = read_datagram(data)
        except GwmpError as error:
            self._causes.note(UPSTREAM_MALFORMED, f"from upstream {upstream.host}:{upstream.port}: {error}")
            return
        if datagram.type is PacketType.PUSH_ACK:
            self._counts["upstream_push_acks_dropped"] += 1  # Flurfunk acks itself, once the data is durable
            return
        if datagram.type is PacketType.PULL_ACK:
            if datagram.token in link.pull_tokens_relayed:
                return  # another upstream answered this PULL_DATA already
            link.pull_tokens_relayed[datagram.token] = None
            while len(link.pull_tokens_relayed) > 16:
                link.pull_tokens_relayed.popitem(last=False)
        elif datagram.type is not PacketType.PULL_RESP:
            self._causes.note(UPSTREAM_UNEXPECTED, f"{datagram.type.name} from upstream {upstream.host}")
            return
        if self._transport is not None:
            self._transport.sendto(data, link.address)
            self._counts["relayed_to_forwarder"] += 1

    async def _close_idle_links_forever(self) -> None:
        interval = max(1.0, min(60.0, self.config.forwarder_idle_s / 4))
        while True:
            await asyncio.sleep(interval)
            deadline = time.monotonic() - self.config.forwarder_idle_s
            for address in [a for a, link in self._links.items() if link.last_used < deadline]:
                for relay in self._links.pop(address).relays:
                    relay.close()


class _ServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, source: SemtechUdpSource) -> None:
        self.source = source

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.source._datagram_received(data, addr)
        except Exception:  # never let one datagram take the listener down
            log.exception("semtech udp: datagram from %s not handled", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("semtech udp socket error: %s", exc)


def semtech_udp_view(source: SemtechUdpSource) -> dict[str, Any]:
    """The source's counters and forwarders as plain JSON-ready data (times as epoch seconds), for health."""
    stats = source.stats()
    view: dict[str, Any] = {name: value for name, value in vars(stats).items() if not isinstance(value, dict)}
    view["dropped"] = dict(stats.dropped)
    view["ignored"] = dict(stats.ignored)
    with contextlib.suppress(RuntimeError):
        view["listening"] = "{}:{}".format(*source.address)
    forwarders = []
    for health in source.gateways().values():
        forwarders.append(
            {
                "gateway_eui": health.gateway_eui,
                "push_data": health.push_data,
                "rxpk": health.rxpk,
                "last_push_at": health.last_push_at.timestamp() if health.last_push_at else None,
                "last_pull_at": health.last_pull_at.timestamp() if health.last_pull_at else None,
                "stat_at": health.stat_at.timestamp() if health.stat_at else None,
                "stat": {k: v for k, v in vars(health.stat).items() if v is not None} if health.stat else None,
            }
        )
    view["forwarders"] = sorted(forwarders, key=lambda f: f["gateway_eui"])
    return view
