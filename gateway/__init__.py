"""The gateway daemon's core: decode and check uplinks, keep readings in a durable buffer, sync them to the cloud.

Radio sources (Semtech UDP, LoRaWAN frames, LNS MQTT) feed `Pipeline.handle_many`; `SyncClient` drains the buffer.
"""

from gateway.buffer import BufferEntry, BufferStats, DurableBuffer, QuarantinedEntry
from gateway.errors import BufferCorruptError, BufferFullError, DurableBufferError, EntryTooLargeError, GatewayError
from gateway.pipeline import DeviceBinding, DuplicateFilter, Pipeline, PipelineReport
from gateway.sync import Backoff, DrainResult, SyncClient, SyncOutcome, SyncResult

__all__ = [
    "Backoff",
    "BufferCorruptError",
    "BufferEntry",
    "BufferFullError",
    "BufferStats",
    "DeviceBinding",
    "DrainResult",
    "DuplicateFilter",
    "DurableBuffer",
    "DurableBufferError",
    "EntryTooLargeError",
    "GatewayError",
    "Pipeline",
    "PipelineReport",
    "QuarantinedEntry",
    "SyncClient",
    "SyncOutcome",
    "SyncResult",
]
