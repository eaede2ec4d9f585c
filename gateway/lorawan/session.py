"""Device sessions (DevAddr, NwkSKey, AppSKey, DevEUI) from the gateway's config bundle, and their frame counters.

Key files rest in mode 0600: `load_sessions` refuses wider modes (or warns, if told to). Keys never appear in a
repr, a log line or an error message. `SessionStore` keeps the last accepted 32-bit FCnt per session in SQLite, so
a restarted gateway still refuses replays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError

from flurfunk.contracts import Eui64
from gateway.lorawan.errors import KeyFileModeError, SessionConfigError

log = logging.getLogger(__name__)

MAX_SESSION_FILE_BYTES = 16 * 1024 * 1024  # ~80,000 sessions; far more than one gateway serves
KEY_FILE_MODE = 0o600
BUNDLE_VERSION = 1


def _hex_key(value: object) -> object:
    if isinstance(value, str):
        compact = value.strip().replace(" ", "")
        if len(compact) != 32:
            raise ValueError(f"an AES-128 key is 32 hex digits, got {len(compact)} characters")
        try:
            return bytes.fromhex(compact)
        except ValueError:
            raise ValueError("an AES-128 key is 32 hex digits, found a non-hex character") from None
    if isinstance(value, bytes) and len(value) != 16:
        raise ValueError(f"an AES-128 key is 16 bytes, got {len(value)}")
    return value


def _dev_addr(value: object) -> object:
    if isinstance(value, str):
        compact = value.strip().lower().removeprefix("0x")
        if len(compact) != 8:
            raise ValueError(f"a DevAddr is 8 hex digits (big-endian, as consoles show it), got {value!r}")
        try:
            return int(compact, 16)
        except ValueError:
            raise ValueError(f"a DevAddr is 8 hex digits, got {value!r}") from None
    if isinstance(value, bool):
        raise ValueError("a DevAddr is 8 hex digits, got a boolean")
    return value


AesKey = Annotated[bytes, BeforeValidator(_hex_key), PlainSerializer(lambda key: key.hex(), return_type=str)]
DevAddr = Annotated[
    int, BeforeValidator(_dev_addr), Field(ge=0, lt=2**32), PlainSerializer(lambda a: f"{a:08x}", return_type=str)
]


class DeviceSession(BaseModel):
    """One activated device as the gateway's config bundle gives it (ABP, or an activation the LNS exported)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    dev_eui: Eui64
    dev_addr: DevAddr
    nwk_s_key: AesKey = Field(repr=False)
    app_s_key: AesKey = Field(repr=False)
    last_f_cnt: int | None = Field(default=None, ge=0, lt=2**32, description="last FCnt the LNS accepted, if any")
    allow_f_cnt_reset: bool = Field(default=False, description="ABP devices that restart counting at 0 on reboot")

    @property
    def session_id(self) -> str:
        """A stable id of this activation: a new DevAddr or new keys start a fresh counter."""
        return _session_id(self.dev_eui, self.dev_addr, self.nwk_s_key, self.app_s_key)


@lru_cache(maxsize=8192)  # asked several times per frame; the blake2b costs more than the cache lookup
def _session_id(dev_eui: str, dev_addr: int, nwk_s_key: bytes, app_s_key: bytes) -> str:
    digest = hashlib.blake2b(digest_size=8, person=b"flurfunk-sess")
    digest.update(bytes.fromhex(dev_eui) + dev_addr.to_bytes(4, "big") + nwk_s_key + app_s_key)
    return digest.hexdigest()


class _Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    version: int = BUNDLE_VERSION
    sessions: list[DeviceSession] = Field(max_length=100_000)


def check_key_file_mode(path: Path, *, strict: bool = True) -> None:
    """Refuse (strict) or warn about a key file that others than its owner may read or write."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        if strict:
            raise KeyFileModeError(path, mode)
        log.warning(
            "key file %s has mode %04o; it should be 0600 (chmod 600 %s)",
            path,
            mode,
            path,
            extra={"event": "key_file_mode", "path": str(path), "mode": f"{mode:04o}"},
        )


def load_sessions(path: Path, *, strict_mode: bool = True) -> list[DeviceSession]:
    """The sessions of a bundle file `{"version": 1, "sessions": [...]}`; SessionConfigError names what is wrong."""
    path = Path(path)
    try:
        check_key_file_mode(path, strict=strict_mode)
        with path.open("rb") as handle:
            raw = handle.read(MAX_SESSION_FILE_BYTES + 1)
    except OSError as error:
        raise SessionConfigError(f"{path}: cannot read the session bundle ({error.strerror or error})") from None
    if len(raw) > MAX_SESSION_FILE_BYTES:
        raise SessionConfigError(f"{path}: larger than {MAX_SESSION_FILE_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise SessionConfigError(f"{path}: not JSON ({type(error).__name__})") from None
    try:
        bundle = _Bundle.model_validate(document)
    except ValidationError as error:
        raise SessionConfigError(f"{path}: {_describe(error)}") from None
    if bundle.version != BUNDLE_VERSION:
        raise SessionConfigError(f"{path}: bundle version {bundle.version} is not {BUNDLE_VERSION}")
    seen: dict[str, int] = {}
    for index, session in enumerate(bundle.sessions):
        if session.dev_eui in seen:
            raise SessionConfigError(
                f"{path}: sessions[{index}].dev_eui {session.dev_eui} repeats sessions[{seen[session.dev_eui]}]"
            )
        seen[session.dev_eui] = index
    return bundle.sessions


def _describe(error: ValidationError) -> str:
    """Where and what, from pydantic's errors, without the input values (they may be keys)."""
    parts = []
    for item in error.errors(include_input=False, include_url=False)[:5]:
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]).lstrip(".")
        parts.append(f"{where or 'bundle'}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def write_sessions(path: Path, sessions: Iterable[DeviceSession]) -> None:
    """Write a bundle file atomically, created with mode 0600 (the directory must be the gateway's own)."""
    path = Path(path)
    document = {"version": BUNDLE_VERSION, "sessions": [s.model_dump(mode="json") for s in sessions]}
    body = json.dumps(document, indent=1).encode()
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    try:
        os.fchmod(descriptor, KEY_FILE_MODE)  # the umask may have narrowed it; it must not be wider either
        os.write(descriptor, body)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(scratch, path)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS frame_counters (
    session_id TEXT PRIMARY KEY,
    dev_eui TEXT NOT NULL,
    dev_addr TEXT NOT NULL,
    last_f_cnt INTEGER NOT NULL,
    updated_us INTEGER NOT NULL
);
"""


class SessionStore:
    """The sessions by DevAddr and their last accepted frame counters, persisted in SQLite at `path`.

    Counters advance in memory (`advance`) and reach the disk on `commit`, which the source calls once the uplinks
    they belong to are durable; `rollback` forgets what was not committed, so a retried datagram is accepted again.
    Not thread-safe: one source worker owns it.
    """

    def __init__(self, path: Path, sessions: Iterable[DeviceSession]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a power cut may lose the last counters; then a retransmission is accepted twice, and the cloud's
        # point identity makes that harmless. Losing an uplink would not be.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._persisted: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._last_frame: dict[str, bytes] = {}  # digest of the last accepted frame, to tell repeats from replays
        self._pending_frame: dict[str, bytes] = {}
        self._by_addr: dict[int, tuple[DeviceSession, ...]] = {}
        self.replace(sessions)

    def replace(self, sessions: Iterable[DeviceSession]) -> None:
        """Serve this set of sessions (a new config bundle); counters of unchanged sessions are kept."""
        by_addr: dict[int, list[DeviceSession]] = {}
        for session in sessions:
            by_addr.setdefault(session.dev_addr, []).append(session)
        stored = dict(self._db.execute("SELECT session_id, last_f_cnt FROM frame_counters").fetchall())
        persisted: dict[str, int] = {}
        for group in by_addr.values():
            for session in group:
                known = [c for c in (stored.get(session.session_id), session.last_f_cnt) if c is not None]
                if known:
                    persisted[session.session_id] = max(known)
        self._by_addr = {addr: tuple(group) for addr, group in by_addr.items()}
        self._persisted = persisted
        self._pending.clear()
        self._pending_frame.clear()

    def __len__(self) -> int:
        return sum(len(group) for group in self._by_addr.values())

    def by_dev_addr(self, dev_addr: int) -> Sequence[DeviceSession]:
        """The sessions sharing this DevAddr (usually one; the MIC tells them apart)."""
        return self._by_addr.get(dev_addr, ())

    def last_f_cnt(self, session: DeviceSession) -> int | None:
        key = session.session_id
        return self._pending.get(key, self._persisted.get(key))

    def last_frame_digest(self, session: DeviceSession) -> bytes | None:
        key = session.session_id
        return self._pending_frame.get(key, self._last_frame.get(key))

    def advance(self, session: DeviceSession, f_cnt: int, frame_digest: bytes) -> None:
        """Record an accepted frame; on disk only after `commit`."""
        self._pending[session.session_id] = f_cnt
        self._pending_frame[session.session_id] = frame_digest

    def commit(self) -> None:
        """Persist the counters advanced since the last commit, in one transaction."""
        if not self._pending:
            return
        now_us = time.time_ns() // 1000
        sessions = {s.session_id: s for group in self._by_addr.values() for s in group}
        rows = [
            (key, sessions[key].dev_eui, f"{sessions[key].dev_addr:08x}", f_cnt, now_us)
            for key, f_cnt in self._pending.items()
            if key in sessions
        ]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO frame_counters (session_id, dev_eui, dev_addr, last_f_cnt, updated_us) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET "
                "last_f_cnt = excluded.last_f_cnt, updated_us = excluded.updated_us",
                rows,
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._persisted.update(self._pending)
        self._last_frame.update(self._pending_frame)
        self._pending.clear()
        self._pending_frame.clear()

    def rollback(self) -> None:
        """Forget counters advanced since the last commit (their uplinks did not become durable)."""
        self._pending.clear()
        self._pending_frame.clear()

    def stored_counters(self) -> dict[str, int]:
        """dev_eui -> last persisted FCnt, for status pages (no keys)."""
        rows = self._db.execute("SELECT dev_eui, last_f_cnt FROM frame_counters ORDER BY dev_eui").fetchall()
        return dict(rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
