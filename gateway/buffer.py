"""The gateway's durable buffer: readings wait here in SQLite (WAL) until the cloud acknowledges them.

Disk quota policy: the buffer counts the bytes of every entry it holds — unacknowledged and quarantined — plus a
fixed per-entry overhead. When an append would take it past its quota, it refuses the new data with
`BufferFullError` and stores nothing; the caller counts the uplink as dropped ("buffer_full") and raises an alert.
The buffer never makes room by deleting data the cloud has not acknowledged: entries leave only through `ack`
(the cloud has them) or `quarantine` (the cloud refused them; they are kept for a person to look at).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
from pydantic import ValidationError

from flurfunk.contracts import Reading, utc_now
from gateway.errors import BufferCorruptError, BufferFullError, EntryTooLargeError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
ENTRY_FORMAT_VERSION = 1
# One uplink decodes to a handful of readings; these limits bound what one entry may cost to store and read back.
MAX_ENTRY_READINGS = 1_000
MAX_ENTRY_BYTES = 256 * 1024
# Row header, sequence, timestamps and b-tree slot: a fixed allowance so that many tiny entries still count.
ENTRY_OVERHEAD_BYTES = 64
MAX_REASON_CHARS = 500

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a sequence number is never reused, even when emptied
    appended_us INTEGER NOT NULL,
    reading_count INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    appended_us INTEGER NOT NULL,
    reading_count INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    quarantined_us INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class BufferEntry:
    """The readings of one uplink, waiting for the cloud under sequence number `seq`."""

    seq: int
    appended_at: datetime
    readings: tuple[Reading, ...]


@dataclass(frozen=True)
class QuarantinedEntry:
    """An entry the cloud refused, kept for a person; `readings` is None if the stored bytes cannot be read."""

    seq: int
    appended_at: datetime
    quarantined_at: datetime
    reason: str
    reading_count: int
    readings: tuple[Reading, ...] | None


@dataclass(frozen=True)
class BufferStats:
    """What the buffer holds: unsynced entries and readings, bytes against the quota, and the quarantine."""

    entries: int
    readings: int
    bytes: int
    quota_bytes: int
    oldest_unsynced: datetime | None
    quarantined: int
    quarantined_readings: int

    def oldest_unsynced_age_s(self, now: datetime) -> float:
        """Seconds the oldest unsynced entry has waited at `now` (0 when nothing waits or the clock went back)."""
        if self.oldest_unsynced is None:
            return 0.0
        return max(0.0, (now - self.oldest_unsynced).total_seconds())


def _epoch_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _from_epoch_us(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


def encode_entry(readings: Sequence[Reading]) -> bytes:
    """One entry's readings as compact CBOR (a versioned map of positional arrays)."""
    rows = [
        [r.device, r.asset, r.quantity.value, r.value, _epoch_us(r.time), r.anomaly_score, list(r.flags)]
        for r in readings
    ]
    return cbor2.dumps({"v": ENTRY_FORMAT_VERSION, "r": rows})


def decode_entry(body: bytes) -> tuple[Reading, ...]:
    """The readings in a stored entry; raises ValueError saying what is wrong with the bytes."""
    if len(body) > MAX_ENTRY_BYTES:
        raise ValueError(f"entry is {len(body)} bytes, more than the limit of {MAX_ENTRY_BYTES}")
    try:
        document = cbor2.loads(body)
    except Exception as error:  # cbor2 raises several types for damaged bytes; all mean "not CBOR"
        raise ValueError(f"not valid CBOR ({error})") from error
    if not isinstance(document, dict) or document.get("v") != ENTRY_FORMAT_VERSION:
        raise ValueError(f"expected a CBOR map with entry format version {ENTRY_FORMAT_VERSION}")
    rows = document.get("r")
    if not isinstance(rows, list) or len(rows) > MAX_ENTRY_READINGS:
        raise ValueError(f"expected an array of at most {MAX_ENTRY_READINGS} readings")
    readings = []
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 7:
            raise ValueError(f"reading {index}: expected an array of 7 fields")
        device, asset, quantity, value, time_us, anomaly_score, flags = row
        if not isinstance(time_us, int) or isinstance(time_us, bool):
            raise ValueError(f"reading {index}: time is not integer microseconds")
        try:
            readings.append(
                Reading(
                    device=device,
                    asset=asset,
                    quantity=quantity,
                    value=value,
                    time=_from_epoch_us(time_us),
                    anomaly_score=anomaly_score,
                    flags=tuple(flags) if isinstance(flags, list) else flags,
                )
            )
        except (ValidationError, OverflowError) as error:
            raise ValueError(f"reading {index}: {error}") from error
    return tuple(readings)


class DurableBuffer:
    """Append-only SQLite store of readings with never-reused sequence numbers; rows leave only by ack or quarantine.

    One process owns the file (the gateway daemon); the methods are safe to call from several of its threads.
    Every commit is synchronous=FULL in WAL mode, so an entry `append` returned a sequence number for survives
    a killed process and a power cut; `append_many` writes many entries in one commit, which costs the SD card
    about as much as one.
    """

    def __init__(self, path: Path, quota_bytes: int, clock: Callable[[], datetime] = utc_now) -> None:
        if quota_bytes <= 0:
            raise ValueError(f"quota_bytes must be positive, got {quota_bytes}")
        self.path = Path(path)
        self.quota_bytes = quota_bytes
        self._clock = clock
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._connection = self._open()
        self._used_bytes = self._count_used_bytes()

    # -- opening -------------------------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise BufferCorruptError(
                    self.path, f"schema version {version} is newer than this gateway understands ({SCHEMA_VERSION})"
                )
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise BufferCorruptError(self.path, f"cannot switch to WAL mode (journal mode is {mode!r})")
            # FULL: a commit is on disk when it returns, power cut included (NORMAL may lose the last commits).
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            connection.close()
            raise BufferCorruptError(self.path, f"not a readable SQLite buffer ({error})") from error
        except BufferCorruptError:
            connection.close()
            raise
        return connection

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"buffer {self.path} is closed")
        return self._connection

    def _count_used_bytes(self) -> int:
        db = self._db()
        pending = db.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM entries").fetchone()[0]
        quarantined = db.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM quarantine").fetchone()[0]
        return int(pending) + int(quarantined)

    def _transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- writing -------------------------------------------------------------------------------------------------

    def append(self, readings: Sequence[Reading]) -> int:
        """Store the readings of one uplink as one entry; its sequence number. Raises BufferFullError."""
        return self.append_many([readings])[0]

    def append_many(self, groups: Sequence[Sequence[Reading]]) -> list[int]:
        """Store each group as one entry in a single commit; their sequence numbers, in order.

        All or nothing: if the groups together do not fit the quota, BufferFullError and nothing is stored.
        """
        bodies = [self._encode_group(group) for group in groups]
        if not bodies:
            return []
        needed = sum(len(body) + ENTRY_OVERHEAD_BYTES for body in bodies)
        appended_us = _epoch_us(self._clock())

        def insert(db: sqlite3.Connection) -> list[int]:
            seqs = []
            for body, group in zip(bodies, groups, strict=True):
                cursor = db.execute(
                    "INSERT INTO entries (appended_us, reading_count, size_bytes, body) VALUES (?, ?, ?, ?)",
                    (appended_us, len(group), len(body) + ENTRY_OVERHEAD_BYTES, body),
                )
                seqs.append(int(cursor.lastrowid or 0))
            return seqs

        with self._lock:
            if self._used_bytes + needed > self.quota_bytes:
                raise BufferFullError(needed, self._used_bytes, self.quota_bytes)
            seqs: list[int] = self._transaction(insert)
            self._used_bytes += needed
        return seqs

    @staticmethod
    def _encode_group(group: Sequence[Reading]) -> bytes:
        if not group:
            raise ValueError("an entry needs at least one reading")
        if len(group) > MAX_ENTRY_READINGS:
            raise EntryTooLargeError(f"{len(group)} readings in one entry, more than the limit of {MAX_ENTRY_READINGS}")
        body = encode_entry(group)
        if len(body) > MAX_ENTRY_BYTES:
            raise EntryTooLargeError(f"entry of {len(body)} bytes, more than the limit of {MAX_ENTRY_BYTES}")
        return body

    def ack(self, up_to_seq: int) -> int:
        """The cloud holds every entry up to `up_to_seq`: delete them. The number of entries deleted."""
        if up_to_seq < 0:
            raise ValueError(f"cannot acknowledge a negative sequence number {up_to_seq}")

        def delete(db: sqlite3.Connection) -> tuple[int, int]:
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM entries WHERE seq <= ?", (up_to_seq,)
            ).fetchone()
            db.execute("DELETE FROM entries WHERE seq <= ?", (up_to_seq,))
            return int(count), int(size)

        with self._lock:
            count, size = self._transaction(delete)
            self._used_bytes -= size
        return count

    def quarantine(self, first_seq: int, last_seq: int, reason: str) -> int:
        """Move entries first_seq..last_seq out of the sync path into the kept quarantine; how many moved."""
        if last_seq < first_seq:
            raise ValueError(f"last_seq {last_seq} is before first_seq {first_seq}")
        reason = (reason.strip() or "no reason given")[:MAX_REASON_CHARS]
        quarantined_us = _epoch_us(self._clock())

        def move(db: sqlite3.Connection) -> int:
            db.execute(
                "INSERT INTO quarantine (seq, appended_us, reading_count, size_bytes, body, reason, quarantined_us) "
                "SELECT seq, appended_us, reading_count, size_bytes, body, ?, ? FROM entries "
                "WHERE seq BETWEEN ? AND ?",
                (reason, quarantined_us, first_seq, last_seq),
            )
            moved = db.execute("DELETE FROM entries WHERE seq BETWEEN ? AND ?", (first_seq, last_seq)).rowcount
            return int(moved)

        with self._lock:
            moved: int = self._transaction(move)
        if moved:
            log.warning(
                "buffer entries quarantined first_seq=%d last_seq=%d entries=%d reason=%s",
                first_seq,
                last_seq,
                moved,
                reason,
                extra={"event": "buffer_quarantine", "first_seq": first_seq, "last_seq": last_seq, "entries": moved},
            )
        return moved

    # -- reading -------------------------------------------------------------------------------------------------

    def pending(self, max_readings: int) -> list[BufferEntry]:
        """The oldest unacknowledged entries, holding at most `max_readings` readings together.

        Always at least one entry when any waits, so an entry larger than `max_readings` cannot block the sync.
        An entry whose stored bytes cannot be read goes to the quarantine (reason "corrupt entry: …").
        """
        if max_readings < 1:
            raise ValueError(f"max_readings must be at least 1, got {max_readings}")
        entries: list[BufferEntry] = []
        corrupt: list[tuple[int, str]] = []
        total = 0
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT seq, appended_us, reading_count, body FROM entries ORDER BY seq LIMIT ?", (max_readings,)
                )
                .fetchall()
            )
            for seq, appended_us, reading_count, body in rows:
                if entries and total + reading_count > max_readings:
                    break
                try:
                    readings = decode_entry(body)
                except ValueError as error:
                    corrupt.append((seq, str(error)))
                    continue
                entries.append(BufferEntry(seq=seq, appended_at=_from_epoch_us(appended_us), readings=readings))
                total += len(readings)
            for seq, reason in corrupt:
                log.error("buffer entry unreadable seq=%d: %s", seq, reason, extra={"event": "buffer_corrupt_entry"})
                self.quarantine(seq, seq, f"corrupt entry: {reason}")
        return entries

    def quarantined(self, limit: int = 100) -> list[QuarantinedEntry]:
        """The oldest quarantined entries, for a person to look at."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT seq, appended_us, quarantined_us, reason, reading_count, body FROM quarantine "
                    "ORDER BY seq LIMIT ?",
                    (limit,),
                )
                .fetchall()
            )
        return [
            QuarantinedEntry(
                seq=seq,
                appended_at=_from_epoch_us(appended_us),
                quarantined_at=_from_epoch_us(quarantined_us),
                reason=reason,
                reading_count=reading_count,
                readings=_readable(body),
            )
            for seq, appended_us, quarantined_us, reason, reading_count, body in rows
        ]

    def stats(self) -> BufferStats:
        """Counts and bytes of what the buffer holds now."""
        with self._lock:
            db = self._db()
            entries, readings = db.execute("SELECT COUNT(*), COALESCE(SUM(reading_count), 0) FROM entries").fetchone()
            oldest = db.execute("SELECT appended_us FROM entries ORDER BY seq LIMIT 1").fetchone()
            quarantined, quarantined_readings = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(reading_count), 0) FROM quarantine"
            ).fetchone()
            used = self._used_bytes
        return BufferStats(
            entries=int(entries),
            readings=int(readings),
            bytes=used,
            quota_bytes=self.quota_bytes,
            oldest_unsynced=_from_epoch_us(oldest[0]) if oldest else None,
            quarantined=int(quarantined),
            quarantined_readings=int(quarantined_readings),
        )

    # -- closing -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Fold the WAL back into the database file and close; calling it twice is harmless."""
        with self._lock:
            if self._connection is None:
                return
            try:
                self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> DurableBuffer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _readable(body: bytes) -> tuple[Reading, ...] | None:
    try:
        return decode_entry(body)
    except ValueError:
        return None


def all_readings(entries: Iterable[BufferEntry]) -> list[Reading]:
    """The readings of several entries, in sequence order."""
    return [reading for entry in entries for reading in entry.readings]
