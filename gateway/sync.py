"""Cloud sync: send buffered readings as CBOR batches over HTTPS, delete them only when the cloud acknowledges.

What the cloud's answer means for the buffer: 200 → ack; 429/503/5xx/timeouts/no connection → keep, back off;
400/413/422 (the batch's content) → quarantine, narrowed down to the refused entries; 401/403 → stop, keep all.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

import httpx

from flurfunk.contracts import MAX_BATCH_READINGS, Batch, GatewayStatus, utc_now
from flurfunk.wire import MEDIA_TYPE, encode_batch
from gateway.buffer import DurableBuffer, all_readings

log = logging.getLogger(__name__)

INGEST_PATH = "/api/v1/ingest/batches"
MAX_ANSWER_BYTES = 64 * 1024
MAX_RETRY_AFTER_S = 3600.0
MAX_REASON_CHARS = 400
REFUSED_STATUSES = frozenset({400, 413, 422})
RETRY_STATUSES = frozenset({408, 429})
AUTH_STATUSES = frozenset({401, 403})
_GATEWAY_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class SyncOutcome(StrEnum):
    """What one sync attempt did."""

    NOTHING_TO_SEND = "nothing_to_send"
    ACKED = "acked"  # the cloud holds the readings; the buffer deleted them
    NARROWED = "narrowed"  # the cloud refused a batch of several entries; the next one is smaller, to find the bad
    QUARANTINED = "quarantined"  # the cloud refused these entries; they are kept aside for a person
    RETRY_LATER = "retry_later"  # the cloud is busy, down or unreachable; nothing changed
    UNAUTHORIZED = "unauthorized"  # the token is wrong or revoked: a configuration error
    CONFIG_ERROR = "config_error"  # the cloud answered something it never should (wrong URL?); nothing changed


PROGRESS = frozenset({SyncOutcome.ACKED, SyncOutcome.NARROWED, SyncOutcome.QUARANTINED})


@dataclass(frozen=True)
class SyncResult:
    """One attempt: the outcome, the batch's sequence range, and what the cloud said."""

    outcome: SyncOutcome
    first_seq: int | None = None
    last_seq: int | None = None
    readings_sent: int = 0
    acked_seq: int | None = None
    stored: int | None = None
    status_code: int | None = None
    retry_after_s: float | None = None
    detail: str = ""

    @property
    def made_progress(self) -> bool:
        return self.outcome in PROGRESS


@dataclass(frozen=True)
class DrainResult:
    """A run of attempts until the buffer was empty or an attempt could not go on; `last` says why it stopped."""

    attempts: tuple[SyncResult, ...]

    @property
    def last(self) -> SyncResult:
        return self.attempts[-1]

    @property
    def drained(self) -> bool:
        return self.last.outcome is SyncOutcome.NOTHING_TO_SEND

    @property
    def readings_acked(self) -> int:
        return sum(result.stored or 0 for result in self.attempts if result.outcome is SyncOutcome.ACKED)


class Backoff:
    """Exponential backoff with full jitter (AWS style): a random delay in [0, min(cap, base·2^attempt)).

    A server's Retry-After is honoured (up to an hour) as the least delay. `reset` after a success.
    """

    def __init__(
        self, base_s: float = 1.0, cap_s: float = 300.0, random_source: Callable[[], float] = random.random
    ) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"need 0 < base_s <= cap_s, got base_s={base_s}, cap_s={cap_s}")
        self.base_s = base_s
        self.cap_s = cap_s
        self._random = random_source
        self.attempt = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """Seconds to wait before the next attempt."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.attempt, 62))
        self.attempt += 1
        delay = self._random() * ceiling
        if retry_after_s is not None:
            delay = max(delay, min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S))
        return delay

    def reset(self) -> None:
        self.attempt = 0


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped at an hour; None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


def refusal_reason(status_code: int, body: bytes) -> str:
    """A short reason for a refused batch, from the cloud's answer (FastAPI `detail`, a JSON message, or text)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        detail = next((document[key] for key in ("detail", "reason", "error", "message") if key in document), None)
        if isinstance(detail, str):
            text = detail
        elif isinstance(detail, dict) and "reason" in detail:  # Flurfunk's cloud: {"field": ..., "reason": ...}
            text = f"{detail['field']}: {detail['reason']}" if "field" in detail else str(detail["reason"])
        elif isinstance(detail, list):  # FastAPI validation errors: [{"loc": [...], "msg": "..."}]
            text = "; ".join(
                f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg', '')}"
                if isinstance(item, dict)
                else str(item)
                for item in detail
            )
    text = " ".join(text.split())[:MAX_REASON_CHARS]
    return f"HTTP {status_code}: {text}" if text else f"HTTP {status_code}"


@dataclass(frozen=True)
class _Acknowledgement:
    acked_seq: int
    stored: int


def _parse_acknowledgement(body: bytes) -> _Acknowledgement:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise ValueError(f"answer is not JSON ({error})") from error
    if not isinstance(document, dict):
        raise ValueError("answer is not a JSON object")
    acked_seq, stored = document.get("acked_seq"), document.get("stored")
    for name, value in (("acked_seq", acked_seq), ("stored", stored)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} is not a non-negative integer: {value!r}")
    return _Acknowledgement(acked_seq=acked_seq, stored=stored)  # type: ignore[arg-type]


class SyncClient:
    """Sends the buffer's oldest entries to the cloud's ingest API, one batch per `sync_once`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        gateway_id: str,
        buffer: DurableBuffer,
        client: httpx.Client | None = None,
        max_readings_per_batch: int = 5000,
        *,
        dropped_counts: Callable[[], Mapping[str, int]] | None = None,
        model_version: str | Callable[[], str | None] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with https:// (or http:// for a local test), got {base_url!r}")
        if not _GATEWAY_ID.match(gateway_id):
            raise ValueError(f"gateway_id must be 1-64 of A-Z a-z 0-9 _ . -, got {gateway_id!r}")
        if not 1 <= max_readings_per_batch <= MAX_BATCH_READINGS:
            raise ValueError(f"max_readings_per_batch must be within 1..{MAX_BATCH_READINGS}")
        if not token or any(character.isspace() for character in token):
            raise ValueError("token must be non-empty and without whitespace")
        self.url = base_url.rstrip("/") + INGEST_PATH
        self.gateway_id = gateway_id
        self.max_readings_per_batch = max_readings_per_batch
        self._token = token
        self._buffer = buffer
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
        self._dropped_counts = dropped_counts
        self._model_version = model_version
        # After a refused batch of several entries: send at most this many entries until the refused range is past.
        self._entry_limit: int | None = None
        self._narrow_until_seq = 0

    def __repr__(self) -> str:  # never show the token
        return f"SyncClient(url={self.url!r}, gateway_id={self.gateway_id!r})"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sync_once(self, now: datetime | None = None) -> SyncResult:
        """Send one batch of the oldest entries and act on the answer."""
        now = now if now is not None else utc_now()
        entries = self._buffer.pending(self.max_readings_per_batch)
        if self._entry_limit is not None:
            entries = entries[: self._entry_limit]
        if not entries:
            return SyncResult(SyncOutcome.NOTHING_TO_SEND)
        first, last = entries[0].seq, entries[-1].seq
        readings = all_readings(entries)
        batch = Batch(
            gateway_id=self.gateway_id,
            first_seq=first,
            last_seq=last,
            sent_at=now,
            readings=tuple(readings),
            status=self._status(now),
        )
        sent = {"first_seq": first, "last_seq": last, "readings_sent": len(readings)}
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": MEDIA_TYPE, "Accept": "application/json"}
        try:
            with self._client.stream("POST", self.url, content=encode_batch(batch), headers=headers) as response:
                body = self._read_limited(response)
                status_code = response.status_code
                retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        except httpx.HTTPError as error:
            result = SyncResult(SyncOutcome.RETRY_LATER, **sent, detail=f"{type(error).__name__}: {error}")
            return self._logged(result)

        if status_code == 200:
            return self._logged(self._acknowledged(body, first, last, sent))
        if status_code in RETRY_STATUSES or 500 <= status_code <= 599:
            detail = f"HTTP {status_code}: cloud busy or failing"
            result = SyncResult(
                SyncOutcome.RETRY_LATER, **sent, status_code=status_code, retry_after_s=retry_after, detail=detail
            )
            return self._logged(result)
        if status_code in REFUSED_STATUSES:
            return self._logged(self._refused(status_code, refusal_reason(status_code, body), len(entries), sent))
        if status_code in AUTH_STATUSES:
            detail = f"HTTP {status_code}: the cloud refused this gateway's token; check the gateway's configuration"
            return self._logged(SyncResult(SyncOutcome.UNAUTHORIZED, **sent, status_code=status_code, detail=detail))
        detail = f"HTTP {status_code}: unexpected answer from {self.url}; check the cloud URL"
        return self._logged(SyncResult(SyncOutcome.CONFIG_ERROR, **sent, status_code=status_code, detail=detail))

    def sync_until_drained(self, now: datetime | None = None, max_attempts: int = 10_000) -> DrainResult:
        """Send batches until the buffer is empty or an attempt makes no progress (busy, down, misconfigured)."""
        attempts: list[SyncResult] = []
        while len(attempts) < max_attempts:
            result = self.sync_once(now)
            attempts.append(result)
            if not result.made_progress:
                break
        return DrainResult(attempts=tuple(attempts))

    def _status(self, now: datetime) -> GatewayStatus:
        stats = self._buffer.stats()
        return GatewayStatus(
            buffered=stats.readings,
            oldest_unsynced_s=stats.oldest_unsynced_age_s(now),
            dropped=dict(self._dropped_counts()) if self._dropped_counts else {},
            model_version=self._model_version() if callable(self._model_version) else self._model_version,
        )

    @staticmethod
    def _read_limited(response: httpx.Response) -> bytes:
        # The answer is tiny JSON; a misbehaving proxy must not make the Pi read megabytes.
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                break
        return bytes(body[:MAX_ANSWER_BYTES])

    def _acknowledged(self, body: bytes, first: int, last: int, sent: dict[str, int]) -> SyncResult:
        try:
            answer = _parse_acknowledgement(body)
        except ValueError as error:
            # Nothing is deleted: a replay of the same batch is harmless, losing it is not.
            return SyncResult(SyncOutcome.RETRY_LATER, **sent, status_code=200, detail=f"malformed ack: {error}")
        if answer.acked_seq > last:
            log.warning("cloud acknowledged seq %d beyond the batch's last_seq %d", answer.acked_seq, last)
        acked = min(answer.acked_seq, last)
        if acked < first:
            detail = f"cloud acknowledged seq {answer.acked_seq}, before this batch ({first}..{last})"
            return SyncResult(SyncOutcome.RETRY_LATER, **sent, status_code=200, acked_seq=acked, detail=detail)
        self._buffer.ack(acked)
        if self._entry_limit is not None:
            # Past the refused range: full batches again. Inside it: grow back, the bad entries may be behind us.
            self._entry_limit = None if acked >= self._narrow_until_seq else self._entry_limit * 2
        return SyncResult(SyncOutcome.ACKED, **sent, status_code=200, acked_seq=acked, stored=answer.stored)

    def _refused(self, status_code: int, reason: str, entry_count: int, sent: dict[str, int]) -> SyncResult:
        first, last = sent["first_seq"], sent["last_seq"]
        if entry_count > 1:
            # Bisect: one bad reading must not put thousands of good ones into quarantine.
            self._entry_limit = max(1, entry_count // 2)
            self._narrow_until_seq = max(self._narrow_until_seq, last)
            detail = f"{reason}; retrying with {self._entry_limit} of {entry_count} entries"
            return SyncResult(SyncOutcome.NARROWED, **sent, status_code=status_code, detail=detail)
        self._buffer.quarantine(first, last, reason)
        if self._entry_limit is not None and last >= self._narrow_until_seq:
            self._entry_limit = None
        return SyncResult(SyncOutcome.QUARANTINED, **sent, status_code=status_code, detail=reason)

    def _logged(self, result: SyncResult) -> SyncResult:
        level = logging.INFO if result.made_progress else logging.WARNING
        if result.outcome is SyncOutcome.UNAUTHORIZED:
            level = logging.ERROR
        log.log(
            level,
            "sync %s gateway_id=%s first_seq=%s last_seq=%s readings=%d %s",
            result.outcome.value,
            self.gateway_id,
            result.first_seq,
            result.last_seq,
            result.readings_sent,
            result.detail,
            extra={
                "event": "sync",
                "outcome": result.outcome.value,
                "gateway_id": self.gateway_id,
                "first_seq": result.first_seq,
                "last_seq": result.last_seq,
                "status_code": result.status_code,
            },
        )
        return result
