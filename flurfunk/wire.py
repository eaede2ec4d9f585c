"""The gateway → cloud wire format: a Batch as CBOR, gzip-compressed, with a version field.

Decoding validates everything and names the offending field; it refuses oversized input before and while
decompressing, so a hostile batch costs at most `max_decompressed` bytes of memory.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from pydantic import TypeAdapter, ValidationError

from flurfunk.contracts import (
    CONTRACT_VERSION,
    MAX_BATCH_READINGS,
    Batch,
    Eui64,
    Quantity,
    Reading,
    readings_from_checked_columns,
)

MEDIA_TYPE = "application/vnd.flurfunk.batch+cbor"
MAX_COMPRESSED_BYTES = 4 * 1024 * 1024
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024


class BatchFormatError(ValueError):
    """A batch could not be read; `field` names where (a dotted path), `reason` says what was wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _epoch_us(moment: datetime) -> int:
    """Exact integer microseconds since the epoch: Python datetimes round-trip without loss."""
    return (moment - _EPOCH) // _MICROSECOND


def _from_epoch_us(value: Any, field: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BatchFormatError(field, f"expected integer epoch microseconds, got {type(value).__name__}")
    try:
        return _EPOCH + value * _MICROSECOND
    except (OverflowError, OSError, ValueError) as error:
        raise BatchFormatError(field, f"timestamp out of range: {value}") from error


def encode_batch(batch: Batch) -> bytes:
    """The batch as compressed CBOR bytes, ready for the HTTP body.

    Readings travel as columns, with devices, assets and quantities sent once each and referenced by index: a
    batch repeats the same few hundred sensors, and the cloud validates each distinct name once.
    """
    devices: dict[str, int] = {}
    assets: dict[str, int] = {}
    quantities: dict[str, int] = {}
    readings = batch.readings
    document = {
        "v": batch.version,
        "gateway_id": batch.gateway_id,
        "first_seq": batch.first_seq,
        "last_seq": batch.last_seq,
        "sent_at": _epoch_us(batch.sent_at),
        "readings": {
            "device": [devices.setdefault(r.device, len(devices)) for r in readings],
            "asset": [assets.setdefault(r.asset, len(assets)) for r in readings],
            "quantity": [quantities.setdefault(r.quantity.value, len(quantities)) for r in readings],
            "value": [r.value for r in readings],
            "time": [_epoch_us(r.time) for r in readings],
            "anomaly_score": [r.anomaly_score for r in readings],
            "flags": [list(r.flags) for r in readings],
        },
        "devices": list(devices),
        "assets": list(assets),
        "quantities": list(quantities),
        "status": batch.status.model_dump(mode="json") if batch.status else None,
    }
    return zlib.compress(cbor2.dumps(document), level=6)


def _decompress(data: bytes, max_decompressed: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, max_decompressed)
    except zlib.error as error:
        raise BatchFormatError("body", f"not zlib-compressed data ({error})") from error
    if inflater.unconsumed_tail:
        raise BatchFormatError("body", f"decompresses to more than {max_decompressed} bytes")
    if not inflater.eof:
        raise BatchFormatError("body", "compressed data is truncated")
    if inflater.unused_data:
        raise BatchFormatError("body", "trailing bytes after the compressed data")
    return raw


def _location(error_loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in error_loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "batch"


_COLUMNS = ("device", "asset", "quantity", "value", "time", "anomaly_score", "flags")
_EUI64 = TypeAdapter(Eui64)
_FLAG = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _names(document: dict[str, Any], key: str, check: Callable[[Any], Any], column: str) -> list[Any]:
    """A table of distinct names, each checked once; an error names the first reading that uses a bad one."""
    names = document.get(key)
    if not isinstance(names, list):
        raise BatchFormatError(key, "expected an array")
    checked = []
    for index, name in enumerate(names):
        try:
            checked.append(check(name))
        except (ValueError, ValidationError) as error:
            detail = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
            raise BatchFormatError(f"{key}[{index}]", f"not a valid {column}: {detail}") from error
    return checked


def _check_asset(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 64:
        raise ValueError(f"expected a string of 1 to 64 characters, got {name!r:.80}")
    return name


def _check_flags(flags: Any) -> tuple[str, ...]:
    if not isinstance(flags, list):
        raise ValueError("expected an array of flag names")
    for flag in flags:
        if not isinstance(flag, str) or not _FLAG.fullmatch(flag):
            raise ValueError(f"flag must be a snake_case name, got {flag!r:.80}")
    return tuple(sorted(set(flags)))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r:.80}")
    return float(value)


def decode_batch(
    data: bytes,
    max_compressed: int = MAX_COMPRESSED_BYTES,
    max_decompressed: int = MAX_DECOMPRESSED_BYTES,
) -> Batch:
    """The Batch in `data`; raises BatchFormatError naming the field for anything malformed or oversized."""
    if len(data) > max_compressed:
        raise BatchFormatError("body", f"{len(data)} bytes is more than the limit of {max_compressed}")
    raw = _decompress(data, max_decompressed)
    try:
        document = cbor2.loads(raw)
    except Exception as error:  # cbor2 raises several types for hostile input; all mean "not CBOR"
        raise BatchFormatError("body", f"not valid CBOR ({error})") from error
    if not isinstance(document, dict):
        raise BatchFormatError("batch", f"expected a CBOR map, got {type(document).__name__}")
    version = document.get("v")
    if version != CONTRACT_VERSION:
        raise BatchFormatError("v", f"unsupported batch version {version!r} (expected {CONTRACT_VERSION})")
    try:
        header = Batch.model_validate(
            {
                "version": version,
                "gateway_id": document.get("gateway_id"),
                "first_seq": document.get("first_seq"),
                "last_seq": document.get("last_seq"),
                "sent_at": _from_epoch_us(document.get("sent_at"), "sent_at"),
                "status": document.get("status"),
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise BatchFormatError(_location(first["loc"]), first["msg"]) from error
    return header.model_copy(update={"readings": _decode_readings(document)})


def _decode_readings(document: dict[str, Any]) -> tuple[Reading, ...]:
    columns = document.get("readings")
    if not isinstance(columns, dict):
        raise BatchFormatError("readings", "expected a map of columns")
    for name in _COLUMNS:
        if not isinstance(columns.get(name), list):
            raise BatchFormatError(f"readings.{name}", "expected an array")
    extra = set(columns) - set(_COLUMNS)
    if extra:
        raise BatchFormatError("readings", f"unknown columns {sorted(map(str, extra))}")
    count = len(columns["device"])
    if count > MAX_BATCH_READINGS:
        raise BatchFormatError("readings", f"{count} readings is more than the limit of {MAX_BATCH_READINGS}")
    for name in _COLUMNS:
        if len(columns[name]) != count:
            raise BatchFormatError(f"readings.{name}", f"has {len(columns[name])} entries, expected {count}")
    devices = _names(document, "devices", _EUI64.validate_python, "device EUI-64")
    assets = _names(document, "assets", _check_asset, "asset id")
    quantities = _names(document, "quantities", Quantity, "quantity")
    return tuple(
        readings_from_checked_columns(
            _names_column(columns, "device", devices),
            _names_column(columns, "asset", assets),
            _names_column(columns, "quantity", quantities),
            _numbers_column(columns, "value", minimum=-math.inf),
            _times_column(columns),
            _numbers_column(columns, "anomaly_score", minimum=0.0),
            _flags_column(columns),
        )
    )


# Each column is checked whole on the fast path; only when that fails does a per-entry pass find and name the first
# bad entry (with the same messages as ever), so a valid batch costs one comprehension per column.


def _names_column(columns: dict[str, Any], field: str, table: list[Any]) -> list[Any]:
    references = columns[field]
    size = len(table)
    if all(reference.__class__ is int and 0 <= reference < size for reference in references):
        return [table[reference] for reference in references]
    for index, reference in enumerate(references):
        if isinstance(reference, bool) or not isinstance(reference, int) or not 0 <= reference < size:
            raise BatchFormatError(
                f"readings[{index}].{field}", f"index {reference!r:.40} is not in the table of {size} names"
            )
    return [table[reference] for reference in references]


def _numbers_column(columns: dict[str, Any], field: str, minimum: float) -> list[float]:
    numbers = columns[field]
    # `-inf < number < inf` is False for NaN and both infinities: finite, as Reading requires.
    if all(number.__class__ is float and -math.inf < number < math.inf and number >= minimum for number in numbers):
        return numbers
    checked = []
    for index, number in enumerate(numbers):
        try:
            value = _number(number)
            if value < minimum:
                raise ValueError(f"must not be negative, got {value}")
        except ValueError as error:
            raise BatchFormatError(f"readings[{index}].{field}", str(error)) from error
        checked.append(value)
    return checked


def _times_column(columns: dict[str, Any]) -> list[datetime]:
    times = columns["time"]
    if all(moment.__class__ is int for moment in times):
        try:
            return [_EPOCH + moment * _MICROSECOND for moment in times]
        except (OverflowError, ValueError):
            pass  # the per-entry pass below names the one out of range
    return [_from_epoch_us(moment, f"readings[{index}].time") for index, moment in enumerate(times)]


def _flags_column(columns: dict[str, Any]) -> list[tuple[str, ...]]:
    checked: list[tuple[str, ...]] = []
    for index, flags in enumerate(columns["flags"]):
        if flags.__class__ is list and not flags:
            checked.append(())
            continue
        try:
            checked.append(_check_flags(flags))
        except ValueError as error:
            raise BatchFormatError(f"readings[{index}].flags", str(error)) from error
    return checked
