"""Run a vendor's JavaScript payload codec (The Things Network device repository, ChirpStack v4 and v3) unchanged,
in QuickJS-ng, sloppy mode, compiled once, with a time and a memory limit on every call.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import quickjs

from ..decoded import Decoded
from .errors import CodecError, CodecLoadError, CodecMemoryError, CodecOutputError, CodecTimeoutError
from .mapping import ReadingMap

MAX_PAYLOAD_BYTES = 255  # as the native decoders: nothing longer is an uplink
MAX_SOURCE_BYTES = 1024 * 1024  # the largest codecs in the device repository are ~200 KB

# The glue between Python and the codec. Scripts share one global scope, so the codec's functions are found by
# name whether it declares them with `function`, `var` or `const`. Bytes travel as a Latin-1 string (one char per
# byte) and answers as JSON text (or "!" and why there is none): both far cheaper than converting objects across
# the boundary.
_GLUE = r"""
var __flurfunk_bytes = function (raw) {
  var bytes = new Array(raw.length);
  for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
};
var __flurfunk_answer = function (result) {
  var text;
  try { text = JSON.stringify(result); } catch (error) { return "!" + String(error); }
  return text === undefined ? "!it returned " + (typeof result) : text;
};
var __flurfunk_uplink = function (raw, fPort, recvTime, variables) {
  var bytes = __flurfunk_bytes(raw), vars = JSON.parse(variables);
  if (typeof decodeUplink === "function")
    return __flurfunk_answer(decodeUplink({bytes: bytes, fPort: fPort, recvTime: new Date(recvTime), variables: vars}));
  if (typeof Decode === "function") return __flurfunk_answer({data: Decode(fPort, bytes, vars)});
  return __flurfunk_answer({data: Decoder(bytes, fPort)});
};
var __flurfunk_downlink = function (raw, fPort, recvTime, variables) {
  return __flurfunk_answer(decodeDownlink({bytes: __flurfunk_bytes(raw), fPort: fPort, recvTime: new Date(recvTime),
                                           variables: JSON.parse(variables)}));
};
var __flurfunk_encode = function (data, fPort, variables) {
  var input = JSON.parse(data), vars = JSON.parse(variables);
  if (typeof encodeDownlink === "function")
    return __flurfunk_answer(encodeDownlink({data: input, fPort: fPort === null ? undefined : fPort, variables: vars}));
  return __flurfunk_answer({bytes: Encode(fPort, input, vars), fPort: fPort});
};
var __flurfunk_entries = function () {
  var names = ["decodeUplink", "Decode", "Decoder", "decodeDownlink", "encodeDownlink", "Encode"], found = [];
  for (var i = 0; i < names.length; i++) if (eval("typeof " + names[i]) === "function") found.push(names[i]);
  return found.join(",");
};
"""

# "    at decodeUplink (<input>:12:5)" or, for a syntax error, "    at <input>:3:14"
_FRAME = re.compile(r"at (?:(\S+) \()?<input>:(\d+)")


@dataclass(frozen=True)
class CodecLimits:
    """What one codec call may use. The time is CPU time of the process, as the engine measures it; the memory is
    the whole JS runtime of the codec (its compiled code, globals and what the call allocates)."""

    time_limit_s: float = 0.1  # ChirpStack's default
    memory_limit_bytes: int = 16 * 1024 * 1024
    stack_limit_bytes: int = 512 * 1024
    max_answer_bytes: int = 64 * 1024


@dataclass(frozen=True)
class EncodedDownlink:
    """What `encodeDownlink` made of a command: the port, the bytes to send and the codec's warnings."""

    f_port: int
    payload: bytes
    warnings: tuple[str, ...] = ()


class _Engine(threading.local):
    # A QuickJS runtime must stay on the thread that made it (its stack checks use that thread's stack), so each
    # thread that calls a codec gets its own copy, compiled on first use.
    context: quickjs.Context | None = None
    functions: dict[str, Any]


class JsCodec:
    """One vendor codec, compiled once per thread; each call is limited in time and memory.

    `decode_uplink` returns the same `Decoded` as the native decoders: `fields` is the codec's `data` after a JSON
    round trip, `measurements` come from the reading map (none without one). Every failure is a CodecError, a
    subclass of decoders.DecodeError.
    """

    def __init__(
        self,
        source: str,
        *,
        name: str = "codec.js",
        reading_map: ReadingMap | None = None,
        limits: CodecLimits | None = None,
    ) -> None:
        self.name = name
        self.reading_map = reading_map
        self.limits = limits or CodecLimits()
        if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
            raise CodecLoadError(name, f"source is larger than the limit of {MAX_SOURCE_BYTES} bytes")
        self._source = source
        self._engine = _Engine()
        self.entries = frozenset(filter(None, str(self._context().get("__flurfunk_entries")()).split(",")))
        if not self.entries & {"decodeUplink", "Decode", "Decoder"}:
            raise CodecLoadError(
                name, "defines none of decodeUplink(input), Decode(fPort, bytes, variables), Decoder(bytes, fPort)"
            )

    @classmethod
    def from_file(
        cls, path: str | Path, *, reading_map: ReadingMap | None = None, limits: CodecLimits | None = None
    ) -> JsCodec:
        """Load a codec file; its file name names it in errors."""
        path = Path(path)
        try:
            size = path.stat().st_size
            if size > MAX_SOURCE_BYTES:
                raise CodecLoadError(path.name, f"{size} bytes, more than the limit of {MAX_SOURCE_BYTES}")
            source = path.read_text(encoding="utf-8")
        except OSError as error:
            raise CodecLoadError(path.name, f"cannot read {path}: {error.strerror or error}") from error
        except UnicodeDecodeError as error:
            raise CodecLoadError(path.name, f"not UTF-8 at byte {error.start}") from error
        return cls(source, name=path.name, reading_map=reading_map, limits=limits)

    # --- the codec's functions -----------------------------------------------------------------------------------

    def decode_uplink(
        self,
        f_port: int,
        payload: bytes,
        *,
        received_at: datetime | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> Decoded:
        """Decode one uplink with the codec's `decodeUplink` (or v3 `Decode`, v2 `Decoder`)."""
        self._check_frame(f_port, payload)
        answer = self._call("__flurfunk_uplink", f_port, payload.decode("latin-1"), _millis(received_at), variables)
        data, warnings = self._data(answer, f_port, "decodeUplink")
        measurements: tuple[Any, ...] = ()
        if self.reading_map is not None:
            measurements, map_warnings = self.reading_map.measurements(data)
            warnings += map_warnings
        return Decoded(self.reading_map_model or self.name, f_port, data, measurements, warnings)

    def decode_downlink(self, f_port: int, payload: bytes, *, variables: Mapping[str, Any] | None = None) -> Decoded:
        """Decode a downlink with the codec's `decodeDownlink` (what a command's bytes mean)."""
        self._require("decodeDownlink")
        self._check_frame(f_port, payload)
        answer = self._call("__flurfunk_downlink", f_port, payload.decode("latin-1"), _millis(None), variables)
        data, warnings = self._data(answer, f_port, "decodeDownlink")
        return Decoded(self.reading_map_model or self.name, f_port, data, (), warnings)

    def encode_downlink(
        self, data: Mapping[str, Any], *, f_port: int | None = None, variables: Mapping[str, Any] | None = None
    ) -> EncodedDownlink:
        """The downlink the codec's `encodeDownlink` (or v3 `Encode`) makes of a command object."""
        if not self.entries & {"encodeDownlink", "Encode"}:
            raise CodecLoadError(self.name, "defines neither encodeDownlink(input) nor Encode(fPort, obj, variables)")
        if "encodeDownlink" not in self.entries and f_port is None:
            raise CodecError(self.name, "Encode(fPort, obj, variables) needs an fPort")
        try:
            command = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise CodecError(self.name, f"the command is not JSON: {error}", f_port=f_port) from error
        answer = self._call("__flurfunk_encode", f_port, command, None, variables, raw_is_json=True)
        if not isinstance(answer, dict):
            raise CodecOutputError(self.name, f"encodeDownlink returned {_kind(answer)}, not an object", f_port=f_port)
        self._raise_errors(answer, f_port)
        port = answer.get("fPort", f_port)
        if port is None:
            port = f_port
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 255:
            raise CodecOutputError(self.name, f"encodeDownlink gave fPort {port!r}, not 1..255", f_port=f_port)
        raw = answer.get("bytes")
        if not isinstance(raw, list) or len(raw) > MAX_PAYLOAD_BYTES:
            raise CodecOutputError(
                self.name, f"encodeDownlink gave no list of at most {MAX_PAYLOAD_BYTES} bytes", f_port=port
            )
        for index, value in enumerate(raw):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
                raise CodecOutputError(self.name, f"bytes[{index}] is {value!r}, not a byte 0..255", f_port=port)
        return EncodedDownlink(port, bytes(raw), _warnings(answer))

    @property
    def reading_map_model(self) -> str | None:
        return None if self.reading_map is None else self.reading_map.model

    # --- the engine ----------------------------------------------------------------------------------------------

    def _context(self) -> quickjs.Context:
        context = self._engine.context
        if context is not None:
            return context
        context = quickjs.Context()
        context.set_memory_limit(self.limits.memory_limit_bytes)
        context.set_max_stack_size(self.limits.stack_limit_bytes)
        context.set_time_limit(self.limits.time_limit_s)
        try:
            # a script, not a module: sloppy mode, as The Things Stack runs codecs (implicit globals work)
            context.eval(self._source)
        except quickjs.JSException as error:
            raise self._failure(error, None, CodecLoadError) from None
        context.eval(_GLUE)
        self._engine.context = context
        self._engine.functions = {}
        return context

    def _call(
        self,
        glue: str,
        f_port: int | None,
        raw: str,
        recv_millis: float | None,
        variables: Mapping[str, Any] | None,
        *,
        raw_is_json: bool = False,
    ) -> Any:
        try:
            variables_json = "{}" if not variables else json.dumps(dict(variables), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise CodecError(self.name, f"variables are not JSON: {error}", f_port=f_port) from error
        context = self._context()
        function = self._engine.functions.get(glue)
        if function is None:
            function = self._engine.functions[glue] = context.get(glue)
        try:
            if raw_is_json:
                text = function(raw, f_port, variables_json)
            else:
                text = function(raw, f_port, recv_millis, variables_json)
        except quickjs.JSException as error:
            # a stopped or exhausted runtime may hold half-built state: the next call starts from a fresh one
            failure = self._failure(error, f_port, CodecError)
            if isinstance(failure, CodecTimeoutError | CodecMemoryError):
                self._engine.context = None
            raise failure from None
        if not isinstance(text, str):
            raise CodecOutputError(self.name, f"the runtime got {_kind(text)} instead of JSON text", f_port=f_port)
        if text.startswith("!"):  # the glue's mark: JSON text never starts with "!"
            raise CodecOutputError(self.name, f"the answer is not JSON: {text[1:]}", f_port=f_port)
        if len(text) > self.limits.max_answer_bytes:
            raise CodecOutputError(
                self.name,
                f"the answer has {len(text)} characters, more than the limit of {self.limits.max_answer_bytes}",
                f_port=f_port,
            )
        return json.loads(text)

    def _failure(self, error: Exception, f_port: int | None, kind: type[CodecError]) -> CodecError:
        message = str(error).strip()
        headline = message.splitlines()[0] if message else type(error).__name__
        line = _codec_line(message)
        if headline == "InternalError: interrupted":
            limit_ms = self.limits.time_limit_s * 1000
            return CodecTimeoutError(
                self.name, f"stopped after its time limit of {limit_ms:g} ms", f_port=f_port, line=line
            )
        if headline == "InternalError: out of memory":
            limit_mib = self.limits.memory_limit_bytes / (1024 * 1024)
            return CodecMemoryError(
                self.name, f"stopped at its memory limit of {limit_mib:g} MiB", f_port=f_port, line=line
            )
        if isinstance(error, quickjs.StackOverflow) or headline.startswith("RangeError: Maximum call stack"):
            return kind(self.name, "recursion too deep (stack limit)", f_port=f_port, line=line)
        return kind(self.name, headline, f_port=f_port, line=line)

    # --- answers -------------------------------------------------------------------------------------------------

    def _data(self, answer: Any, f_port: int, function: str) -> tuple[dict[str, Any], tuple[str, ...]]:
        if not isinstance(answer, dict):
            raise CodecOutputError(
                self.name,
                f"{function} returned {_kind(answer)}, not an object {{data, errors, warnings}}",
                f_port=f_port,
            )
        self._raise_errors(answer, f_port)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise CodecOutputError(self.name, f"{function} returned no data object ({_kind(data)})", f_port=f_port)
        return data, _warnings(answer)

    def _raise_errors(self, answer: dict[str, Any], f_port: int | None) -> None:
        errors = answer.get("errors")
        if errors:
            # the vendor's own words, as the native decoders give them
            reasons = errors if isinstance(errors, list) else [errors]
            raise CodecError(self.name, "; ".join(str(reason) for reason in reasons), f_port=f_port)

    def _check_frame(self, f_port: int, payload: bytes) -> None:
        if isinstance(f_port, bool) or not isinstance(f_port, int) or not 0 <= f_port <= 255:
            raise CodecError(self.name, f"fPort {f_port!r} is outside 0..255", f_port=None)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise CodecError(
                self.name, f"{len(payload)} bytes, more than the limit of {MAX_PAYLOAD_BYTES}", f_port=f_port
            )

    def _require(self, entry: str) -> None:
        if entry not in self.entries:
            raise CodecLoadError(self.name, f"defines no {entry}(input)")


def _millis(received_at: datetime | None) -> float:
    return (received_at or datetime.now(UTC)).timestamp() * 1000


def _codec_line(message: str) -> int | None:
    # the innermost frame in the codec's own code; the glue's frames say nothing about the codec
    for match in _FRAME.finditer(message):
        if not (match.group(1) or "").startswith("__flurfunk"):
            return int(match.group(2))
    return None


def _warnings(answer: dict[str, Any]) -> tuple[str, ...]:
    warnings = answer.get("warnings") or []
    return tuple(str(warning) for warning in (warnings if isinstance(warnings, list) else [warnings]))


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
