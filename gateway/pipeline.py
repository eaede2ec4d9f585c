"""The gateway pipeline: uplinks in, checked readings out into the durable buffer — dedup, decode, edge checks.

Bad input never raises out of `Pipeline.handle_many`: each refused uplink is counted with its reason and logged
with its dev_eui and f_cnt (never keys).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import TypeAdapter

import decoders
from edge.anomaly import AnomalyScorer, default_scorer
from flurfunk.contracts import Asset, AssetKind, Device, Eui64, Quantity, Reading, Uplink, utc_now
from gateway.buffer import DurableBuffer
from gateway.checks import (
    CLOCK_UNSYNCED,
    check_physical_range,
    clock_is_plausible,
    fill_reading,
    has_fill_geometry,
    with_flags,
)
from gateway.errors import BufferFullError, EntryTooLargeError

log = logging.getLogger(__name__)

UNKNOWN_DEVICE = "unknown_device"
DECODE_ERROR = "decode_error"
BUFFER_FULL = "buffer_full"
ENTRY_TOO_LARGE = "entry_too_large"
INVALID_UPLINK = "invalid_uplink"
CHECK_ERROR = "check_error"

DEFAULT_DEDUP_WINDOW = timedelta(minutes=10)
DEFAULT_DEDUP_CAPACITY = 20_000
MAX_REVISIONS_DUE = 10_000  # revised verdicts kept in memory while the buffer is full

_EUI64 = TypeAdapter(Eui64)


class DecodedUplink(Protocol):
    """What a decoder gives back (decoders.Decoded satisfies it)."""

    def readings(self, device: str, asset: str, time: datetime) -> list[Reading]: ...


DecodeFunction = Callable[[str, int, bytes], DecodedUplink]


@dataclass(frozen=True)
class DeviceBinding:
    """A sensor the gateway serves, with the asset it watches."""

    device: Device
    asset: Asset

    def __post_init__(self) -> None:
        if self.device.asset != self.asset.id:
            raise ValueError(f"device {self.device.dev_eui} watches asset {self.device.asset!r}, not {self.asset.id!r}")


@dataclass(frozen=True)
class PipelineReport:
    """What became of a group of uplinks: stored, heard twice, or dropped (by reason); readings stored and flagged."""

    accepted: int = 0
    duplicates: int = 0
    readings: int = 0
    dropped: Mapping[str, int] = field(default_factory=dict)
    flagged: Mapping[str, int] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


DedupKey = tuple[str, int, bytes]


class DuplicateFilter:
    """Remembers the (dev_eui, f_cnt, payload) keys of stored frames: a frame heard again within `window` is a
    duplicate.

    Checking and remembering are separate steps: the pipeline remembers a key only once its uplink is settled
    (stored, or dropped for a reason a retry cannot change). A frame the full buffer refused must not be taken
    for a duplicate when its source sends it again, or it would be acknowledged though it was never stored.
    Memory is bounded by `capacity` keys of a few dozen bytes each; the oldest are forgotten first.
    """

    def __init__(self, window: timedelta = DEFAULT_DEDUP_WINDOW, capacity: int = DEFAULT_DEDUP_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.window = window
        self.capacity = capacity
        self._seen: OrderedDict[DedupKey, datetime] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    @staticmethod
    def key_of(uplink: Uplink) -> DedupKey:
        # A short digest stands for the payload: the same device and f_cnt with a different payload is a new frame.
        return (uplink.dev_eui, uplink.f_cnt, hashlib.blake2b(uplink.payload, digest_size=8).digest())

    def is_duplicate(self, key: DedupKey, heard_at: datetime) -> bool:
        """Whether a frame with this key was remembered within the window around `heard_at` (remembers nothing)."""
        first_heard = self._seen.get(key)
        return first_heard is not None and abs(heard_at - first_heard) <= self.window

    def remember(self, key: DedupKey, heard_at: datetime) -> None:
        """Remember a settled frame; forgets the oldest keys beyond the capacity and those out of the window."""
        self._seen[key] = heard_at
        self._seen.move_to_end(key)
        self._forget_old(heard_at)

    def _forget_old(self, now: datetime) -> None:
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        # Insertion order is nearly time order (sources deliver in order); stop at the first key still fresh.
        while self._seen:
            oldest_key, oldest_at = next(iter(self._seen.items()))
            if now - oldest_at <= self.window:
                break
            del self._seen[oldest_key]


class Pipeline:
    """Turns uplinks into checked readings in the durable buffer, one group commit per `handle_many` call."""

    def __init__(
        self,
        gateway_id: str,
        devices: Mapping[str, DeviceBinding],
        buffer: DurableBuffer,
        decode: DecodeFunction = decoders.decode,
        *,
        dedup: DuplicateFilter | None = None,
        clock: Callable[[], datetime] = utc_now,
        scorer: AnomalyScorer | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        # The edge anomaly scorer: the shipped model bundle if there is one, else rules only.
        self.scorer = scorer if scorer is not None else default_scorer()
        self._devices: dict[str, DeviceBinding] = {}
        for dev_eui, binding in devices.items():
            if _EUI64.validate_python(dev_eui) != binding.device.dev_eui:
                raise ValueError(f"device table key {dev_eui!r} does not match its device {binding.device.dev_eui}")
            self._devices[binding.device.dev_eui] = binding
        self._buffer = buffer
        self._decode = decode
        self._dedup = dedup if dedup is not None else DuplicateFilter()
        self._clock = clock
        self._dropped_totals: Counter[str] = Counter()
        self._assets_without_geometry: set[str] = set()
        self._revisions_due: list[list[Reading]] = []  # revised verdicts not yet in the buffer (it was full)

    @property
    def dropped_totals(self) -> dict[str, int]:
        """Uplinks dropped since start, by reason (reported to the cloud in the gateway status)."""
        return dict(self._dropped_totals)

    def handle_many(self, uplinks: Sequence[Uplink]) -> PipelineReport:
        """Dedup, decode, check and store the uplinks; what became of them. Raises only if the disk fails.

        The edge model scores all uplinks of the call in one batch. Readings of earlier calls whose verdict the
        scorer revised (a spike is certain only once the next reading is back) are stored again, with their new
        flags, in the entry of the uplink whose reading revised them: the cloud overwrites a point of the same
        series and time, and an uplink stays one buffer entry.
        """
        dropped: Counter[str] = Counter()
        flagged: Counter[str] = Counter()
        duplicates = 0
        decoded: list[tuple[Uplink, Asset, list[Reading]]] = []
        heard_now: dict[DedupKey, datetime] = {}  # keys of this call, remembered once their uplinks are settled
        window = self._dedup.window
        now = self._clock()
        for uplink in uplinks:
            if not isinstance(uplink, Uplink):
                log.warning("uplink dropped reason=%s: got %s", INVALID_UPLINK, type(uplink).__name__)
                dropped[INVALID_UPLINK] += 1
                continue
            key = self._dedup.key_of(uplink)
            heard_at = uplink.received_at
            earlier = heard_now.get(key)
            if (earlier is not None and abs(heard_at - earlier) <= window) or self._dedup.is_duplicate(key, heard_at):
                duplicates += 1
                continue
            heard_now[key] = heard_at
            outcome = self._readings_of(uplink)
            if isinstance(outcome, str):
                dropped[outcome] += 1
                continue
            decoded.append((uplink, outcome[0], outcome[1]))

        to_store: list[tuple[Uplink, list[Reading]]] = []
        for (uplink, asset, _), scored in zip(decoded, self._scored([d[2] for d in decoded]), strict=True):
            try:
                if scored is None:
                    raise RuntimeError("the anomaly scorer failed on this uplink")
                checked = self._checked(scored, asset, uplink, now)
            except Exception:
                self._log_check_error(uplink)
                dropped[CHECK_ERROR] += 1
                continue
            for reading in checked:
                flagged.update(reading.flags)
            to_store.append((uplink, checked))

        revised = self._attach(to_store, self._revision_groups(now))
        accepted, stored_readings, refused = self._store(to_store, revised, dropped)
        # Only now, with the commit done: a key of an uplink the buffer refused stays unknown, so a retry is stored.
        for key, heard_at in heard_now.items():
            if key not in refused:
                self._dedup.remember(key, heard_at)
        self._dropped_totals.update(dropped)
        return PipelineReport(
            accepted=accepted,
            duplicates=duplicates,
            readings=stored_readings,
            dropped=dict(dropped),
            flagged=dict(flagged),
        )

    def _readings_of(self, uplink: Uplink) -> tuple[Asset, list[Reading]] | str:
        """The decoded, range-checked readings of one uplink with the asset they belong to, or the drop reason."""
        binding = self._devices.get(uplink.dev_eui)
        if binding is None:
            self._log_drop(uplink, UNKNOWN_DEVICE, "no such device on this gateway")
            return UNKNOWN_DEVICE
        try:
            decoded = self._decode(binding.device.model_id, uplink.f_port, uplink.payload)
            readings = decoded.readings(binding.device.dev_eui, binding.asset.id, uplink.received_at)
        except Exception as error:  # a decoder failing in any way on one payload must not stop the others
            self._log_drop(uplink, DECODE_ERROR, f"{type(error).__name__}: {error}", model_id=binding.device.model_id)
            return DECODE_ERROR
        try:
            return binding.asset, [check_physical_range(reading) for reading in readings]
        except Exception:
            self._log_check_error(uplink)
            return CHECK_ERROR

    def _scored(self, groups: list[list[Reading]]) -> list[list[Reading] | None]:
        """The groups scored in one model call; if that fails, one by one (None for a group that fails alone)."""
        try:
            return list(self.scorer.score_many(groups))
        except Exception:
            log.exception(
                "batch anomaly scoring failed; scoring uplink by uplink", extra={"gateway_id": self.gateway_id}
            )
        scored: list[list[Reading] | None] = []
        for group in groups:
            try:
                scored.append(self.scorer.score(group))
            except Exception:
                scored.append(None)
        return scored

    def _revision_groups(self, now: datetime) -> list[list[Reading]]:
        """The scorer's revised readings as buffer groups, each with what the pipeline derives from it (fill ratio,
        clock flag), like the original."""
        groups = []
        for revised in self.scorer.take_revisions():
            binding = self._devices.get(revised.device)
            group = [revised]
            if binding is not None and (fill := fill_reading(revised, binding.asset)) is not None:
                group.append(fill)
            if not clock_is_plausible(revised.time, now):
                group = [with_flags(reading, CLOCK_UNSYNCED) for reading in group]
            groups.append(group)
        return groups

    @property
    def model_version(self) -> str:
        """The anomaly model the gateway runs (reported to the cloud in GatewayStatus.model_version)."""
        return self.scorer.model_version

    def _checked(self, scored: list[Reading], asset: Asset, uplink: Uplink, now: datetime) -> list[Reading]:
        checked = list(scored)
        if not any(reading.quantity is Quantity.FILL_RATIO for reading in checked):
            checked += [fill for reading in checked if (fill := fill_reading(reading, asset)) is not None]
        if any(r.quantity is Quantity.DISTANCE_M for r in checked) and not has_fill_geometry(asset):
            self._warn_missing_geometry(asset)
        if not clock_is_plausible(uplink.received_at, now):
            log.warning(
                "implausible time dev_eui=%s f_cnt=%d received_at=%s",
                uplink.dev_eui,
                uplink.f_cnt,
                uplink.received_at.isoformat(),
                extra=self._context(uplink, reason=CLOCK_UNSYNCED),
            )
            checked = [with_flags(reading, CLOCK_UNSYNCED) for reading in checked]
        return checked

    def _warn_missing_geometry(self, asset: Asset) -> None:
        if asset.kind is not AssetKind.BIN or asset.id in self._assets_without_geometry:
            return
        self._assets_without_geometry.add(asset.id)
        log.warning(
            "bin %s has no usable sensor_to_bottom_m/sensor_to_full_m: no fill ratio derived",
            asset.id,
            extra={"event": "asset_without_geometry", "gateway_id": self.gateway_id, "asset": asset.id},
        )

    def _attach(
        self, to_store: list[tuple[Uplink, list[Reading]]], revision_groups: list[list[Reading]]
    ) -> list[list[Reading]]:
        """Per uplink to store, the revised readings its own readings caused (same device); the others (none in
        practice: a revision comes from a newer reading of the same device) join the revisions due."""
        last_of_device = {readings[0].device: i for i, (_, readings) in enumerate(to_store) if readings}
        attached: list[list[Reading]] = [[] for _ in to_store]
        for group in revision_groups:
            where = last_of_device.get(group[0].device)
            if where is None:
                self._revisions_due.append(group)
            else:
                attached[where].extend(group)
        return attached

    def _store(
        self, to_store: list[tuple[Uplink, list[Reading]]], revised: list[list[Reading]], dropped: Counter[str]
    ) -> tuple[int, int, set[DedupKey]]:
        """Append all groups (each uplink's readings and the revisions it caused) and the revisions due in one
        commit; when they do not fit, store one by one and count what is refused (revisions that do not fit wait
        for the next call).

        Returns the uplinks accepted, the readings stored (not counting revisions) and the dedup keys of uplinks
        the full buffer refused.
        """
        groups = [(uplink, readings, extra) for (uplink, readings), extra in zip(to_store, revised, strict=True)]
        groups = [group for group in groups if group[1]]
        without_readings = len(to_store) - len(groups)  # a status-only frame is fine but stores nothing
        refused: set[DedupKey] = set()
        revisions = self._revisions_due
        try:
            self._buffer.append_many([readings + extra for _, readings, extra in groups] + revisions)
            self._revisions_due = []
            return without_readings + len(groups), sum(len(readings) for _, readings, _ in groups), refused
        except (BufferFullError, EntryTooLargeError):
            pass
        accepted, stored_readings = without_readings, 0
        waiting: list[list[Reading]] = []
        for uplink, readings, extra in groups:
            try:
                self._buffer.append(readings + extra)
            except BufferFullError as error:
                log.error(
                    "uplink dropped reason=%s dev_eui=%s f_cnt=%d: %s",
                    BUFFER_FULL,
                    uplink.dev_eui,
                    uplink.f_cnt,
                    error,
                    extra=self._context(uplink, reason=BUFFER_FULL),
                )
                dropped[BUFFER_FULL] += 1
                refused.add(self._dedup.key_of(uplink))
                waiting += [extra] if extra else []  # the retried uplink is no newer reading: no new revision
                continue
            except EntryTooLargeError as error:
                self._log_drop(uplink, ENTRY_TOO_LARGE, str(error))
                dropped[ENTRY_TOO_LARGE] += 1
                waiting += [extra] if extra else []
                continue
            accepted += 1
            stored_readings += len(readings)
        for group in revisions:
            try:
                self._buffer.append(group)
            except BufferFullError:
                waiting.append(group)
            except EntryTooLargeError:  # a few readings with their fill ratios: cannot happen with a sane quota
                log.error("revised readings too large to buffer device=%s", group[0].device)
        if len(waiting) > MAX_REVISIONS_DUE:
            log.error("%d revised verdicts forgotten: the buffer stays full", len(waiting) - MAX_REVISIONS_DUE)
            waiting = waiting[-MAX_REVISIONS_DUE:]
        self._revisions_due = waiting
        return accepted, stored_readings, refused

    def _log_check_error(self, uplink: Uplink) -> None:
        log.exception(
            "edge checks failed dev_eui=%s f_cnt=%d",
            uplink.dev_eui,
            uplink.f_cnt,
            extra=self._context(uplink, reason=CHECK_ERROR),
        )

    def _context(self, uplink: Uplink, **more: object) -> dict[str, object]:
        return {"gateway_id": self.gateway_id, "dev_eui": uplink.dev_eui, "f_cnt": uplink.f_cnt, **more}

    def _log_drop(self, uplink: Uplink, reason: str, detail: str, **more: object) -> None:
        log.warning(
            "uplink dropped reason=%s dev_eui=%s f_cnt=%d f_port=%d: %s",
            reason,
            uplink.dev_eui,
            uplink.f_cnt,
            uplink.f_port,
            detail,
            extra=self._context(uplink, event="uplink_dropped", reason=reason, f_port=uplink.f_port, **more),
        )
