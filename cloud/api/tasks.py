"""Task state changes: crews and dispatchers move a task along its state machine (`Task.transition`)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Context, Member, TaskChanger, in_scope
from cloud.api.feed import task_item
from cloud.store.operational import StoredTask, UnknownTaskError
from flurfunk.contracts import TASK_TRANSITIONS, InvalidTransitionError, TaskState

logger = logging.getLogger("cloud.tasks")

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


class TaskChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: TaskState
    skip_reason: str | None = Field(default=None, min_length=1, max_length=500)


def task_in_scope(task_id: str, context: Context, principal: Member) -> StoredTask:
    return in_scope(context.store.task(task_id, principal.scope), f"task {task_id!r}")


@router.patch("/{task_id}")
def change_task(
    found: Annotated[StoredTask, Depends(task_in_scope)], change: TaskChange, context: Context, principal: TaskChanger
) -> dict[str, Any]:
    """Move a task of the caller's towns to `state`; 409 names the edge when the state machine does not have it."""
    task_id = found.task.id
    scope = principal.scope
    try:
        stored = context.store.transition_task(
            task_id, change.state, change.skip_reason, scope=scope, actor=principal.subject
        )
    except UnknownTaskError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no task {task_id!r}") from error
    except InvalidTransitionError as error:
        current = context.store.task(task_id, scope)
        allowed = sorted(TASK_TRANSITIONS[current.task.state]) if current else []
        if change.state in allowed:
            hint = ""
        elif allowed:
            hint = f"; allowed from here: {', '.join(allowed)}"
        else:
            hint = "; the task is finished"
        raise HTTPException(status.HTTP_409_CONFLICT, f"{error}{hint}") from error
    logger.info("task moved task=%s state=%s", task_id, stored.task.state)
    assets = context.store.assets([stored.task.asset], scope)
    return task_item(stored, assets[0] if assets else None)
