"""LNS MQTT sources: ChirpStack v4 and The Things Stack v3 uplink events over aiomqtt, turned into Uplinks.

Parsing is pure (`parse_chirpstack_up`, `parse_tts_up`); `MqttSource` is the thin async shell around it: QoS 1,
a persistent session under a fixed client id, a new client per connection attempt with backoff and jitter, and
the MQTT PUBACK sent only after the uplinks are durable in the buffer (paho's manual acks; see `enable_manual_acks`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import ValidationError

from flurfunk.contracts import RxInfo, Uplink, utc_now
from gateway.sync import Backoff

if TYPE_CHECKING:
    import aiomqtt
    import paho.mqtt.client as paho

log = logging.getLogger(__name__)

Flavour = Literal["chirpstack", "tts"]

CHIRPSTACK_UP_TOPIC = "application/+/device/+/event/up"
TTS_UP_TOPIC = "v3/+/devices/+/up"
MAX_EVENT_BYTES = 64 * 1024
MAX_RX_ENTRIES = 64
# How many queued messages one durable commit takes at most: bounds the latency of the first one in the group.
MAX_MESSAGES_PER_COMMIT = 500

# Reasons an event is refused (the metric label and the log's `reason`).
TOO_LARGE = "mqtt_too_large"
NOT_JSON = "mqtt_not_json"
BAD_FIELD = "mqtt_bad_field"
BAD_BASE64 = "mqtt_bad_base64"
NO_APPLICATION_PAYLOAD = "mqtt_no_application_payload"


class EventError(ValueError):
    """An LNS event that cannot become an Uplink; `reason` is a metric label, the message names the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# -- pure parsing ----------------------------------------------------------------------------------------------


def _load_object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_EVENT_BYTES:
        raise EventError(TOO_LARGE, f"event is {len(body)} bytes, more than the limit of {MAX_EVENT_BYTES}")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise EventError(NOT_JSON, f"not JSON ({error})") from error
    if not isinstance(document, dict):
        raise EventError(NOT_JSON, f"expected a JSON object, got {type(document).__name__}")
    return document


def _get(document: Mapping[str, Any], path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """The value at dotted `path`, checked to be of `kind`; `default` when absent (LNSs omit zero values)."""
    value: Any = document
    walked = []
    for key in path.split("."):
        walked.append(key)
        if not isinstance(value, Mapping):
            raise EventError(BAD_FIELD, f"{'.'.join(walked[:-1])} is not an object")
        if key not in value or value[key] is None:
            return default
        value = value[key]
    # bool is an int in Python; JSON true is never a number here
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise EventError(BAD_FIELD, f"{path} is a boolean")
    if not isinstance(value, kind):
        raise EventError(BAD_FIELD, f"{path} has the wrong type ({type(value).__name__})")
    return value


def _integer(document: Mapping[str, Any], path: str, low: int, high: int, default: int | None = None) -> int | None:
    value = _get(document, path, (int, str), default)
    if value is None:
        return None
    if isinstance(value, str):  # The Things Stack writes some 64-bit-ish numbers as strings
        if not value.isdigit() or len(value) > 12:
            raise EventError(BAD_FIELD, f"{path} is not a whole number: {value[:40]!r}")
        value = int(value)
    if not low <= value <= high:
        raise EventError(BAD_FIELD, f"{path} is {value}, outside {low}..{high}")
    return int(value)


def _number(document: Mapping[str, Any], path: str, default: float = 0.0) -> float:
    value = _get(document, path, (int, float), default)
    return float(value)


def _payload(document: Mapping[str, Any], path: str) -> bytes:
    text = _get(document, path, str, "")
    if len(text) > 400:  # 255 bytes are 340 base64 characters
        raise EventError(BAD_BASE64, f"{path} is {len(text)} characters, longer than any LoRaWAN payload")
    try:
        # Padding is added back: some forwarders send unpadded base64, which is still unambiguous.
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise EventError(BAD_BASE64, f"{path} is not base64 ({error})") from error


def _time(document: Mapping[str, Any], path: str, now: datetime) -> datetime:
    text = _get(document, path, str, None)
    if text is None:
        return now
    try:
        moment = datetime.fromisoformat(text[:64])
    except ValueError as error:
        raise EventError(BAD_FIELD, f"{path} is not an ISO 8601 time: {text[:40]!r}") from error
    if moment.tzinfo is None:
        raise EventError(BAD_FIELD, f"{path} has no time zone: {text[:40]!r}")
    return moment


def _data_rate(spreading_factor: int | None, bandwidth_hz: int | None) -> str | None:
    if spreading_factor is None or bandwidth_hz is None:
        return None
    return f"SF{spreading_factor}BW{bandwidth_hz // 1000}"


def _rx_list(document: Mapping[str, Any], path: str) -> list[Mapping[str, Any]]:
    entries = _get(document, path, list, [])
    if len(entries) > MAX_RX_ENTRIES:
        raise EventError(BAD_FIELD, f"{path} has {len(entries)} entries, more than {MAX_RX_ENTRIES}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise EventError(BAD_FIELD, f"{path}[{index}] is not an object")
    return entries


def _uplink(fields: dict[str, Any], where: str) -> Uplink:
    try:
        return Uplink.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise EventError(BAD_FIELD, f"{where}: {location}: {first['msg']}") from error


def _rx_infos(candidates: list[dict[str, Any]], where: str) -> tuple[RxInfo, ...]:
    infos = []
    for index, candidate in enumerate(candidates):
        try:
            infos.append(RxInfo.model_validate(candidate))
        except ValidationError as error:
            first = error.errors()[0]
            raise EventError(BAD_FIELD, f"{where}[{index}].{first['loc'][0]}: {first['msg']}") from error
    return tuple(infos)


def _application_port(f_port: int | None) -> int:
    if not f_port:
        raise EventError(NO_APPLICATION_PAYLOAD, "no fPort (a MAC-only frame): nothing to decode")
    return f_port


def parse_chirpstack_up(body: bytes, now: datetime | None = None) -> Uplink:
    """A ChirpStack v4 `event/up` JSON (camelCase, zero values omitted) as an Uplink; raises EventError."""
    document = _load_object(body)
    now = now or utc_now()
    dev_eui = _get(document, "deviceInfo.devEui", str)
    if dev_eui is None:
        raise EventError(BAD_FIELD, "deviceInfo.devEui is missing")
    frequency = _integer(document, "txInfo.frequency", 0, 10**10)
    data_rate = _data_rate(
        _integer(document, "txInfo.modulation.lora.spreadingFactor", 5, 12),
        _integer(document, "txInfo.modulation.lora.bandwidth", 1, 10**7),
    )
    rx: list[dict[str, Any]] = []
    for entry in _rx_list(document, "rxInfo"):
        gateway_id = _get(entry, "gatewayId", str)
        # Without a gateway id, frequency or data rate the reception says nothing we could keep.
        if gateway_id is not None and frequency and data_rate:
            rx.append(
                {
                    "gateway_id": gateway_id,
                    "rssi": int(_number(entry, "rssi")),
                    "snr": _number(entry, "snr"),
                    "frequency_hz": frequency,
                    "data_rate": data_rate,
                }
            )
    return _uplink(
        {
            "dev_eui": dev_eui,
            "f_port": _application_port(_integer(document, "fPort", 0, 255, default=0)),
            "f_cnt": _integer(document, "fCnt", 0, 2**32 - 1, default=0),
            "payload": _payload(document, "data"),
            "received_at": _time(document, "time", now),
            "rx": _rx_infos(rx, "rxInfo"),
            "source": "chirpstack",
        },
        "ChirpStack event",
    )


def parse_tts_up(body: bytes, now: datetime | None = None) -> Uplink:
    """A The Things Stack v3 `up` JSON (snake_case) as an Uplink; raises EventError."""
    document = _load_object(body)
    now = now or utc_now()
    dev_eui = _get(document, "end_device_ids.dev_eui", str)
    if dev_eui is None:
        raise EventError(BAD_FIELD, "end_device_ids.dev_eui is missing")
    if _get(document, "uplink_message", Mapping) is None:
        raise EventError(BAD_FIELD, "uplink_message is missing")
    frequency = _integer(document, "uplink_message.settings.frequency", 0, 10**10)
    data_rate = _data_rate(
        _integer(document, "uplink_message.settings.data_rate.lora.spreading_factor", 5, 12),
        _integer(document, "uplink_message.settings.data_rate.lora.bandwidth", 1, 10**7),
    )
    rx: list[dict[str, Any]] = []
    for entry in _rx_list(document, "uplink_message.rx_metadata"):
        gateway_eui = _get(entry, "gateway_ids.eui", str)
        # Packet Broker receptions carry no gateway EUI; they are not ours to report.
        if gateway_eui is not None and frequency and data_rate:
            rx.append(
                {
                    "gateway_id": gateway_eui,
                    "rssi": int(_number(entry, "rssi", _number(entry, "channel_rssi"))),
                    "snr": _number(entry, "snr"),
                    "frequency_hz": frequency,
                    "data_rate": data_rate,
                }
            )
    received_at = _get(document, "received_at", str)
    return _uplink(
        {
            "dev_eui": dev_eui,
            "f_port": _application_port(_integer(document, "uplink_message.f_port", 0, 255, default=0)),
            "f_cnt": _integer(document, "uplink_message.f_cnt", 0, 2**32 - 1, default=0),
            "payload": _payload(document, "uplink_message.frm_payload"),
            "received_at": _time(document, "received_at" if received_at else "uplink_message.received_at", now),
            "rx": _rx_infos(rx, "uplink_message.rx_metadata"),
            "source": "tts",
        },
        "The Things Stack event",
    )


PARSERS: dict[Flavour, Callable[[bytes, datetime | None], Uplink]] = {
    "chirpstack": parse_chirpstack_up,
    "tts": parse_tts_up,
}
DEFAULT_TOPICS: dict[Flavour, str] = {"chirpstack": CHIRPSTACK_UP_TOPIC, "tts": TTS_UP_TOPIC}


# -- the async shell ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MqttSourceSettings:
    """Where an LNS publishes its uplink events and how to subscribe durably."""

    flavour: Flavour
    host: str
    port: int = 1883
    topic: str = ""  # empty: the flavour's default topic filter
    client_id: str = "flurfunk-gateway"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    keepalive_s: int = 30
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0

    @property
    def topic_filter(self) -> str:
        return self.topic or DEFAULT_TOPICS[self.flavour]


Deliver = Callable[[Sequence[Uplink]], Awaitable[object]]


# -- manual acknowledgements: the one place that reaches into aiomqtt -------------------------------------------------


def _paho_client(client: aiomqtt.Client) -> paho.Client:
    """The paho-mqtt client inside an aiomqtt client.

    aiomqtt (up to 2.5.1) has no public switch for manual acks (empicano/aiomqtt issue #345; PR #346 is still open),
    while paho-mqtt 2.x has them (`manual_ack_set`, `ack`). aiomqtt keeps its paho client in the private attribute
    `_client`; nothing else in Flurfunk touches it. tests/test_gateway_mqtt_ack.py checks this against the real
    Mosquitto, and pyproject.toml pins aiomqtt to the releases it was checked with.
    """
    inner = getattr(client, "_client", None)
    if not callable(getattr(inner, "manual_ack_set", None)) or not callable(getattr(inner, "ack", None)):
        import aiomqtt

        raise RuntimeError(
            f"aiomqtt {aiomqtt.__version__} no longer keeps a paho-mqtt client with manual acks in `_client`: "
            "the gateway cannot hold back PUBACKs until uplinks are durable (see gateway/sources/mqtt.py)"
        )
    return cast("paho.Client", inner)


def enable_manual_acks(client: aiomqtt.Client) -> None:
    """Leave every PUBACK to `acknowledge`; call before connecting, as a persistent session redelivers right
    after CONNACK and those messages must wait too."""
    _paho_client(client).manual_ack_set(True)


def acknowledge(client: aiomqtt.Client, messages: Sequence[aiomqtt.Message]) -> None:
    """Send the PUBACK (QoS 1) or PUBREC (QoS 2) for `messages`; QoS 0 messages need none."""
    inner = _paho_client(client)
    for message in messages:
        if message.qos > 0:
            inner.ack(message.mid, message.qos)


class RefusalLog:
    """Counts refused input by reason and logs the first of each cause only, so a flood cannot fill the disk."""

    def __init__(self, logger: logging.Logger, source: str) -> None:
        self._log = logger
        self._source = source
        self.counts: Counter[str] = Counter()

    def refused(self, reason: str, detail: str, **context: object) -> None:
        self.counts[reason] += 1
        if self.counts[reason] == 1:
            self._log.warning(
                "%s input refused reason=%s: %s (further ones are only counted)",
                self._source,
                reason,
                detail,
                extra={"event": "input_refused", "source": self._source, "reason": reason, **context},
            )


class MqttSource:
    """Subscribes to an LNS's uplink events and hands them to `deliver`, which returns once they are durable.

    The PUBACK for a QoS 1 message goes out only after `deliver` returned (see `enable_manual_acks`). A crash before
    that leaves the message unacknowledged in the broker's persistent session, which sends it again on the next
    connection; the pipeline's point identity makes the second copy harmless. The Things Stack's own broker offers
    QoS 0 only: what it sends while the gateway is away is lost there, not here.
    """

    def __init__(
        self,
        settings: MqttSourceSettings,
        deliver: Deliver,
        *,
        on_received: Callable[[int], None] | None = None,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.settings = settings
        self._deliver = deliver
        self._parse = PARSERS[settings.flavour]
        self._on_received = on_received
        self.refusals = refusals or RefusalLog(log, f"mqtt-{settings.flavour}")
        self.connected = False
        self.connections = 0

    def _client(self) -> Any:
        import aiomqtt

        settings = self.settings
        client = aiomqtt.Client(
            settings.host,
            settings.port,
            identifier=settings.client_id,
            username=settings.username,
            password=settings.password,
            keepalive=settings.keepalive_s,
            clean_session=False,  # the broker keeps our subscription and unacknowledged messages while we are away
            tls_context=ssl.create_default_context() if settings.tls else None,
            timeout=10,
        )
        enable_manual_acks(client)
        return client

    async def run(self) -> None:
        """Receive until cancelled; reconnect after any broker or network failure with backoff and jitter."""
        import aiomqtt

        backoff = Backoff(self.settings.backoff_base_s, self.settings.backoff_cap_s)
        where = f"{self.settings.host}:{self.settings.port}"
        while True:
            try:
                async with self._client() as client:
                    await client.subscribe(self.settings.topic_filter, qos=1)
                    self.connected = True
                    self.connections += 1
                    log.info(
                        "mqtt connected source=%s broker=%s topic=%s",
                        self.settings.flavour,
                        where,
                        self.settings.topic_filter,
                        extra={"event": "mqtt_connected", "source": self.settings.flavour, "broker": where},
                    )
                    backoff.reset()
                    await self._receive(client)
            except aiomqtt.MqttError as error:
                self.connected = False
                delay = backoff.next_delay()
                log.warning(
                    "mqtt connection lost source=%s broker=%s: %s; retrying in %.1f s",
                    self.settings.flavour,
                    where,
                    error,
                    delay,
                    extra={"event": "mqtt_disconnected", "source": self.settings.flavour, "broker": where},
                )
                await asyncio.sleep(delay)
            finally:
                self.connected = False

    async def _receive(self, client: Any) -> None:
        messages = client.messages
        while True:
            group = [await anext(messages)]
            # Whatever else already waits joins this commit: one fsync for many messages.
            while len(messages) > 0 and len(group) < MAX_MESSAGES_PER_COMMIT:
                group.append(await anext(messages))
            uplinks = []
            for message in group:
                uplink = self._uplink_of(message)
                if uplink is not None:
                    uplinks.append(uplink)
            if self._on_received is not None:
                self._on_received(len(group))
            if uplinks:
                await self._deliver(uplinks)  # raises if the buffer failed: nothing is acknowledged then
            acknowledge(client, group)

    def _uplink_of(self, message: Any) -> Uplink | None:
        payload = message.payload
        body = payload if isinstance(payload, bytes | bytearray) else str(payload or "").encode()
        try:
            return self._parse(bytes(body), None)
        except EventError as error:
            self.refusals.refused(error.reason, error.detail, topic=str(message.topic)[:200])
            return None
