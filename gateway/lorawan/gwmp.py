"""The Semtech UDP packet-forwarder protocol (GWMP v2): read and build datagrams; parse `rxpk` and `stat`.

Pure: bytes in, packets or a `GwmpError` out (its `reason` is a counter name). Layout per the packet forwarder's
PROTOCOL.TXT: byte 0 version, bytes 1–2 token, byte 3 type, then the gateway EUI (8 bytes) for PUSH_DATA,
PULL_DATA and TX_ACK, then JSON for PUSH_DATA, PULL_RESP and TX_ACK.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from gateway.lorawan.errors import GwmpError

PROTOCOL_VERSION = 2
KNOWN_VERSIONS = frozenset({1, 2})  # version 1 frames are relayed upstream untouched, not parsed
MAX_DATAGRAM_BYTES = 65_507  # the largest UDP payload over IPv4; the sx1302 forwarder may send up to that
MAX_RXPK_PER_DATAGRAM = 256
MAX_RXPK_DATA_CHARS = 344  # base64 of a 255-byte PHYPayload
MAX_TIME_CHARS = 40

TOO_SHORT = "too_short"
WRONG_VERSION = "wrong_version"
UNKNOWN_TYPE = "unknown_type"
OVERSIZED = "oversized"
BAD_JSON = "bad_json"
BAD_RXPK = "bad_rxpk"
BAD_BASE64 = "bad_base64"
BAD_STAT = "bad_stat"
DATAGRAM_REASONS = (TOO_SHORT, WRONG_VERSION, UNKNOWN_TYPE, OVERSIZED, BAD_JSON, BAD_RXPK, BAD_BASE64, BAD_STAT)


class PacketType(IntEnum):
    PUSH_DATA = 0
    PUSH_ACK = 1
    PULL_DATA = 2
    PULL_RESP = 3
    PULL_ACK = 4
    TX_ACK = 5


FROM_FORWARDER = frozenset({PacketType.PUSH_DATA, PacketType.PULL_DATA, PacketType.TX_ACK})
_WITH_EUI = frozenset({PacketType.PUSH_DATA, PacketType.PULL_DATA, PacketType.TX_ACK})
_HEADER_BYTES = 4
_EUI_BYTES = 8


@dataclass(frozen=True)
class Datagram:
    """A GWMP frame: its header fields and what follows (JSON for PUSH_DATA, PULL_RESP and TX_ACK)."""

    version: int
    token: int
    type: PacketType
    gateway_eui: str | None  # 16 lowercase hex digits, for the types that carry one
    body: bytes


@dataclass(frozen=True)
class RxPacket:
    """One `rxpk`: a received LoRa packet with its radio metadata."""

    phy_payload: bytes
    time: datetime | None  # from the gateway (GPS) if it sent a usable `time`
    tmst: int | None  # the concentrator's microsecond counter
    frequency_hz: int
    rssi: int
    snr: float | None
    data_rate: str  # e.g. "SF7BW125", or "FSK50000"
    crc_ok: bool
    channel: int | None = None
    rf_chain: int | None = None
    coding_rate: str | None = None


@dataclass(frozen=True)
class GatewayStat:
    """A `stat` object: the forwarder's own health report (all fields optional, as forwarders differ)."""

    time: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude_m: int | None = None
    rx_received: int | None = None  # rxnb
    rx_crc_ok: int | None = None  # rxok
    rx_forwarded: int | None = None  # rxfw
    ack_ratio_pct: float | None = None  # ackr
    downlinks_received: int | None = None  # dwnb
    packets_emitted: int | None = None  # txnb


@dataclass(frozen=True)
class PushData:
    """The content of a PUSH_DATA: packets, per-packet errors (reason, detail) and an optional stat."""

    packets: tuple[RxPacket, ...]
    errors: tuple[tuple[str, str], ...]
    stat: GatewayStat | None


def read_datagram(data: bytes, max_bytes: int = MAX_DATAGRAM_BYTES) -> Datagram:
    """Check the header (version, type, length) and split the datagram; raises GwmpError naming what is wrong."""
    if len(data) > max_bytes:
        raise GwmpError(OVERSIZED, f"{len(data)} bytes, more than {max_bytes}")
    if len(data) < _HEADER_BYTES:
        raise GwmpError(TOO_SHORT, f"{len(data)} bytes, a GWMP header has {_HEADER_BYTES}")
    version, type_byte = data[0], data[3]
    if version not in KNOWN_VERSIONS:
        raise GwmpError(WRONG_VERSION, f"protocol version {version}, expected {PROTOCOL_VERSION}")
    try:
        packet_type = PacketType(type_byte)
    except ValueError:
        raise GwmpError(UNKNOWN_TYPE, f"packet type {type_byte}") from None
    token = int.from_bytes(data[1:3], "big")
    if packet_type in _WITH_EUI:
        if len(data) < _HEADER_BYTES + _EUI_BYTES:
            raise GwmpError(TOO_SHORT, f"{packet_type.name} of {len(data)} bytes has no gateway EUI")
        eui = data[_HEADER_BYTES : _HEADER_BYTES + _EUI_BYTES].hex()
        return Datagram(version, token, packet_type, eui, bytes(data[_HEADER_BYTES + _EUI_BYTES :]))
    return Datagram(version, token, packet_type, None, bytes(data[_HEADER_BYTES:]))


def parse_push_data(body: bytes) -> PushData:
    """The rxpk and stat of a PUSH_DATA body; bad JSON raises GwmpError, a bad rxpk is only listed in `errors`."""
    document = _json_object(body)
    packets: list[RxPacket] = []
    errors: list[tuple[str, str]] = []
    raw_packets = document.get("rxpk", [])
    if not isinstance(raw_packets, list):
        errors.append((BAD_RXPK, f"rxpk is a {type(raw_packets).__name__}, not a list"))
        raw_packets = []
    if len(raw_packets) > MAX_RXPK_PER_DATAGRAM:
        errors.append((BAD_RXPK, f"{len(raw_packets)} rxpk, only the first {MAX_RXPK_PER_DATAGRAM} are read"))
    for index, raw in enumerate(raw_packets[:MAX_RXPK_PER_DATAGRAM]):
        try:
            packets.append(parse_rxpk(raw))
        except GwmpError as error:
            errors.append((error.reason, f"rxpk[{index}]: {error.detail}"))
    stat: GatewayStat | None = None
    if "stat" in document:
        try:
            stat = parse_stat(document["stat"])
        except GwmpError as error:
            errors.append((error.reason, error.detail))
    return PushData(tuple(packets), tuple(errors), stat)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise GwmpError(BAD_JSON, f"not JSON ({type(error).__name__})") from None
    if not isinstance(document, dict):
        raise GwmpError(BAD_JSON, f"JSON {type(document).__name__}, expected an object")
    return document


def decode_base64(text: object) -> bytes:
    """Standard base64 with or without padding (the reference forwarder drops it); GwmpError(bad_base64) if not."""
    if not isinstance(text, str):
        raise GwmpError(BAD_BASE64, f"data is a {type(text).__name__}, not a string")
    if len(text) > MAX_RXPK_DATA_CHARS:
        raise GwmpError(BAD_BASE64, f"data of {len(text)} characters, more than a LoRa packet ({MAX_RXPK_DATA_CHARS})")
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1 or len(text) - len(stripped) > 2:
        raise GwmpError(BAD_BASE64, f"data of {len(text)} characters is not base64")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise GwmpError(BAD_BASE64, "data holds characters outside the base64 alphabet") from None


def parse_rxpk(raw: object) -> RxPacket:
    """One rxpk object; GwmpError(bad_rxpk or bad_base64) naming the field that is wrong."""
    if not isinstance(raw, dict):
        raise GwmpError(BAD_RXPK, f"a {type(raw).__name__}, not an object")
    phy_payload = decode_base64(raw.get("data"))
    frequency_mhz = _number(raw, "freq", 100.0, 3000.0, required=True)
    rssi = raw.get("rssi", raw.get("rssic"))  # sx1302 forwarders may report only the channel RSSI
    if isinstance(rssi, bool) or not isinstance(rssi, int | float) or not -200 <= rssi <= 50:
        raise GwmpError(BAD_RXPK, f"rssi {_shown(rssi)} is not a number of dBm in -200..50")
    snr = _number(raw, "lsnr", -40.0, 40.0)
    modulation = raw.get("modu", "LORA")
    datr = raw.get("datr")
    if modulation == "LORA":
        if not isinstance(datr, str) or not 1 <= len(datr) <= 32:
            raise GwmpError(BAD_RXPK, f"datr {_shown(datr)} is not a LoRa data rate like SF7BW125")
        data_rate = datr
    elif modulation == "FSK":
        if isinstance(datr, bool) or not isinstance(datr, int) or not 0 < datr < 10**7:
            raise GwmpError(BAD_RXPK, f"datr {_shown(datr)} is not an FSK bit rate")
        data_rate = f"FSK{datr}"
    else:
        raise GwmpError(BAD_RXPK, f"modu {_shown(modulation)} is neither LORA nor FSK")
    crc = raw.get("stat", 1)
    return RxPacket(
        phy_payload=phy_payload,
        time=_time(raw.get("time")),
        tmst=_integer(raw, "tmst", 0, 2**32 - 1),
        frequency_hz=round(frequency_mhz * 1_000_000),  # type: ignore[operator]
        rssi=round(rssi),
        snr=snr,
        data_rate=data_rate,
        crc_ok=crc == 1 and not isinstance(crc, bool),
        channel=_integer(raw, "chan", 0, 255),
        rf_chain=_integer(raw, "rfch", 0, 255),
        coding_rate=raw["codr"] if isinstance(raw.get("codr"), str) and len(raw["codr"]) <= 8 else None,
    )


def parse_stat(raw: object) -> GatewayStat:
    """A stat object; fields of the wrong type are left out rather than refusing the whole report."""
    if not isinstance(raw, dict):
        raise GwmpError(BAD_STAT, f"stat is a {type(raw).__name__}, not an object")

    def number(name: str) -> float | None:
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return float(value)

    def count(name: str) -> int | None:
        value = raw.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else None

    time_text = raw.get("time")
    altitude = raw.get("alti")
    return GatewayStat(
        time=time_text if isinstance(time_text, str) and len(time_text) <= MAX_TIME_CHARS else None,
        latitude=number("lati"),
        longitude=number("long"),
        altitude_m=altitude if isinstance(altitude, int) and not isinstance(altitude, bool) else None,
        rx_received=count("rxnb"),
        rx_crc_ok=count("rxok"),
        rx_forwarded=count("rxfw"),
        ack_ratio_pct=number("ackr"),
        downlinks_received=count("dwnb"),
        packets_emitted=count("txnb"),
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(raw: dict[str, Any], name: str, low: float, high: float, required: bool = False) -> float | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GwmpError(BAD_RXPK, f"{name} {_shown(value)} is not a number")
    if not low <= value <= high:
        raise GwmpError(BAD_RXPK, f"{name} {value} is outside {low:g}..{high:g}")
    return float(value)


def _integer(raw: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = raw.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def _time(value: object) -> datetime | None:
    """The gateway's `time` (ISO 8601 UTC, e.g. 2024-05-01T10:00:00.000000Z), or None if absent or unusable."""
    if not isinstance(value, str) or len(value) > MAX_TIME_CHARS:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):  # OverflowError: a year-1 or year-9999 time shifted out of range
        return None


# --- building datagrams (the simulator, the multiplexer's own answers) -----------------------------------------


def _header(token: int, packet_type: PacketType) -> bytes:
    if not 0 <= token <= 0xFFFF:
        raise ValueError(f"a token has 16 bits, got {token}")
    return bytes((PROTOCOL_VERSION,)) + token.to_bytes(2, "big") + bytes((packet_type,))


def _eui(gateway_eui: str) -> bytes:
    raw = bytes.fromhex(gateway_eui.replace("-", "").replace(":", ""))
    if len(raw) != _EUI_BYTES:
        raise ValueError(f"a gateway EUI has 8 bytes, got {gateway_eui!r}")
    return raw


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def push_data(token: int, gateway_eui: str, document: dict[str, Any]) -> bytes:
    return _header(token, PacketType.PUSH_DATA) + _eui(gateway_eui) + _json_bytes(document)


def push_ack(token: int) -> bytes:
    return _header(token, PacketType.PUSH_ACK)


def pull_data(token: int, gateway_eui: str) -> bytes:
    return _header(token, PacketType.PULL_DATA) + _eui(gateway_eui)


def pull_ack(token: int) -> bytes:
    return _header(token, PacketType.PULL_ACK)


def pull_resp(token: int, txpk: dict[str, Any]) -> bytes:
    return _header(token, PacketType.PULL_RESP) + _json_bytes({"txpk": txpk})


def tx_ack(token: int, gateway_eui: str, error: str | None = None) -> bytes:
    body = _json_bytes({"txpk_ack": {"error": error}}) if error else b""
    return _header(token, PacketType.TX_ACK) + _eui(gateway_eui) + body


def encode_base64(data: bytes, padded: bool = True) -> str:
    text = base64.b64encode(data).decode()
    return text if padded else text.rstrip("=")


def format_time(moment: datetime) -> str:
    """The rxpk `time` format: compact ISO 8601 in UTC with microseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
