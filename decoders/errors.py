"""The errors of the decoders package: what was wrong with a payload, and where."""

from __future__ import annotations


class DecodeError(ValueError):
    """A payload this model cannot decode: names the model, the fPort, the byte offset (if any) and the reason."""

    def __init__(self, model_id: str, f_port: int, reason: str, offset: int | None = None) -> None:
        self.model_id = model_id
        self.f_port = f_port
        self.offset = offset
        self.reason = reason
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"{model_id} (fPort {f_port}){where}: {reason}")


class UnknownModelError(LookupError):
    """No decoder is registered for this model id."""

    def __init__(self, model_id: str, known: list[str]) -> None:
        self.model_id = model_id
        self.known = known
        super().__init__(f"no decoder for device model {model_id!r}; known models: {', '.join(known)}")

    def __str__(self) -> str:
        # LookupError (like KeyError) would otherwise show the repr of the message
        return str(self.args[0])


class SpecError(ValueError):
    """A device spec that cannot be compiled: names the spec file, the field (a dotted path) and the reason."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        super().__init__(f"{source}: {field}: {reason}")
