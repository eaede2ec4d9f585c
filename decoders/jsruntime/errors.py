"""The errors of the JS codec runtime: every JS failure is a DecodeError naming the codec and, if known, the line."""

from __future__ import annotations

from ..errors import DecodeError


class CodecError(DecodeError):
    """A JS codec failed: it threw, answered `errors`, or broke a rule of the runtime.

    A DecodeError, so callers that handle native decoders handle codecs too; `codec` names the codec (its file name
    or model id) and `line` the codec's source line where the engine reports one.
    """

    def __init__(self, codec: str, reason: str, *, f_port: int | None = None, line: int | None = None) -> None:
        # DecodeError's own message has no place for a line, so set its attributes and build ours
        self.model_id = codec
        self.codec = codec
        self.f_port = f_port  # type: ignore[assignment]  # None: the failure was not about one uplink
        self.offset = None
        self.reason = reason
        self.line = line
        port = f" (fPort {f_port})" if f_port is not None else ""
        where = f" at line {line}" if line is not None else ""
        ValueError.__init__(self, f"codec {codec}{port}{where}: {reason}")


class CodecLoadError(CodecError):
    """The codec does not compile, its top-level code fails, or it defines no function the runtime can call."""


class CodecTimeoutError(CodecError):
    """The codec ran past its time limit and was stopped."""


class CodecMemoryError(CodecError):
    """The codec tried to use more memory than its limit allows and was stopped."""


class CodecOutputError(CodecError):
    """The codec returned something that is not the expected JSON-shaped answer (or too much of it)."""
