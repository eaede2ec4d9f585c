"""The gateway's errors: each says what was wrong and where, so `doctor` and the logs can say it in plain words."""

from __future__ import annotations

from pathlib import Path


class GatewayError(Exception):
    """Base of every error the gateway package raises on purpose."""


class DurableBufferError(GatewayError):
    """The durable buffer could not do what was asked."""


class BufferFullError(DurableBufferError):
    """Appending would take the buffer past its disk quota; nothing was stored.

    The caller counts the uplink as dropped with reason "buffer_full" and raises an alert: the buffer never makes
    room by deleting data the cloud has not acknowledged.
    """

    def __init__(self, needed_bytes: int, used_bytes: int, quota_bytes: int) -> None:
        super().__init__(
            f"buffer full: {needed_bytes} more bytes would exceed the quota "
            f"({used_bytes} of {quota_bytes} bytes in use, unacknowledged or quarantined)"
        )
        self.needed_bytes = needed_bytes
        self.used_bytes = used_bytes
        self.quota_bytes = quota_bytes


class BufferCorruptError(DurableBufferError):
    """The buffer file or one of its entries cannot be read; `path` names the file, `seq` the entry if known."""

    def __init__(self, path: Path, reason: str, seq: int | None = None) -> None:
        where = f"{path} entry {seq}" if seq is not None else str(path)
        super().__init__(f"buffer {where}: {reason}")
        self.path = path
        self.seq = seq
        self.reason = reason


class EntryTooLargeError(DurableBufferError, ValueError):
    """One uplink's readings are more than a single buffer entry may hold."""
