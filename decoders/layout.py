"""The engine a compiled device spec runs on: words, scales, fields, layouts and the device model that decodes and
encodes payloads with them. Specs (firmware-specs/*.toml) become these objects in decoders/spec.py.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from flurfunk.contracts import Quantity

from .decoded import Decoded, Measurement
from .errors import DecodeError
from .js import js_number, js_string, to_fixed

# LoRaWAN application payloads are at most 242 bytes; the Uplink contract allows 255. Anything longer is not an uplink.
MAX_PAYLOAD_BYTES = 255

QuantityValues = Mapping[Quantity, float]
# The encoder's value for something the caller did not give, computed from what it did give.
Derived = float | Callable[[QuantityValues], float]


# A presentation returns OMIT where the vendor codec assigns `undefined`, a key JSON drops.
OMIT: Any = object()


class Word(Enum):
    """How an integer sits in the payload: (size in bytes, byte order, signed)."""

    U8 = (1, "big", False)
    S8 = (1, "big", True)
    U16BE = (2, "big", False)
    U16LE = (2, "little", False)
    S16BE = (2, "big", True)
    S16LE = (2, "little", True)
    U24BE = (3, "big", False)
    S24BE = (3, "big", True)
    U32BE = (4, "big", False)
    U32LE = (4, "little", False)
    S32BE = (4, "big", True)
    S32LE = (4, "little", True)

    @property
    def size(self) -> int:
        return self.value[0]

    @property
    def signed(self) -> bool:
        return self.value[2]

    @property
    def bits(self) -> int:
        return 8 * self.value[0]

    @property
    def lowest(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def highest(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def pack(self, raw: int) -> bytes:
        return raw.to_bytes(self.size, self.value[1], signed=self.signed)

    def unpack(self, chunk: bytes) -> int:
        return int.from_bytes(chunk, self.value[1], signed=self.signed)

    @property
    def struct_code(self) -> str | None:
        """The struct format of the word (None for 24-bit words, which struct cannot read)."""
        return _STRUCT_CODES.get(self.name)


_STRUCT_CODES = {"U8": "B", "S8": "b", "U16BE": ">H", "U16LE": "<H", "S16BE": ">h", "S16LE": "<h"}
_STRUCT_CODES |= {"U32BE": ">I", "U32LE": "<I", "S32BE": ">i", "S32LE": "<i"}


@dataclass(frozen=True)
class Scale:
    """raw ↔ number: number = (raw - subtract) / divisor * multiplier, the operations in the vendor codec's order.

    With `negative_bias`, an unsigned raw value with the sign bit set means raw - negative_bias; Dragino's codecs
    subtract 0xFFFF (one less than two's complement) for some temperatures.
    """

    divisor: int | float = 1
    subtract: int = 0
    multiplier: int | float = 1
    negative_bias: int | None = None

    def value(self, raw: int, word: Word) -> int | float:
        if self.negative_bias is not None and raw >= 1 << (word.bits - 1):
            raw -= self.negative_bias
        number: int | float = raw - self.subtract
        if self.divisor != 1:
            number = number / self.divisor
        if self.multiplier != 1:
            number = number * self.multiplier
        return number

    def raw(self, value: float, word: Word, top: int | None = None) -> int | None:
        """The raw word for `value` (nearest step), or None if the word (or its `top` bits) cannot hold it."""
        steps = value / self.multiplier * self.divisor
        if not math.isfinite(steps):
            return None
        raw = round(steps) + self.subtract
        lowest, highest = word.lowest, word.highest if top is None else top
        if self.negative_bias is not None:
            sign = 1 << (word.bits - 1)
            if raw < 0:
                raw += self.negative_bias
                return raw if sign <= raw <= highest else None
            return raw if raw < sign else None
        return raw if lowest <= raw <= highest else None

    def bounds(self, word: Word, top: int | None = None) -> tuple[float, float]:
        """The smallest and largest number the word can carry."""
        if self.negative_bias is not None:
            sign = 1 << (word.bits - 1)
            ends = (self.value(sign, word), self.value(sign - 1, word))
        else:
            ends = (self.value(word.lowest, word), self.value(word.highest if top is None else top, word))
        return min(ends), max(ends)


# --- how the vendor codec presents a value in its `data` object --------------------------------------------------


@dataclass(frozen=True)
class AsNumber:
    """A JS number: the scaled value."""

    def present(self, value: int | float, raw: int) -> Any:
        return js_number(value)


@dataclass(frozen=True)
class AsFixed:
    """A string with `digits` decimals (`value.toFixed(digits)`)."""

    digits: int

    def present(self, value: int | float, raw: int) -> Any:
        return to_fixed(value, self.digits)


@dataclass(frozen=True)
class AsSuffixed:
    """The number as JS prints it, then a suffix: 2799 → "2799 mm"."""

    suffix: str

    def present(self, value: int | float, raw: int) -> Any:
        return js_string(value) + self.suffix


@dataclass(frozen=True)
class AsLabel:
    """A word from a table, e.g. 0 → "normal"; any other raw value gives `otherwise` (absent: the key is left out,
    as a JS codec that looks up a missing key assigns `undefined`)."""

    labels: tuple[tuple[int, str], ...]
    otherwise: str | None = None

    def present(self, value: int | float, raw: int) -> Any:
        for known, label in self.labels:
            if known == raw:
                return label
        return OMIT if self.otherwise is None else self.otherwise


@dataclass(frozen=True)
class AsDescribed:
    """Decentlab's `{displayName, value, unit}` object around the scaled number."""

    display_name: str
    unit: str | None = None

    def present(self, value: int | float, raw: int) -> Any:
        shown: dict[str, Any] = {"displayName": self.display_name, "value": js_number(value)}
        if self.unit is not None:
            shown["unit"] = self.unit
        return shown


@dataclass(frozen=True)
class AsBoolean:
    """`true` when the raw value is not 0."""

    def present(self, value: int | float, raw: int) -> Any:
        return raw != 0


@dataclass(frozen=True)
class Hidden:
    """Read (for a template or a measurement) but not part of the vendor's `data`."""

    def present(self, value: int | float, raw: int) -> Any:
        return OMIT


Presentation = AsNumber | AsFixed | AsSuffixed | AsLabel | AsDescribed | AsBoolean | Hidden


@dataclass(frozen=True)
class Template:
    """A string the vendor codec builds from several raw values: "V.{major}.{minor:x}" (see firmware-specs/README)."""

    name: str
    text: str
    parts: tuple[tuple[str, str, str], ...]  # (literal before, field name, conversion)
    tail: str

    def render(self, raws: Mapping[str, int | float]) -> str:
        out = []
        for literal, name, conversion in self.parts:
            out.append(literal)
            out.append(_convert(raws[name], conversion))
        out.append(self.tail)
        return "".join(out)


def _convert(value: int | float, conversion: str) -> str:
    if conversion == "x":
        return format(int(value), "x")
    if conversion == "zxc":
        # Dragino's zxc(): parseInt(hex) reads the leading decimal digits of the hex text; below 10 gets a '0' in front
        text = format(int(value), "x")
        digits = len(text) - len(text.lstrip("0123456789"))
        return "0" + text if digits and int(text[:digits]) < 10 else text
    return js_string(value)


# --- what a value means for Flurfunk -----------------------------------------------------------------------------


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
class Invalid:
    """A raw value the vendor codec shows as text instead of a number ("No Sensor"); no measurement, a warning."""

    text: str
    equals: int | None = None
    below: int | None = None

    def matches(self, raw: int) -> bool:
        return raw == self.equals if self.equals is not None else self.below is not None and raw < self.below


@dataclass(frozen=True)
class Field:
    """One value in the payload: the vendor codec's key, where and how it is stored, shown, and what it measures."""

    name: str
    word: Word
    offset: int = 0  # from the start of the payload (fixed) or of the value (channels)
    shown: Presentation = field(default_factory=AsNumber)
    scale: Scale = field(default_factory=Scale)
    measure: Measure | None = None
    shift: int = 0  # bits of the word below the value
    mask: int | None = None  # bits (after the shift) that carry the value
    invalid: tuple[Invalid, ...] = ()
    repeat_as_list: bool = False  # a second occurrence turns the value into a list (Elsys external temperature 2)
    fill: Derived = 0.0  # the encoder's value (in `scale`) for a field that measures no contract quantity

    @property
    def end(self) -> int:
        return self.offset + self.word.size

    @property
    def top(self) -> int | None:
        return self.mask

    def raw_from(self, word_value: int) -> int:
        raw = word_value >> self.shift if self.shift else word_value
        return raw & self.mask if self.mask is not None else raw

    def present(self, raw: int) -> tuple[Any, str | None]:
        """The vendor's value and, for an invalid reading, the warning."""
        for invalid in self.invalid:
            if invalid.matches(raw):
                return invalid.text, f"{self.name}: {invalid.text}"
        return self.shown.present(self.scale.value(raw, self.word), raw), None

    def measurement(self, raw: int) -> Measurement | None:
        measure = self.measure
        if measure is None:
            return None
        for invalid in self.invalid:
            if invalid.matches(raw):
                return None
        if measure.flag:
            return Measurement(measure.quantity, 1.0 if raw else 0.0)
        return Measurement(measure.quantity, float((measure.scale or self.scale).value(raw, self.word)))


# --- reading a payload -------------------------------------------------------------------------------------------


class Found:
    """What a layout found: the vendor's fields in codec order, the raw values behind measurements, warnings."""

    __slots__ = ("direct", "fields", "measured", "warnings")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.direct: list[Measurement] = []  # measurements a protocol layout computed itself
        self.measured: dict[str, tuple[Field, int]] = {}  # output key → the field and raw value (last one wins)
        self.warnings: list[str] = []

    def put(self, spec: Field, raw: int, key: str | None = None, into: dict[str, Any] | None = None) -> None:
        key = spec.name if key is None else key
        shown, warning = spec.present(raw)
        if warning is not None:
            self.warnings.append(warning)
        if shown is not OMIT:
            target = self.fields if into is None else into
            if spec.repeat_as_list and key in target:
                earlier = target[key]
                target[key] = [*earlier, shown] if isinstance(earlier, list) else [earlier, shown]
            else:
                target[key] = shown
        if spec.measure is not None:
            self.measured[key] = (spec, raw)


class Reader:
    """Bounds-checked access to one payload; every failure is a DecodeError naming the offset."""

    __slots__ = ("f_port", "model_id", "payload")

    def __init__(self, model_id: str, f_port: int, payload: bytes) -> None:
        self.model_id = model_id
        self.f_port = f_port
        self.payload = payload

    def word(self, spec: Field, offset: int) -> int:
        end = offset + spec.word.size
        if end > len(self.payload):
            where = min(offset, len(self.payload))  # a value wholly beyond the end: where the payload ends
            raise self.error(
                f"{spec.name} needs {spec.word.size} byte(s), the payload has {len(self.payload)} bytes", where
            )
        return spec.raw_from(spec.word.unpack(self.payload[offset:end]))

    def error(self, reason: str, offset: int | None = None) -> DecodeError:
        return DecodeError(self.model_id, self.f_port, reason, offset)


class Layout(Protocol):
    def fields(self) -> tuple[Field, ...]: ...

    def read(self, reader: Reader, found: Found) -> None: ...

    def write(self, raws: Mapping[str, int]) -> bytes: ...


# --- the layouts -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedLayout:
    """Fields at fixed offsets (Dragino style), constants the codec always sets, strings built from several values,
    then bytes the codec does not read."""

    values: tuple[Field, ...]
    constants: tuple[tuple[str, Any], ...] = ()
    templates: tuple[Template, ...] = ()
    trailer: bytes = b""  # what the device sends after the fields; the vendor codec ignores it
    _plan: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Precompiled struct readers, one per field, when every word is a struct word: the fast path of simple models.
        end = max((spec.end for spec in self.values), default=0)
        codes = [spec.word.struct_code for spec in self.values]
        unpacker = None
        if codes and all(codes):
            unpacker = [struct.Struct(code if code[0] in "<>" else ">" + code) for code in codes if code]
        object.__setattr__(self, "_plan", (end, unpacker))

    @property
    def length(self) -> int:
        return self._plan[0]

    def fields(self) -> tuple[Field, ...]:
        return self.values

    def read(self, reader: Reader, found: Found) -> None:
        payload = reader.payload
        end = self._plan[0]
        if len(payload) < end:
            for spec in self.values:  # name the first field that is cut short
                if spec.end > len(payload):
                    reader.word(spec, spec.offset)
        raws: dict[str, int] = {}
        unpackers = self._plan[1]
        if unpackers is not None:
            words = [
                unpacker.unpack_from(payload, spec.offset)[0]
                for unpacker, spec in zip(unpackers, self.values, strict=True)
            ]
            for spec, word in zip(self.values, words, strict=True):
                raw = spec.raw_from(word)
                raws[spec.name] = raw
                found.put(spec, raw)
        else:
            for spec in self.values:
                raw = reader.word(spec, spec.offset)
                raws[spec.name] = raw
                found.put(spec, raw)
        for template in self.templates:
            found.fields[template.name] = template.render(_scaled(self.values, raws))
        for name, value in self.constants:
            found.fields[name] = value
        expected = end + len(self.trailer)
        if len(payload) > expected and (self.values or self.trailer):
            found.warnings.append(f"{len(payload) - expected} byte(s) after offset {expected} ignored")

    def write(self, raws: Mapping[str, int]) -> bytes:
        out = bytearray(self._plan[0])
        for spec in self.values:
            raw = raws[spec.name]
            word = spec.word.unpack(bytes(out[spec.offset : spec.end]))
            shifted = raw << spec.shift if spec.shift else raw
            out[spec.offset : spec.end] = spec.word.pack(word | shifted if spec.shift or spec.mask else shifted)
        return bytes(out) + self.trailer


def _scaled(values: tuple[Field, ...], raws: Mapping[str, int]) -> dict[str, int | float]:
    return {spec.name: spec.scale.value(raws[spec.name], spec.word) for spec in values}


@dataclass(frozen=True)
class Channel:
    """One entry of a channel/type payload: its key bytes (None: any channel number), and its values."""

    key: tuple[int | None, ...]
    values: tuple[Field, ...]
    size: int  # bytes of value after the key (and length byte)
    group: str | None = None  # the values go into an object of this name ("{channel}": the channel number)

    def key_text(self, channel: int | None) -> str:
        return "" if channel is None else str(channel)


@dataclass(frozen=True)
class ChannelLayout:
    """[key][length?][value]… (Milesight: channel id + type; Elsys: type; Dragino WSC1-L: type + length byte;
    Cayenne LPP: any channel + type). Like the vendor codecs, decoding stops at the first key it does not know
    (a warning), or refuses it (`unknown = "error"`)."""

    channels: tuple[Channel, ...]
    key_bytes: int = 2
    length_byte: bool = False
    unknown: str = "stop"
    encode_channel: int = 1  # the channel number the encoder writes for an any-channel entry
    _index: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact = {channel.key: channel for channel in self.channels if None not in channel.key}
        any_channel = {channel.key[1:]: channel for channel in self.channels if channel.key[0] is None}
        object.__setattr__(self, "_index", (exact, any_channel))

    def fields(self) -> tuple[Field, ...]:
        return tuple(spec for channel in self.channels for spec in channel.values)

    def read(self, reader: Reader, found: Found) -> None:
        payload = reader.payload
        exact, any_channel = self._index
        header = self.key_bytes + (1 if self.length_byte else 0)
        offset = 0
        while offset < len(payload):
            if offset + self.key_bytes > len(payload):
                rest = len(payload) - offset
                what = "1 byte at offset {} is" if rest == 1 else f"{rest} bytes at offset {{}} are"
                found.warnings.append(f"{what.format(offset)} no channel header; ignored")
                break
            key = tuple(payload[offset : offset + self.key_bytes])
            channel = exact.get(key)
            number: int | None = None
            if channel is None and self.key_bytes > 1:
                channel = any_channel.get(key[1:])
                number = key[0]
            if channel is None:
                where = " ".join(f"0x{byte:02x}" for byte in key)
                if self.unknown == "error":
                    raise reader.error(f"unknown channel {where}", offset)
                found.warnings.append(
                    f"unknown channel {where} at offset {offset}; {len(payload) - offset} byte(s) from there ignored"
                )
                break
            start = offset + header
            into: dict[str, Any] | None = None
            if channel.group is not None:
                group = channel.group.replace("{channel}", channel.key_text(number))
                into = found.fields.setdefault(group, {})
            for spec in channel.values:
                raw = reader.word(spec, start + spec.offset)
                key_name = spec.name.replace("{channel}", channel.key_text(number)) if number is not None else spec.name
                found.put(spec, raw, key_name, into)
            if self.length_byte:
                if offset + self.key_bytes >= len(payload):
                    raise reader.error("the length byte is missing", offset + self.key_bytes)
                offset = start + payload[offset + self.key_bytes]
            else:
                offset = start + channel.size

    def write(self, raws: Mapping[str, int]) -> bytes:
        out = bytearray()
        for channel in self.channels:
            key = bytes(self.encode_channel if part is None else part for part in channel.key)
            value = bytearray(channel.size)
            for spec in channel.values:
                name = spec.name.replace("{channel}", str(self.encode_channel))
                value[spec.offset : spec.end] = spec.word.pack(raws[name] << spec.shift)
            out += key + (bytes((channel.size,)) if self.length_byte else b"") + value
        return bytes(out)


@dataclass(frozen=True)
class SensorGroup:
    """Decentlab: the 16-bit words one sensor sends when its flag is set, one field per word."""

    values: tuple[Field, ...]


_PROTOCOL_VERSION = Field("protocol_version", Word.U8)
_DEVICE_ID = Field("device_id", Word.U16BE)
_FLAGS = Field("flags", Word.U16BE, shown=Hidden())


@dataclass(frozen=True)
class FlaggedGroupsLayout:
    """Decentlab: protocol version (1 byte), device id, a flags word (bit i: group i follows), the groups' words."""

    protocol_version: int
    groups: tuple[SensorGroup, ...]
    device_id: int = 0  # what the encoder writes: a virtual device has no serial number

    def fields(self) -> tuple[Field, ...]:
        return tuple(spec for group in self.groups for spec in group.values)

    def read(self, reader: Reader, found: Found) -> None:
        version = reader.word(_PROTOCOL_VERSION, 0)
        if version != self.protocol_version:
            # the vendor codec's own words, so both sides report the same error
            raise reader.error(f"protocol version {version} doesn't match v{self.protocol_version}", 0)
        found.fields["protocol_version"] = version
        found.fields["device_id"] = reader.word(_DEVICE_ID, 1)
        flags = reader.word(_FLAGS, 3)
        if flags >> len(self.groups):
            found.warnings.append(f"flags 0x{flags:04x} announce sensor groups this model does not have; ignored")
        offset = 5
        for index, group in enumerate(self.groups):
            if not flags >> index & 1:
                continue
            for spec in group.values:
                found.put(spec, reader.word(spec, offset))
                offset += 2
        if len(reader.payload) > offset:
            found.warnings.append(f"{len(reader.payload) - offset} byte(s) after offset {offset} ignored")

    def write(self, raws: Mapping[str, int]) -> bytes:
        flags = (1 << len(self.groups)) - 1
        header = bytes((self.protocol_version,)) + _DEVICE_ID.word.pack(self.device_id) + _FLAGS.word.pack(flags)
        return header + b"".join(spec.word.pack(raws[spec.name]) for spec in self.fields())


# --- a device model ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """When an uplink variant applies: the payload's length, or bits of one byte."""

    length: int | None = None
    min_length: int | None = None
    byte: int | None = None
    mask: int = 0xFF
    equals: int | None = None
    at_least: int | None = None

    def holds(self, payload: bytes) -> bool:
        if self.length is not None and len(payload) != self.length:
            return False
        if self.min_length is not None and len(payload) < self.min_length:
            return False
        if self.byte is not None:
            if self.byte >= len(payload):
                return False
            bits = payload[self.byte] & self.mask
            if self.equals is not None and bits != self.equals:
                return False
            if self.at_least is not None and bits < self.at_least:
                return False
        return True


@dataclass(frozen=True)
class Uplink:
    """One way the vendor codec reads an uplink: on which fPorts (None: any), when, with which layout."""

    layout: Any  # a Layout
    ports: frozenset[int] | None = None
    when: Condition | None = None
    warning: str | None = None  # what the vendor signals with this variant ("No Sensor")
    name: str = ""
    # the layout compiled to straight-line code (decoders/compiled.py); None: the layout's reader decodes
    fast: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from .compiled import compile_layout  # the compiler builds on this module's classes

        object.__setattr__(self, "fast", compile_layout(self.layout, self.warning))


@dataclass(frozen=True)
class DeviceModel:
    """A device's uplink formats, the fPort its measurements go out on, and the vendor codec it must agree with."""

    model_id: str
    uplinks: tuple[Uplink, ...]
    uplink_port: int  # the fPort the encoder uses
    encode_with: Uplink | None = None  # the variant the encoder writes (None: this model has no encoder)
    port_error: str = "unknown FPort"  # the vendor codec's error for any port no variant takes
    vendor_codec: str = ""  # where the reference codec lives (TTN device repository path)
    name: str = ""
    category: str = ""
    source: str = ""  # the spec file
    downlinks: tuple[dict[str, Any], ...] = ()
    notes: str = ""
    # per fPort: the variants' compiled decoders behind one call (decoders/compiled.py); a port without: the reader
    routes: dict[int, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from .compiled import compile_routes

        object.__setattr__(self, "routes", compile_routes(self.uplinks))

    @property
    def quantities(self) -> tuple[Quantity, ...]:
        seen: dict[Quantity, None] = {}
        for uplink in self.uplinks:
            for spec in uplink.layout.fields():
                if spec.measure is not None:
                    seen.setdefault(spec.measure.quantity)
            for _id, quantity, _factor in getattr(uplink.layout, "measurements", ()):
                seen.setdefault(quantity)
            if isinstance(getattr(uplink.layout, "quantity", None), Quantity):
                seen.setdefault(uplink.layout.quantity)
        return tuple(seen)

    @property
    def ports(self) -> frozenset[int] | None:
        if any(uplink.ports is None for uplink in self.uplinks):
            return None
        return frozenset(port for uplink in self.uplinks for port in uplink.ports or ())

    def decode_interpreted(self, f_port: int, payload: bytes) -> Decoded:
        """`decode` by walking the layout objects only, never the compiled code: the reference the compiled code
        is tested against."""
        return self.decode(f_port, payload, compiled=False)

    def decode(self, f_port: int, payload: bytes, *, compiled: bool = True) -> Decoded:
        route = self.routes.get(f_port) if compiled else None
        if route is not None:  # an application port (1..255) with a compiled decoder
            if type(payload) is not bytes:
                payload = bytes(payload)
            if len(payload) <= MAX_PAYLOAD_BYTES:
                decoded = route(self.model_id, f_port, payload)
                if decoded is not None:
                    return decoded
        # anything unusual, and the interpreted path: the layout's reader, which names what is wrong
        if not 1 <= f_port <= 255:
            raise DecodeError(self.model_id, f_port, f"fPort {f_port} is not an application port (1..255)")
        if payload.__class__ is not bytes:
            payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise DecodeError(
                self.model_id, f_port, f"payload of {len(payload)} bytes is longer than {MAX_PAYLOAD_BYTES} bytes"
            )
        uplink = self._variant(f_port, payload)
        reader = Reader(self.model_id, f_port, payload)
        found = Found()
        uplink.layout.read(reader, found)
        measurements: list[Measurement] = []
        seen: set[Quantity] = set()
        warnings = found.warnings
        if uplink.warning:
            warnings.insert(0, uplink.warning)
        for spec, raw in found.measured.values():
            measurement = spec.measurement(raw)
            if measurement is None:
                continue
            if measurement.quantity in seen:
                warnings.append(f"{measurement.quantity} given more than once; the first value is kept")
                continue
            seen.add(measurement.quantity)
            measurements.append(measurement)
            if not _plausible(spec.measure, measurement.value):
                warnings.append(f"{measurement.quantity} {measurement.value:g} is outside {range_text(spec.measure)}")
        for measurement in found.direct:
            if measurement.quantity not in seen:
                seen.add(measurement.quantity)
                measurements.append(measurement)
        if not payload:
            warnings.append("empty payload")
        return Decoded(self.model_id, f_port, found.fields, tuple(measurements), tuple(warnings))

    def _variant(self, f_port: int, payload: bytes) -> Uplink:
        port_known = False
        for uplink in self.uplinks:
            if uplink.ports is not None and f_port not in uplink.ports:
                continue
            port_known = True
            if uplink.when is None or uplink.when.holds(payload):
                return uplink
        if not port_known:
            raise DecodeError(self.model_id, f_port, self.port_error)
        missing = [
            u.when.byte for u in self.uplinks if u.when and u.when.byte is not None and u.when.byte >= len(payload)
        ]
        if missing:
            reason = f"byte {min(missing)} selects the uplink format, the payload has {len(payload)} bytes"
            raise DecodeError(self.model_id, f_port, reason, len(payload))  # where the payload ends
        raise DecodeError(self.model_id, f_port, "no uplink format of this model matches the payload")

    def encode(self, values: QuantityValues) -> tuple[int, bytes]:
        uplink = self.encode_with
        if uplink is None:
            raise ValueError(f"{self.model_id}: this model has no encoder")
        whole = getattr(uplink.layout, "encode_quantities", None)
        if whole is not None:
            return self.uplink_port, whole(self.model_id, values)
        specs = uplink.layout.fields()
        required = [
            spec.measure.quantity for spec in specs if spec.measure is not None and spec.measure.default is None
        ]
        missing = [quantity.value for quantity in required if values.get(quantity) is None]
        if missing:
            raise ValueError(
                f"{self.model_id}: missing quantity {', '.join(missing)} "
                f"(this model needs {', '.join(quantity.value for quantity in required)})"
            )
        raws = {spec.name.replace("{channel}", "1"): self._encode_field(spec, values) for spec in specs}
        return self.uplink_port, uplink.layout.write(raws)

    def _value(self, spec: Field, values: QuantityValues) -> float:
        measure = spec.measure
        assert measure is not None
        name = measure.quantity.value
        given = values.get(measure.quantity)
        if given is None:
            assert measure.default is not None  # encode() refused the call when a quantity without one is missing
            given = _derive(measure.default, values)
        value = finite_number(self.model_id, name, given)
        if not _plausible(measure, value):
            raise ValueError(f"{self.model_id}: {name} {value:g} is out of range ({range_text(measure)})")
        return value

    def _encode_field(self, spec: Field, values: QuantityValues) -> int:
        measure = spec.measure
        if measure is None:
            # a filler only has to look plausible: pin it into the word rather than refuse the caller's values
            low, high = spec.scale.bounds(spec.word, spec.top)
            filler = _derive(spec.fill, values)
            filler = min(max(filler, low), high) if math.isfinite(filler) else min(max(0.0, low), high)
            return spec.scale.raw(filler, spec.word, spec.top) or 0
        value = self._value(spec, values)
        name = measure.quantity.value
        if measure.flag:
            if value not in (0.0, 1.0):
                raise ValueError(f"{self.model_id}: {name} is a state, 0 or 1, got {value:g}")
            return int(value)
        scale = measure.scale or spec.scale
        raw = scale.raw(value, spec.word, spec.top)
        if raw is None:
            low, high = scale.bounds(spec.word, spec.top)
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


def finite_number(model_id: str, name: str, given: object) -> float:
    """A value an encoder was given, as a float; anything else is refused naming the model and the quantity."""
    try:
        value = float(given)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{model_id}: {name} must be a number, got {given!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{model_id}: {name} must be a finite number, got {value!r}")
    return value


def range_text(measure: Measure | None) -> str:
    if measure is None:
        return "any"
    low = "" if measure.low is None else f"{measure.low:g}"
    high = "" if measure.high is None else f"{measure.high:g}"
    return f"{low}..{high}"
