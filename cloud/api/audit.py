"""The audit log: who changed what and when, newest first, for admins of the town (or district)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from cloud.api.deps import AuditReader, Context

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def audit_log(
    context: Context,
    principal: AuditReader,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=128)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Changes in the caller's towns; page backwards with `before_id` (the smallest id of the previous page)."""
    entries = context.accounts.audit_log(
        principal.scope, entity=entity, entity_id=entity_id, before_id=before_id, limit=limit
    )
    return [asdict(e) for e in entries]
