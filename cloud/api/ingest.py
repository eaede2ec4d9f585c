"""Batch ingest: gateways post CBOR batches; the cloud acknowledges a sequence number once the readings are durable.

Policy for a batch with an invalid reading: the batch is refused whole (400 naming `readings[i].<field>` and the
reason) and nothing of it is stored or acknowledged. An acknowledgement is a sequence number, i.e. the gateway then
deletes everything up to it: accepting a batch minus one reading would delete that reading on the gateway while
the cloud dropped it, and the only trace of it would be a log line. Refused whole, the gateway's SyncClient halves
the batch until it has found the bad entry, quarantines just that entry (kept on the gateway with our reason, for
a person) and sends the rest, at the cost of about log2(entries) extra requests.

Order of the checks, cheapest first: media type, gateway token (401/403), rate (429 + Retry-After), size (413),
format and content (400), then the series store (503 + Retry-After when down or slow, nothing acknowledged).
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from cloud.api.deps import CloudContext, Context, GatewayId
from cloud.store.series import SeriesStoreUnavailableError
from flurfunk.contracts import Batch, utc_now
from flurfunk.wire import MEDIA_TYPE, BatchFormatError, decode_batch

logger = logging.getLogger("cloud.ingest")


@asynccontextmanager
async def _startup_heap_frozen(_app: FastAPI) -> AsyncIterator[None]:
    """Keep what start-up built (SQLAlchemy, pydantic, FastAPI: long-lived) out of the garbage collector's scans.

    A 5,000-reading batch allocates enough objects to set off several collections, and without this each older
    collection walks the whole start-up heap again: measured, it halved the ingest's CPU per batch. Unfrozen at
    shutdown, so a process that builds many apps (the tests) gets their cyclic garbage collected again.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# The lifespan is merged into the app's by `include_router`: it runs once the app itself has started.
router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"], lifespan=_startup_heap_frozen)

RETRY_AFTER_S = 30
# A reading's time must lie in this window: older is a sensor or gateway without a set clock; further ahead than
# the server's (or the gateway's) clock is a wrong clock, and such a reading would pin "latest state" for years.
EARLIEST_READING_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_READING_AHEAD = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    acked_seq: int
    stored: int
    unknown_assets: list[str]


class _Unavailable(Exception):
    """A store could not take the batch; nothing was acknowledged."""


class GatewayRateLimiter:
    """A token bucket per gateway: `burst` batches at once, refilled at `rate_per_s`.

    Keys are gateway ids that passed the token check, so the table grows only with the configured gateways.
    Per process: behind several API replicas each counts on its own.
    """

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"need rate_per_s > 0 and burst >= 1, got {rate_per_s} and {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # gateway id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, gateway_id: str) -> float | None:
        """Take one token: None if the batch may go on, otherwise the seconds until a token is there again."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(gateway_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
            if tokens >= 1.0:
                self._buckets[gateway_id] = (tokens - 1.0, now)
                return None
            self._buckets[gateway_id] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s


def _rate_limiter(request: Request, context: CloudContext) -> GatewayRateLimiter:
    # Created on first use and kept on the app: one bucket table per app, nothing shared between test apps.
    limiter: GatewayRateLimiter | None = getattr(request.app.state, "ingest_rate_limiter", None)
    if limiter is None:
        limiter = GatewayRateLimiter(context.settings.ingest_rate_per_s, context.settings.ingest_burst)
        request.app.state.ingest_rate_limiter = limiter
    return limiter


async def _read_body_with_limit(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, {"field": "Content-Length", "reason": "not a number"})
        if int(declared) > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"batch of {declared} bytes is over the limit of {limit}"
            )
    body = bytearray()
    # Count while reading: a chunked request has no Content-Length, and a declared one may lie.
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"batch is over the limit of {limit} bytes")
    return bytes(body)


def check_reading_times(batch: Batch, now: datetime) -> None:
    """Refuse the batch (BatchFormatError naming `readings[i].time`) if a reading's time cannot be right."""
    latest_allowed = max(now, batch.sent_at) + MAX_READING_AHEAD
    for index, reading in enumerate(batch.readings):
        if reading.time < EARLIEST_READING_TIME:
            raise BatchFormatError(
                f"readings[{index}].time",
                f"{reading.time.isoformat()} is before {EARLIEST_READING_TIME.year}: the sensor's clock is not set",
            )
        if reading.time > latest_allowed:
            raise BatchFormatError(
                f"readings[{index}].time",
                f"{reading.time.isoformat()} is more than {MAX_READING_AHEAD.days} day ahead of the clocks of the "
                f"cloud ({now.isoformat(timespec='seconds')}) and the gateway "
                f"({batch.sent_at.isoformat(timespec='seconds')})",
            )


def _refused(gateway_id: str, error: BatchFormatError) -> HTTPException:
    logger.info("batch refused gateway=%s field=%s reason=%s", gateway_id, error.field, error.reason)
    return HTTPException(status.HTTP_400_BAD_REQUEST, {"field": error.field, "reason": error.reason})


def _ingest(context: CloudContext, gateway_id: str, body: bytes) -> IngestOutcome:
    """Decode and check, write the series first, then move latest state and the acked sequence in one transaction."""
    try:
        batch = decode_batch(body, max_compressed=context.settings.max_batch_bytes)
        check_reading_times(batch, utc_now())
    except BatchFormatError as error:
        raise _refused(gateway_id, error) from error
    if batch.gateway_id != gateway_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"the token belongs to gateway {gateway_id!r}, not {batch.gateway_id!r}"
        )
    try:
        context.series.write(batch.readings)
    except SeriesStoreUnavailableError as error:
        logger.warning(
            "series store unavailable gateway=%s seq=%d..%d: %s", gateway_id, batch.first_seq, batch.last_seq, error
        )
        raise _Unavailable("the time-series store is unavailable") from error
    except ValueError as error:
        # The store refused the points themselves (InfluxDB: 400 or a partial write): the batch's content is wrong.
        raise _refused(gateway_id, BatchFormatError("readings", str(error))) from error
    try:
        unknown_assets = context.store.record_batch(batch, received_at=utc_now())
    except OperationalError as error:
        # The points are in the series store already; a retry writes them again, which is harmless.
        logger.warning(
            "operational store unavailable gateway=%s seq=%d..%d: %s",
            gateway_id,
            batch.first_seq,
            batch.last_seq,
            error.orig,
        )
        raise _Unavailable("the operational database is unavailable") from error
    logger.info(
        "batch stored gateway=%s seq=%d..%d readings=%d unknown_assets=%d",
        gateway_id,
        batch.first_seq,
        batch.last_seq,
        len(batch.readings),
        len(unknown_assets),
    )
    return IngestOutcome(acked_seq=batch.last_seq, stored=len(batch.readings), unknown_assets=unknown_assets)


@router.post("/batches")
async def ingest_batch(request: Request, context: Context, gateway_id: GatewayId) -> JSONResponse:
    """Take one batch (`flurfunk.wire` CBOR, Bearer gateway token); answer the acknowledged sequence number."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != MEDIA_TYPE:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {MEDIA_TYPE}, got {content_type or 'none'}"
        )
    wait_s = _rate_limiter(request, context).take(gateway_id)
    if wait_s is not None:
        logger.warning("batch rate limited gateway=%s retry_after_s=%.1f", gateway_id, wait_s)
        return JSONResponse(
            {"detail": f"gateway {gateway_id} sends more than {context.settings.ingest_rate_per_s:g} batches/s; "
             "nothing was acknowledged, retry later"},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )  # fmt: skip
    body = await _read_body_with_limit(request, context.settings.max_batch_bytes)
    try:
        outcome = await run_in_threadpool(_ingest, context, gateway_id, body)
    except _Unavailable as error:
        return JSONResponse(
            {"detail": f"{error}; nothing was acknowledged, retry later"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return JSONResponse(
        {"acked_seq": outcome.acked_seq, "stored": outcome.stored, "unknown_assets": outcome.unknown_assets}
    )
