"""Batch ingest: gateways post CBOR batches; the cloud acknowledges a sequence number once the readings are durable."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from cloud.api.deps import CloudContext, Context, GatewayId
from cloud.store.series import SeriesStoreUnavailableError
from flurfunk.contracts import utc_now
from flurfunk.wire import MEDIA_TYPE, BatchFormatError, decode_batch

logger = logging.getLogger("cloud.ingest")

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])

RETRY_AFTER_S = 30


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    acked_seq: int
    stored: int
    unknown_assets: list[str]


class _Unavailable(Exception):
    """A store could not take the batch; nothing was acknowledged."""


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


def _ingest(context: CloudContext, gateway_id: str, body: bytes) -> IngestOutcome:
    """Decode, write the series first, then move latest state and the acked sequence in one transaction."""
    try:
        batch = decode_batch(body, max_compressed=context.settings.max_batch_bytes)
    except BatchFormatError as error:
        logger.info("batch refused gateway=%s field=%s reason=%s", gateway_id, error.field, error.reason)
        raise HTTPException(status.HTTP_400_BAD_REQUEST, {"field": error.field, "reason": error.reason}) from error
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
