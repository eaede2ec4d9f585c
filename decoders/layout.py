"""The vocabulary payload formats are written in (words, scales, fields, layouts) and the engine that decodes and
encodes payloads with it. A device model is data in this vocabulary: see decoders/models/.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from flurfunk.contracts import Quantity

from .decoded import Decoded, Measurement
from .errors import DecodeError
from .js import js_number, to_fixed

# LoRaWAN application payloads are at most 242 bytes; the Uplink contract allows 255. Anything longer is not an uplink.
MAX_PAYLOAD_BYTES = 255

QuantityValues = Mapping[Quantity, float]
# The encoder's value for something the caller did not give, computed from what it did give.
Derived = float | Callable[[QuantityValues], float]


class Word(Enum):
    """How a raw unsigned integer sits in the payload."""

    U8 = (1, "big")
    U16BE = (2, "big")
    U16LE = (2, "little")

    @property
    def size(self) -> int:
        return self.value[0]

    @property
    def bits(self) -> int:
        return 8 * self.value[0]

    def pack(self, raw: int) -> bytes:
        return raw.to_bytes(self.value[0], self.value[1])

    def unpack(self, chunk: bytes) -> int:
        return int.from_bytes(chunk, self.value[1])


@dataclass(frozen=True)
class Scale:
    """raw word ↔ number: number = (raw - offset) / divisor.

    With `negative_bias`, a raw value with the sign bit set means raw - negative_bias: 1 << bits is two's
    complement; Dragino's LSE01 (codec and manual alike) subtracts 0xFFFF, one less.
    """

    divisor: int = 1
    offset: int = 0
    negative_bias: int | None = None

    def value(self, raw: int, word: Word) -> int | float:
        if self.negative_bias is not None and raw >= 1 << (word.bits - 1):
            raw -= self.negative_bias
        number = raw - self.offset
        return number if self.divisor == 1 else number / self.divisor

    def raw(self, value: float, word: Word, mask: int | None = None) -> int | None:
        """The raw word for `value` (nearest step), or None if the word cannot hold it."""
        steps = value * self.divisor
        if not math.isfinite(steps):
            return None
        raw = round(steps) + self.offset
        if raw < 0 and self.negative_bias is not None:
            raw += self.negative_bias
            if raw < 1 << (word.bits - 1):
                return None
        elif self.negative_bias is not None and raw >= 1 << (word.bits - 1):
            return None  # the sign bit would turn it negative
        top = (1 << word.bits) - 1 if mask is None else mask
        return raw if 0 <= raw <= top else None

    def bounds(self, word: Word, mask: int | None = None) -> tuple[float, float]:
        """The smallest and largest number the word can carry."""
        top = (1 << word.bits) - 1 if mask is None else mask
        if self.negative_bias is None:
            return self.value(0, word), self.value(top, word)
        sign = 1 << (word.bits - 1)
        return self.value(sign, word), self.value(sign - 1, word)


# --- how the vendor codec presents a raw value in its `data` object ---------------------------------------------


@dataclass(frozen=True)
class AsNumber:
    """A JS number: the scaled value."""

    def present(self, spec: Field, raw: int) -> Any:
        return js_number(spec.scale.value(raw, spec.word))


@dataclass(frozen=True)
class AsFixed:
    """A string with `digits` decimals (`value.toFixed(digits)`)."""

    digits: int

    def present(self, spec: Field, raw: int) -> Any:
        return to_fixed(spec.scale.value(raw, spec.word), self.digits)


@dataclass(frozen=True)
class AsLabel:
    """A word from a table, e.g. 0 → "normal"; any other raw value gives `otherwise`."""

    labels: tuple[tuple[int, str], ...]
    otherwise: str

    def present(self, spec: Field, raw: int) -> Any:
        return dict(self.labels).get(raw, self.otherwise)


@dataclass(frozen=True)
class AsDescribed:
    """Decentlab's `{displayName, value, unit}` object around the scaled number."""

    display_name: str
    unit: str | None = None

    def present(self, spec: Field, raw: int) -> Any:
        shown: dict[str, Any] = {"displayName": self.display_name, "value": js_number(spec.scale.value(raw, spec.word))}
        if self.unit is not None:
            shown["unit"] = self.unit
        return shown


Presentation = AsNumber | AsFixed | AsLabel | AsDescribed


# --- what a raw value means for Flurfunk -------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """The contract quantity a field measures."""

    quantity: Quantity
    scale: Scale | None = None  # raw → the quantity's unit; None: the field's own scale
    flag: bool = False  # a state: raw 0 is 0, anything else is 1
    # What is physically possible: the encoder refuses values outside, the decoder warns about them.
    low: float | None = None
    high: float | None = None
    default: Derived | None = None  # the encoder's value when the caller does not give this quantity


@dataclass(frozen=True)
class Field:
    """One value in the payload: the vendor codec's key, how it is stored, shown, and what it measures."""

    name: str
    word: Word
    shown: Presentation = field(default_factory=AsNumber)
    scale: Scale = field(default_factory=Scale)
    measure: Measure | None = None
    mask: int | None = None  # bits of the word that carry the value
    fill: Derived = 0.0  # the encoder's value (in `scale`) for a field that measures no contract quantity

    def measurement(self, raw: int) -> Measurement | None:
        if self.measure is None:
            return None
        if self.measure.flag:
            return Measurement(self.measure.quantity, 1.0 if raw else 0.0)
        return Measurement(self.measure.quantity, float((self.measure.scale or self.scale).value(raw, self.word)))


# --- reading a payload -------------------------------------------------------------------------------------------


class PayloadReader:
    """Bounds-checked access to one payload; every failure is a DecodeError naming the offset."""

    def __init__(self, model_id: str, f_port: int, payload: bytes) -> None:
        self.model_id = model_id
        self.f_port = f_port
        self.payload = payload

    def __len__(self) -> int:
        return len(self.payload)

    def byte(self, offset: int) -> int:
        return self.payload[offset]

    def read(self, spec: Field, offset: int) -> int:
        end = offset + spec.word.size
        if end > len(self.payload):
            raise self.error(
                f"{spec.name} needs {spec.word.size} byte(s), the payload has {len(self.payload)} bytes", offset
            )
        raw = spec.word.unpack(self.payload[offset:end])
        return raw if spec.mask is None else raw & spec.mask

    def error(self, reason: str, offset: int | None = None) -> DecodeError:
        return DecodeError(self.model_id, self.f_port, reason, offset)


@dataclass
class LayoutReading:
    """What a layout found: (field, raw) in the order the vendor codec assigns them, and what looked wrong."""

    values: list[tuple[Field, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Layout(Protocol):
    def fields(self) -> tuple[Field, ...]: ...

    def read(self, reader: PayloadReader) -> LayoutReading: ...

    def write(self, raws: Mapping[str, int]) -> bytes: ...


# --- the layouts -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedLayout:
    """Fields one after another from byte 0 (Dragino style), then bytes the codec does not read."""

    values: tuple[Field, ...]
    trailer: bytes = b""  # what the device sends after the fields; the vendor codec ignores it

    def fields(self) -> tuple[Field, ...]:
        return self.values

    def read(self, reader: PayloadReader) -> LayoutReading:
        found = LayoutReading()
        offset = 0
        for spec in self.values:
            found.values.append((spec, reader.read(spec, offset)))
            offset += spec.word.size
        expected = offset + len(self.trailer)
        if len(reader) > expected:
            found.warnings.append(f"{len(reader) - expected} byte(s) after offset {expected} ignored")
        return found

    def write(self, raws: Mapping[str, int]) -> bytes:
        return b"".join(spec.word.pack(raws[spec.name]) for spec in self.values) + self.trailer


@dataclass(frozen=True)
class Channel:
    """One value of a channel/type TLV payload."""

    channel_id: int
    channel_type: int
    value: Field


@dataclass(frozen=True)
class ChannelLayout:
    """[channel id, channel type, value]… (Milesight style). Like the vendor codec, decoding stops at the first
    channel it does not know; the rest is reported as a warning."""

    channels: tuple[Channel, ...]

    def fields(self) -> tuple[Field, ...]:
        return tuple(channel.value for channel in self.channels)

    def read(self, reader: PayloadReader) -> LayoutReading:
        by_key = {(channel.channel_id, channel.channel_type): channel.value for channel in self.channels}
        found = LayoutReading()
        offset = 0
        while offset < len(reader):
            if offset + 1 == len(reader):
                found.warnings.append(f"1 byte at offset {offset} is no channel header; ignored")
                break
            key = (reader.byte(offset), reader.byte(offset + 1))
            spec = by_key.get(key)
            if spec is None:
                found.warnings.append(
                    f"unknown channel 0x{key[0]:02x} 0x{key[1]:02x} at offset {offset}; "
                    f"{len(reader) - offset} byte(s) from there ignored"
                )
                break
            found.values.append((spec, reader.read(spec, offset + 2)))
            offset += 2 + spec.word.size
        return found

    def write(self, raws: Mapping[str, int]) -> bytes:
        return b"".join(
            bytes((channel.channel_id, channel.channel_type)) + channel.value.word.pack(raws[channel.value.name])
            for channel in self.channels
        )


@dataclass(frozen=True)
class SensorGroup:
    """Decentlab: the 16-bit words one sensor sends when its flag is set, one field per word."""

    values: tuple[Field, ...]


_PROTOCOL_VERSION = Field("protocol_version", Word.U8)
_DEVICE_ID = Field("device_id", Word.U16BE)
_FLAGS = Field("flags", Word.U16BE)


@dataclass(frozen=True)
class FlaggedGroupsLayout:
    """Decentlab: protocol version (1 byte), device id, a flags word (bit i: group i follows), the groups' words."""

    protocol_version: int
    groups: tuple[SensorGroup, ...]
    device_id: int = 0  # what the encoder writes: a virtual device has no serial number

    def fields(self) -> tuple[Field, ...]:
        return tuple(spec for group in self.groups for spec in group.values)

    def read(self, reader: PayloadReader) -> LayoutReading:
        version = reader.read(_PROTOCOL_VERSION, 0)
        if version != self.protocol_version:
            # the vendor codec's own words, so both sides report the same error
            raise reader.error(f"protocol version {version} doesn't match v{self.protocol_version}", 0)
        found = LayoutReading(values=[(_PROTOCOL_VERSION, version), (_DEVICE_ID, reader.read(_DEVICE_ID, 1))])
        flags = reader.read(_FLAGS, 3)
        unknown_groups = flags >> len(self.groups)
        if unknown_groups:
            found.warnings.append(f"flags 0x{flags:04x} announce sensor groups this model does not have; ignored")
        offset = 5
        for index, group in enumerate(self.groups):
            if not flags >> index & 1:
                continue
            for spec in group.values:
                found.values.append((spec, reader.read(spec, offset)))
                offset += spec.word.size
        if len(reader) > offset:
            found.warnings.append(f"{len(reader) - offset} byte(s) after offset {offset} ignored")
        return found

    def write(self, raws: Mapping[str, int]) -> bytes:
        flags = (1 << len(self.groups)) - 1
        header = bytes((self.protocol_version,)) + _DEVICE_ID.word.pack(self.device_id) + _FLAGS.word.pack(flags)
        return header + b"".join(spec.word.pack(raws[spec.name]) for spec in self.fields())


# --- a device model ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceModel:
    """A device's uplink format: the layout, the fPorts, and the vendor codec it must agree with."""

    model_id: str
    layout: FixedLayout | ChannelLayout | FlaggedGroupsLayout
    uplink_port: int  # the fPort the device sends its measurements on
    ports: frozenset[int] | None = None  # fPorts the vendor codec decodes; None: it ignores the fPort
    port_error: str = "unknown FPort"  # the vendor codec's error for any other fPort
    vendor_codec: str = ""  # where the reference codec lives (TTN device repository path)

    @property
    def quantities(self) -> tuple[Quantity, ...]:
        return tuple(spec.measure.quantity for spec in self.layout.fields() if spec.measure is not None)

    def decode(self, f_port: int, payload: bytes) -> Decoded:
        reader = PayloadReader(self.model_id, f_port, bytes(payload))
        if not 1 <= f_port <= 255:
            raise reader.error(f"fPort {f_port} is not an application port (1..255)")
        if len(reader) > MAX_PAYLOAD_BYTES:
            raise reader.error(f"payload of {len(reader)} bytes is longer than {MAX_PAYLOAD_BYTES} bytes")
        if self.ports is not None and f_port not in self.ports:
            raise reader.error(self.port_error)
        found = self.layout.read(reader)
        fields: dict[str, Any] = {}
        latest: dict[str, tuple[Field, int]] = {}
        for spec, raw in found.values:
            fields[spec.name] = spec.shown.present(spec, raw)
            latest[spec.name] = (spec, raw)  # a repeated channel overwrites, as in the vendor codec
        measurements: list[Measurement] = []
        warnings = list(found.warnings)
        for spec, raw in latest.values():
            measurement = spec.measurement(raw)
            if measurement is None:
                continue
            measurements.append(measurement)
            if not _plausible(spec.measure, measurement.value):
                warnings.append(f"{measurement.quantity} {measurement.value:g} is outside {_range_text(spec.measure)}")
        if not reader.payload:
            warnings.append("empty payload")
        return Decoded(self.model_id, f_port, fields, tuple(measurements), tuple(warnings))

    def encode(self, values: QuantityValues) -> tuple[int, bytes]:
        required = [
            spec.measure.quantity
            for spec in self.layout.fields()
            if spec.measure is not None and spec.measure.default is None
        ]
        missing = [quantity.value for quantity in required if values.get(quantity) is None]
        if missing:
            raise ValueError(
                f"{self.model_id}: missing quantity {', '.join(missing)} "
                f"(this model needs {', '.join(quantity.value for quantity in required)})"
            )
        raws = {spec.name: self._encode_field(spec, values) for spec in self.layout.fields()}
        return self.uplink_port, self.layout.write(raws)

    def _encode_field(self, spec: Field, values: QuantityValues) -> int:
        measure = spec.measure
        if measure is None:
            # a filler only has to look plausible: pin it into the word rather than refuse the caller's values
            low, high = spec.scale.bounds(spec.word, spec.mask)
            filler = _derive(spec.fill, values)
            filler = min(max(filler, low), high) if math.isfinite(filler) else min(max(0.0, low), high)
            return spec.scale.raw(filler, spec.word, spec.mask) or 0
        name = measure.quantity.value
        given = values.get(measure.quantity)
        if given is None:
            assert measure.default is not None  # encode() refused the call when a quantity without one is missing
            given = _derive(measure.default, values)
        try:
            value = float(given)
        except (TypeError, ValueError):
            raise ValueError(f"{self.model_id}: {name} must be a number, got {given!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{self.model_id}: {name} must be a finite number, got {value!r}")
        if not _plausible(measure, value):
            raise ValueError(f"{self.model_id}: {name} {value:g} is out of range ({_range_text(measure)})")
        if measure.flag:
            if value not in (0.0, 1.0):
                raise ValueError(f"{self.model_id}: {name} is a state, 0 or 1, got {value:g}")
            return int(value)
        scale = measure.scale or spec.scale
        raw = scale.raw(value, spec.word, spec.mask)
        if raw is None:
            low, high = scale.bounds(spec.word, spec.mask)
            raise ValueError(
                f"{self.model_id}: {name} {value:g} is out of range (the payload carries {low:g}..{high:g})"
            )
        return raw


def _derive(source: Derived, values: QuantityValues) -> float:
    return source(values) if callable(source) else source


def _plausible(measure: Measure | None, value: float) -> bool:
    if measure is None:
        return True
    return (measure.low is None or value >= measure.low) and (measure.high is None or value <= measure.high)


def _range_text(measure: Measure | None) -> str:
    if measure is None:
        return "any"
    low = "" if measure.low is None else f"{measure.low:g}"
    high = "" if measure.high is None else f"{measure.high:g}"
    return f"{low}..{high}"
