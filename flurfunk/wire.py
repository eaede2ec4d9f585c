"""The gateway → cloud wire format: a Batch as CBOR, gzip-compressed, with a version field.

Decoding validates everything and names the offending field; it refuses oversized input before and while
decompressing, so a hostile batch costs at most `max_decompressed` bytes of memory.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from pydantic import ValidationError

from flurfunk.contracts import CONTRACT_VERSION, Batch

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
    """The batch as compressed CBOR bytes, ready for the HTTP body."""
    document = {
        "v": batch.version,
        "gateway_id": batch.gateway_id,
        "first_seq": batch.first_seq,
        "last_seq": batch.last_seq,
        "sent_at": _epoch_us(batch.sent_at),
        "readings": [
            {
                "device": r.device,
                "asset": r.asset,
                "quantity": r.quantity.value,
                "value": r.value,
                "time": _epoch_us(r.time),
                "anomaly_score": r.anomaly_score,
                "flags": list(r.flags),
            }
            for r in batch.readings
        ],
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
    readings = document.get("readings", [])
    if not isinstance(readings, list):
        raise BatchFormatError("readings", "expected an array")
    converted = []
    for index, reading in enumerate(readings):
        if not isinstance(reading, dict):
            raise BatchFormatError(f"readings[{index}]", "expected a map")
        converted.append({**reading, "time": _from_epoch_us(reading.get("time"), f"readings[{index}].time")})
    try:
        return Batch.model_validate(
            {
                "version": version,
                "gateway_id": document.get("gateway_id"),
                "first_seq": document.get("first_seq"),
                "last_seq": document.get("last_seq"),
                "sent_at": _from_epoch_us(document.get("sent_at"), "sent_at"),
                "readings": converted,
                "status": document.get("status"),
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise BatchFormatError(_location(first["loc"]), first["msg"]) from error
