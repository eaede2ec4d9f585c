"""Vendor JavaScript payload codecs (TTN device repository, ChirpStack) run unchanged in an embedded engine with
time and memory limits; a reading map turns their output into contract measurements.
"""

from __future__ import annotations

from .codec import CodecLimits, EncodedDownlink, JsCodec
from .errors import CodecError, CodecLoadError, CodecMemoryError, CodecOutputError, CodecTimeoutError
from .mapping import MappingError, ReadingMap, ReadingRule, load_reading_map, parse_reading_map

__all__ = [
    "CodecError",
    "CodecLimits",
    "CodecLoadError",
    "CodecMemoryError",
    "CodecOutputError",
    "CodecTimeoutError",
    "EncodedDownlink",
    "JsCodec",
    "MappingError",
    "ReadingMap",
    "ReadingRule",
    "load_reading_map",
    "parse_reading_map",
]
