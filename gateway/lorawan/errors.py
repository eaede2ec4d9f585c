"""Errors of the LoRaWAN frame layer and the Semtech UDP protocol: each names what was wrong (never a key)."""

from __future__ import annotations

from pathlib import Path

from gateway.errors import GatewayError


class FrameError(GatewayError, ValueError):
    """A PHYPayload that cannot be parsed; `reason` is the counter name (e.g. "malformed_frame")."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class GwmpError(GatewayError, ValueError):
    """A Semtech UDP (GWMP v2) datagram that cannot be used; `reason` is the counter name (e.g. "bad_json")."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class SessionConfigError(GatewayError, ValueError):
    """The device-session bundle is unreadable or invalid; the message names the file and entry, never key bytes."""


class KeyFileModeError(SessionConfigError):
    """A key file is readable by others than its owner (mode wider than 0600)."""

    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(f"{path}: holds device keys but has mode {mode:04o}; allow only its owner (chmod 600 {path})")
        self.path = path
        self.mode = mode
