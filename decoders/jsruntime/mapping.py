"""Reading maps: which values in a JS codec's `data` are which contract quantities, in which unit (a small TOML file
per codec). See decoders/jsruntime/README.md for the format.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flurfunk.contracts import Quantity

from ..decoded import Measurement

MAX_MAP_BYTES = 64 * 1024
MAX_ENTRIES = 200

# Per quantity unit, the units a codec may report it in as (factor, offset): in_quantity_unit = value·factor + offset.
_CONVERSIONS: dict[str, dict[str, tuple[float, float]]] = {
    "m": {"m": (1, 0), "cm": (0.01, 0), "mm": (0.001, 0), "km": (1000, 0)},
    "m³/m³": {"m³/m³": (1, 0), "m3/m3": (1, 0), "%": (0.01, 0), "1": (1, 0)},
    "kPa": {"kPa": (1, 0), "cbar": (1, 0), "Pa": (0.001, 0), "hPa": (0.1, 0), "bar": (100, 0)},
    "°C": {"°C": (1, 0), "C": (1, 0), "degC": (1, 0), "℃": (1, 0), "K": (1, -273.15), "°F": (5 / 9, -160 / 9)},
    "µS/cm": {"µS/cm": (1, 0), "uS/cm": (1, 0), "mS/cm": (1000, 0), "dS/m": (1000, 0), "mS/m": (10, 0)},
    "%": {"%": (1, 0), "%RH": (1, 0), "1": (100, 0)},
    "hPa": {"hPa": (1, 0), "mbar": (1, 0), "Pa": (0.01, 0), "kPa": (10, 0)},
    "mm": {"mm": (1, 0), "cm": (10, 0), "in": (25.4, 0)},
    "m/s": {"m/s": (1, 0), "m⋅s⁻¹": (1, 0), "km/h": (1 / 3.6, 0), "mph": (0.44704, 0), "kn": (0.514444, 0)},
    "°": {"°": (1, 0), "deg": (1, 0)},
    "W/m²": {"W/m²": (1, 0), "W/m2": (1, 0), "W⋅m⁻²": (1, 0)},
    "lx": {"lx": (1, 0), "lux": (1, 0)},
    "V": {"V": (1, 0), "mV": (0.001, 0)},
    "1": {"1": (1, 0), "%": (0.01, 0)},
}

# "2799 mm", "-3.5°C", "24.1": a number, then optionally a unit
_NUMBER_WITH_UNIT = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*")
_ENTRY_KEYS = {"path", "quantity", "unit", "scale", "offset", "labels", "low", "high"}
_TOP_KEYS = {"model", "readings"}


class MappingError(ValueError):
    """A reading map that cannot be used: names the file, the entry and the reason."""

    def __init__(self, source: str, reason: str, entry: int | None = None) -> None:
        self.source = source
        self.entry = entry
        self.reason = reason
        where = f" readings[{entry}]" if entry is not None else ""
        super().__init__(f"reading map {source}{where}: {reason}")


@dataclass(frozen=True)
class ReadingRule:
    """One value of the codec's data as one quantity: value = (number · scale + offset) converted from `unit`."""

    path: tuple[str | int, ...]
    quantity: Quantity
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    labels: Mapping[str, float] | None = None  # for values the codec shows as words: "normal" → 0, "tilt" → 1
    low: float | None = None  # plausible range in the quantity's unit; outside is a warning
    high: float | None = None

    @property
    def dotted(self) -> str:
        return ".".join(str(part) for part in self.path)

    def measure(self, data: Mapping[str, Any]) -> tuple[Measurement | None, str | None]:
        """The measurement this rule finds in `data` and a warning, if any; (None, None) when the value is absent."""
        found: Any = data
        for part in self.path:
            if isinstance(part, int) and isinstance(found, list) and -len(found) <= part < len(found):
                found = found[part]
            elif isinstance(found, Mapping) and str(part) in found:
                found = found[str(part)]
            else:
                return None, None
        if found is None:
            return None, None
        number, unit = self._number(found)
        if number is None:
            return None, f"{self.dotted}: {found!r} is no {self.quantity} value"
        unit = unit or self.unit
        target = self.quantity.unit
        if unit is not None and unit != target:
            factor, offset = _CONVERSIONS.get(target, {}).get(unit, (None, None))
            if factor is None or offset is None:
                return None, f"{self.dotted}: cannot convert {unit!r} to {target} ({self.quantity})"
            # 12 significant digits drop the float noise of the conversion (95.96 kPa is 959.6 hPa, not …99999)
            number = float(f"{number * factor + offset:.12g}")
        if not math.isfinite(number):
            return None, f"{self.dotted}: {found!r} is not a finite number"
        warning = None
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            warning = f"{self.quantity} {number:g} is outside {_range(self.low)}..{_range(self.high)}"
        return Measurement(self.quantity, number), warning

    def _number(self, found: Any) -> tuple[float | None, str | None]:
        unit = None
        if self.labels is not None and isinstance(found, str) and found in self.labels:
            number = float(self.labels[found])
        elif isinstance(found, bool):
            number = 1.0 if found else 0.0
        elif isinstance(found, int | float):
            number = float(found)
        elif isinstance(found, str) and (match := _NUMBER_WITH_UNIT.fullmatch(found)):
            number, unit = float(match.group(1)), match.group(2)
        else:
            return None, None
        return number * self.scale + self.offset, unit


@dataclass(frozen=True)
class ReadingMap:
    """All rules of one codec; `measurements(data)` gives the readings' values and the warnings on the way."""

    rules: tuple[ReadingRule, ...]
    model: str | None = None

    def measurements(self, data: Mapping[str, Any]) -> tuple[tuple[Measurement, ...], tuple[str, ...]]:
        measurements: list[Measurement] = []
        warnings: list[str] = []
        for rule in self.rules:
            measurement, warning = rule.measure(data)
            if measurement is not None:
                measurements.append(measurement)
            if warning is not None:
                warnings.append(warning)
        return tuple(measurements), tuple(warnings)


def load_reading_map(path: str | Path) -> ReadingMap:
    """Read and check a reading map file; MappingError names the file, the entry and what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MappingError(str(path), f"cannot read: {error.strerror or error}") from error
    if len(raw) > MAX_MAP_BYTES:
        raise MappingError(str(path), f"{len(raw)} bytes, more than the limit of {MAX_MAP_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MappingError(str(path), f"not UTF-8 at byte {error.start}") from error
    return parse_reading_map(text, source=str(path))


def parse_reading_map(text: str, source: str = "<text>") -> ReadingMap:
    """A reading map from TOML text; MappingError names `source`, the entry and what is wrong."""
    if len(text.encode("utf-8")) > MAX_MAP_BYTES:
        raise MappingError(source, f"more than the limit of {MAX_MAP_BYTES} bytes")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MappingError(source, f"not TOML: {error}") from error
    unknown = set(document) - _TOP_KEYS
    if unknown:
        raise MappingError(source, f"unknown key(s) {', '.join(sorted(unknown))}; known: model, readings")
    model = document.get("model")
    if model is not None and not isinstance(model, str):
        raise MappingError(source, "model must be a string such as 'dragino/lse01'")
    entries = document.get("readings", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise MappingError(source, "readings must be a list of tables ([[readings]])")
    if len(entries) > MAX_ENTRIES:
        raise MappingError(source, f"{len(entries)} readings, more than the limit of {MAX_ENTRIES}")
    return ReadingMap(tuple(_rule(source, index, entry) for index, entry in enumerate(entries)), model)


def _rule(source: str, index: int, entry: dict[str, Any]) -> ReadingRule:
    def fail(reason: str) -> MappingError:
        return MappingError(source, reason, index)

    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise fail(f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_ENTRY_KEYS))}")
    path_text = entry.get("path")
    if not isinstance(path_text, str) or not path_text.strip():
        raise fail("path is missing: the dotted path of the value in the codec's data, e.g. 'battery_voltage.value'")
    path = tuple(int(part) if part.lstrip("-").isdigit() else part for part in path_text.strip().split("."))
    if any(part == "" for part in path):
        raise fail(f"path {path_text!r} has an empty segment")
    try:
        quantity = Quantity(entry.get("quantity"))
    except ValueError:
        known = ", ".join(q.value for q in Quantity)
        raise fail(f"quantity {entry.get('quantity')!r} is not in the vocabulary ({known})") from None
    unit = entry.get("unit")
    if unit is not None:
        if not isinstance(unit, str):
            raise fail("unit must be a string such as 'mm'")
        if unit != quantity.unit and unit not in _CONVERSIONS.get(quantity.unit, {}):
            accepted = ", ".join(sorted(_CONVERSIONS.get(quantity.unit, {quantity.unit: (1, 0)})))
            raise fail(f"unit {unit!r} cannot be converted to {quantity.unit} ({quantity}); accepted: {accepted}")
    numbers = {}
    for key in ("scale", "offset", "low", "high"):
        value = entry.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise fail(f"{key} must be a number")
        if value is not None and not math.isfinite(value):
            raise fail(f"{key} must be finite")
        numbers[key] = None if value is None else float(value)
    labels = entry.get("labels")
    if labels is not None:
        if not isinstance(labels, dict) or not all(
            isinstance(value, int | float) and not isinstance(value, bool) for value in labels.values()
        ):
            raise fail("labels must be a table of word = number, e.g. { normal = 0, tilt = 1 }")
        labels = {str(word): float(value) for word, value in labels.items()}
    return ReadingRule(
        path=path,
        quantity=quantity,
        unit=unit,
        scale=1.0 if numbers["scale"] is None else numbers["scale"],
        offset=0.0 if numbers["offset"] is None else numbers["offset"],
        labels=labels,
        low=numbers["low"],
        high=numbers["high"],
    )


def _range(bound: float | None) -> str:
    return "" if bound is None else f"{bound:g}"
