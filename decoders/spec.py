"""The spec compiler: a device spec (firmware-specs/*.toml, format in firmware-specs/README.md) becomes a DeviceModel.
A wrong spec fails with SpecError naming the file, the field and the reason.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flurfunk.contracts import Quantity

from .errors import SpecError
from .layout import (
    AsBoolean,
    AsDescribed,
    AsFixed,
    AsLabel,
    AsNumber,
    AsSuffixed,
    Channel,
    ChannelLayout,
    Condition,
    Derived,
    DeviceModel,
    Field,
    FixedLayout,
    FlaggedGroupsLayout,
    Hidden,
    Invalid,
    Measure,
    Presentation,
    QuantityValues,
    Scale,
    SensorGroup,
    Template,
    Uplink,
    Word,
)
from .protocols import AdeunisTemp4Layout, CborLayout, SensecapFramesLayout, SensecapV2Layout

MAX_SPEC_BYTES = 256 * 1024  # a spec is a page of TOML; anything bigger is not one
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*(@[a-z0-9][a-z0-9.-]*)?$")
CATEGORIES = ("fill-level", "soil", "weather", "other")


def _vapour_pressure_kpa(values: QuantityValues) -> float:
    # Magnus-Tetens saturation pressure (FAO-56 eq. 11) times relative humidity
    temperature = values[Quantity.AIR_TEMPERATURE_C]
    saturation = 0.6108 * math.exp(17.27 * temperature / (temperature + 237.3))
    return saturation * values[Quantity.HUMIDITY_PCT] / 100


def _wind_component(projection: Callable[[float], float]) -> Callable[[QuantityValues], float]:
    def component(values: QuantityValues) -> float:
        # the vendor's example uplink shows north = speed·cos(direction), east = speed·sin(direction)
        return values[Quantity.WIND_SPEED_MS] * projection(math.radians(values[Quantity.WIND_DIRECTION_DEG]))

    return component


# Encoder fillers a spec can name (`fill = "@north_wind_ms"`): values the device computes from what it measures.
DERIVATIONS: dict[str, Callable[[QuantityValues], float]] = {
    "vapour_pressure_kpa": _vapour_pressure_kpa,
    "north_wind_ms": _wind_component(math.cos),
    "east_wind_ms": _wind_component(math.sin),
}

WORDS = {word.name.lower(): word for word in Word}
LAYOUTS = ("fixed", "channels", "decentlab", "sensecap-frames", "sensecap-v2", "adeunis-temp4", "cbor")


class _Table:
    """One TOML table being read: knows its path for error messages and refuses keys nobody read."""

    def __init__(self, source: str, path: str, data: Any) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, dict):
            raise SpecError(source, path or "(top)", f"must be a table, got {type(data).__name__}")
        self.data = data
        self.read: set[str] = set()

    def error(self, key: str, reason: str) -> SpecError:
        return SpecError(self.source, f"{self.path}.{key}" if self.path else key, reason)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        self.read.add(key)
        if key not in self.data:
            if required:
                raise self.error(key, "is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise self.error(key, f"must be a number, got {value!r}")
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(key, f"must be {names}, got {type(value).__name__} {value!r}")
        return value

    def table(self, key: str) -> _Table | None:
        self.read.add(key)
        if key not in self.data:
            return None
        return _Table(self.source, f"{self.path}.{key}" if self.path else key, self.data[key])

    def tables(self, key: str, required: bool = False) -> list[_Table]:
        raw = self.get(key, list, [], required)
        return [
            _Table(self.source, f"{self.path}.{key}[{index}]" if self.path else f"{key}[{index}]", item)
            for index, item in enumerate(raw)
        ]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise self.error(unknown[0], "is not a key of this table (see firmware-specs/README.md)")


def load_spec(path: Path) -> DeviceModel:
    """Compile one spec file; SpecError names the file, the field and the reason for anything wrong in it."""
    source = path.name
    try:
        text = path.read_bytes()
    except OSError as error:
        raise SpecError(source, "(file)", f"cannot be read: {error.strerror}") from None
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(source, "(file)", f"is {len(text)} bytes, more than {MAX_SPEC_BYTES}")
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise SpecError(source, "(file)", f"is not UTF-8: {error.reason} at byte {error.start}") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(source, "(file)", f"is not valid TOML: {error}") from None
    return compile_spec(data, source)


def compile_spec(data: dict[str, Any], source: str = "<spec>") -> DeviceModel:
    """Compile a parsed spec (the TOML as a dict) into a DeviceModel."""
    top = _Table(source, "", data)
    top.get("spec_version", int, required=True)
    if data["spec_version"] != 1:
        raise top.error("spec_version", f"must be 1, got {data['spec_version']}")
    model_id = top.get("model_id", str, required=True)
    if not MODEL_ID.match(model_id):
        raise top.error("model_id", f"{model_id!r} is not vendor/device or vendor/device@codec (lower case)")
    category = top.get("category", str, required=True)
    if category not in CATEGORIES:
        raise top.error("category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    uplinks = tuple(_uplink(table) for table in top.tables("uplink", required=True))
    if not uplinks:
        raise top.error("uplink", "needs at least one uplink format")
    encoder = top.table("encoder")
    encode_with = None
    uplink_port = 1
    if encoder is not None:
        uplink_port = encoder.get("port", int, required=True)
        if not 1 <= uplink_port <= 255:
            raise encoder.error("port", f"must be 1..255, got {uplink_port}")
        variant = encoder.get("uplink", str, "")
        matching = [u for u in uplinks if (u.name == variant if variant else True)]
        matching = [u for u in matching if u.ports is None or uplink_port in u.ports]
        if not matching:
            raise encoder.error("uplink", f"no uplink format {variant!r} decodes fPort {uplink_port}")
        encode_with = matching[0]
        encoder.done()
    downlinks = tuple(_downlink(table) for table in top.tables("downlink"))
    model = DeviceModel(
        model_id=model_id,
        uplinks=uplinks,
        uplink_port=uplink_port,
        encode_with=encode_with,
        port_error=top.get("port_error", str, "unknown FPort"),
        vendor_codec=top.get("vendor_codec", str, ""),
        name=top.get("name", str, required=True),
        category=category,
        source=source,
        downlinks=downlinks,
        notes=top.get("notes", str, ""),
    )
    top.done()
    return model


def _downlink(table: _Table) -> dict[str, Any]:
    command = {
        "name": table.get("name", str, required=True),
        "port": table.get("port", int, required=True),
        "hex": table.get("hex", str, required=True),
        "description": table.get("description", str, ""),
    }
    try:
        bytes.fromhex(command["hex"].replace("{", "").replace("}", "").replace("xx", "00"))
    except ValueError:
        raise table.error("hex", f"{command['hex']!r} is not hex (placeholders: xx)") from None
    table.done()
    return command


def _uplink(table: _Table) -> Uplink:
    layout_kind = table.get("layout", str, required=True)
    if layout_kind not in LAYOUTS:
        raise table.error("layout", f"{layout_kind!r} is not one of {', '.join(LAYOUTS)}")
    ports = table.get("ports", list)
    if ports is not None:
        if not ports or not all(isinstance(port, int) and 1 <= port <= 255 for port in ports):
            raise table.error("ports", f"must be a list of fPorts 1..255, got {ports!r}")
        ports = frozenset(ports)
    when = table.table("when")
    condition = None
    if when is not None:
        condition = Condition(
            length=when.get("length", int),
            min_length=when.get("min_length", int),
            byte=when.get("byte", int),
            mask=when.get("mask", int, 0xFF),
            equals=when.get("equals", int),
            at_least=when.get("at_least", int),
        )
        when.done()
    layout = _LAYOUT_READERS[layout_kind](table)
    uplink = Uplink(
        layout=layout,
        ports=ports,
        when=condition,
        warning=table.get("warning", str),
        name=table.get("name", str, ""),
    )
    table.done()
    return uplink


def _fixed(table: _Table) -> FixedLayout:
    values = _fields(table.tables("fields"), sequential=True)
    constants = table.table("constants")
    constant_items: tuple[tuple[str, Any], ...] = ()
    if constants is not None:
        constant_items = tuple(constants.data.items())
        constants.read.update(constants.data)
    trailer_hex = table.get("trailer", str, "")
    try:
        trailer = bytes.fromhex(trailer_hex)
    except ValueError:
        raise table.error("trailer", f"{trailer_hex!r} is not hex") from None
    templates = []
    for index, item in enumerate(table.tables("templates")):
        name = item.get("name", str, required=True)
        text = item.get("text", str, required=True)
        parts = []
        position = 0
        known = {spec.name for spec in values}
        for match in re.finditer(r"\{([A-Za-z0-9_]+)(?::(x|zxc|d))?\}", text):
            if match.group(1) not in known:
                raise item.error("text", f"{{{match.group(1)}}} names no field of this uplink")
            parts.append((text[position : match.start()], match.group(1), match.group(2) or "d"))
            position = match.end()
        templates.append(Template(name, text, tuple(parts), text[position:]))
        item.done()
        del index
    return FixedLayout(values, constant_items, tuple(templates), trailer)


def _channels(table: _Table) -> ChannelLayout:
    key_bytes = table.get("key_bytes", int, 2)
    if key_bytes not in (1, 2):
        raise table.error("key_bytes", f"must be 1 or 2, got {key_bytes}")
    unknown = table.get("unknown", str, "stop")
    if unknown not in ("stop", "error"):
        raise table.error("unknown", f"must be 'stop' or 'error', got {unknown!r}")
    channels = []
    seen: set[tuple[int | None, ...]] = set()
    for item in table.tables("channels", required=True):
        raw_key = item.get("key", list, required=True)
        if len(raw_key) != key_bytes or not all(
            (isinstance(part, int) and 0 <= part <= 255) or (part == "any" and index == 0 and key_bytes == 2)
            for index, part in enumerate(raw_key)
        ):
            raise item.error("key", f'must be {key_bytes} byte(s) 0..255 (the first may be "any"), got {raw_key!r}')
        key = tuple(None if part == "any" else part for part in raw_key)
        if key in seen:
            raise item.error("key", f"{raw_key!r} is given twice")
        seen.add(key)
        values = _fields(item.tables("fields", required=True), sequential=True)
        size = item.get("size", int, max((spec.end for spec in values), default=0))
        channels.append(Channel(key, values, size, item.get("group", str)))
        item.done()
    return ChannelLayout(
        tuple(channels), key_bytes, table.get("length_byte", bool, False), unknown, table.get("encode_channel", int, 1)
    )


def _decentlab(table: _Table) -> FlaggedGroupsLayout:
    groups = []
    for item in table.tables("groups", required=True):
        values = _fields(item.tables("fields", required=True), sequential=True, default_word="u16be")
        if any(spec.word is not Word.U16BE for spec in values):
            raise item.error("fields", "Decentlab sensor values are u16be words")
        groups.append(SensorGroup(values))
        item.done()
    return FlaggedGroupsLayout(table.get("protocol_version", int, required=True), tuple(groups))


def _sensecap_frames(table: _Table) -> SensecapFramesLayout:
    return SensecapFramesLayout(_measurement_table(table))


def _sensecap_v2(table: _Table) -> SensecapV2Layout:
    return SensecapV2Layout(_measurement_table(table))


def _cbor(table: _Table) -> CborLayout:
    version = table.get("version", int, required=True)
    keys = []
    for item in table.tables("keys", required=True):
        key = item.get("key", int, required=True)
        if not 1 <= key <= 23:
            raise item.error("key", f"must be 1..23 (one CBOR byte), got {key}")
        quantity = _quantity(item, "quantity")
        keys.append((key, quantity, item.get("low", (int, float)), item.get("high", (int, float))))
        item.done()
    if len({key for key, *_ in keys}) != len(keys):
        raise table.error("keys", "a key is given twice")
    return CborLayout(version, tuple(keys))


def _measurement_table(table: _Table) -> tuple[tuple[int, Quantity, float], ...]:
    """SenseCAP measurement ids → (quantity, factor from the vendor's value into the quantity's unit)."""
    entries = []
    for item in table.tables("measurements"):
        entries.append(
            (item.get("id", int, required=True), _quantity(item, "quantity"), item.get("factor", (int, float), 1))
        )
        item.done()
    return tuple(entries)


_LAYOUT_READERS: dict[str, Callable[[_Table], Any]] = {
    "fixed": _fixed,
    "channels": _channels,
    "decentlab": _decentlab,
    "sensecap-frames": _sensecap_frames,
    "sensecap-v2": _sensecap_v2,
    "adeunis-temp4": lambda table: AdeunisTemp4Layout(_quantity(table, "quantity")),
    "cbor": _cbor,
}


def _quantity(table: _Table, key: str) -> Quantity:
    name = table.get(key, str, required=True)
    try:
        return Quantity(name)
    except ValueError:
        raise table.error(
            key, f"{name!r} is not a contract quantity ({', '.join(q.value for q in Quantity)})"
        ) from None


def _fields(tables: list[_Table], sequential: bool, default_word: str = "") -> tuple[Field, ...]:
    values = []
    cursor = 0
    names: set[str] = set()
    for table in tables:
        spec = _field(table, cursor, default_word)
        if spec.name in names and not spec.repeat_as_list:
            raise table.error("name", f"{spec.name!r} is given twice")
        names.add(spec.name)
        values.append(spec)
        if sequential:
            cursor = spec.end
    return tuple(values)


def _field(table: _Table, cursor: int, default_word: str) -> Field:
    name = table.get("name", str, required=True)
    word_name = table.get("type", str, default_word or None, required=not default_word)
    if word_name not in WORDS:
        raise table.error("type", f"{word_name!r} is not one of {', '.join(WORDS)}")
    word = WORDS[word_name]
    offset = table.get("offset", int, cursor)
    if not 0 <= offset < 255:
        raise table.error("offset", f"must be 0..254, got {offset}")
    shift = table.get("shift", int, 0)
    mask = table.get("mask", int)
    if not 0 <= shift < word.bits:
        raise table.error("shift", f"must be 0..{word.bits - 1} for a {word_name}, got {shift}")
    if mask is not None and not 0 < mask < 1 << word.bits:
        raise table.error("mask", f"must fit a {word_name}, got {mask:#x}")
    scale = _scale(table, word)
    field = Field(
        name=name,
        word=word,
        offset=offset,
        shown=_presentation(table),
        scale=scale,
        measure=_measure(table.table("measure"), word),
        shift=shift,
        mask=mask,
        invalid=tuple(_invalid(item) for item in table.tables("invalid")),
        repeat_as_list=table.get("repeat", str, "") == "list",
        fill=_derived(table, "fill", 0.0),
    )
    table.done()
    return field


def _scale(table: _Table, word: Word) -> Scale:
    divisor = table.get("divisor", (int, float), 1)
    multiplier = table.get("multiplier", (int, float), 1)
    if divisor == 0 or multiplier == 0:
        raise table.error("divisor" if divisor == 0 else "multiplier", "must not be 0")
    bias = table.get("negative_bias", int)
    if bias is not None and word.signed:
        raise table.error("negative_bias", f"applies to unsigned words; {word.name.lower()} is signed")
    return Scale(divisor=divisor, subtract=table.get("subtract", int, 0), multiplier=multiplier, negative_bias=bias)


_SHOWS = ("number", "fixed", "suffix", "label", "described", "boolean", "hidden")


def _presentation(table: _Table) -> Presentation:
    show = table.get("show", str, "number")
    if show not in _SHOWS:
        raise table.error("show", f"{show!r} is not one of {', '.join(_SHOWS)}")
    if show == "fixed":
        digits = table.get("digits", int, required=True)
        if not 0 <= digits <= 20:
            raise table.error("digits", f"must be 0..20, got {digits}")
        return AsFixed(digits)
    if show == "suffix":
        return AsSuffixed(table.get("suffix", str, required=True))
    if show == "label":
        labels = table.table("labels")
        if labels is None:
            raise table.error("labels", 'is required for show = "label"')
        pairs = []
        for key, label in labels.data.items():
            if not re.fullmatch(r"\d+", key) or not isinstance(label, str):
                raise labels.error(key, "labels map a raw number (as key) to a text")
            pairs.append((int(key), label))
            labels.read.add(key)
        return AsLabel(tuple(pairs), table.get("otherwise", str))
    if show == "described":
        return AsDescribed(table.get("display_name", str, required=True), table.get("unit", str))
    if show == "boolean":
        return AsBoolean()
    if show == "hidden":
        return Hidden()
    return AsNumber()


def _invalid(table: _Table) -> Invalid:
    invalid = Invalid(table.get("text", str, required=True), table.get("equals", int), table.get("below", int))
    if (invalid.equals is None) == (invalid.below is None):
        raise table.error("equals", "give exactly one of equals or below")
    table.done()
    return invalid


def _measure(table: _Table | None, word: Word) -> Measure | None:
    if table is None:
        return None
    quantity = _quantity(table, "quantity")
    has_scale = any(key in table.data for key in ("divisor", "multiplier", "subtract", "negative_bias"))
    measure = Measure(
        quantity=quantity,
        scale=_scale(table, word) if has_scale else None,
        flag=table.get("flag", bool, False),
        low=table.get("low", (int, float)),
        high=table.get("high", (int, float)),
        default=_derived(table, "default", None),
    )
    if measure.low is not None and measure.high is not None and measure.low > measure.high:
        raise table.error("low", f"{measure.low} is above high {measure.high}")
    table.done()
    return measure


def _derived(table: _Table, key: str, default: Derived | None) -> Any:
    value = table.get(key, (int, float, str), default)
    if not isinstance(value, str):
        return value
    if value.startswith("@"):
        if value[1:] not in DERIVATIONS:
            raise table.error(key, f"{value!r} names no derivation ({', '.join('@' + d for d in DERIVATIONS)})")
        return DERIVATIONS[value[1:]]
    try:
        source = Quantity(value)
    except ValueError:
        raise table.error(key, f"{value!r} is neither a number, a quantity nor an @derivation") from None
    return lambda values: values[source]
