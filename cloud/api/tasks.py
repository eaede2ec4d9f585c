"""Task changes: crews and dispatchers move a task along its state machine (`Task.transition`); dispatchers move
tasks to another day, crew or route position, and add tasks of their own (both kept by replans)."""

from __future__ import annotations

import logging
import secrets
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import CloudContext, Context, DayPlanner, Member, TaskChanger, in_scope, not_found
from cloud.api.feed import FIRST_DAY, LAST_DAY, task_item
from cloud.store.operational import ConflictError, Scope, StoredTask, UnknownTaskError, default_crew
from flurfunk.contracts import (
    TASK_TRANSITIONS,
    Asset,
    InvalidTransitionError,
    Quantity,
    Task,
    TaskKind,
    TaskState,
)

logger = logging.getLogger("cloud.tasks")

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


class TaskChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: TaskState
    skip_reason: str | None = Field(default=None, min_length=1, max_length=500)


class TaskMove(BaseModel):
    """Where a task goes: another day, another crew, and/or a position in that crew's route (0 = first stop)."""

    model_config = ConfigDict(extra="forbid")

    day: date | None = Field(default=None, ge=FIRST_DAY, le=LAST_DAY)
    crew: str | None = Field(default=None, min_length=1, max_length=100)
    position: int | None = Field(default=None, ge=0, le=10_000)


class NewTask(BaseModel):
    """A dispatcher's own task (a citizen's call, a market day): it says why in `reason`, like every task."""

    model_config = ConfigDict(extra="forbid")

    kind: TaskKind
    asset: str = Field(min_length=1, max_length=64)
    day: date = Field(ge=FIRST_DAY, le=LAST_DAY)
    reason: str = Field(min_length=1, max_length=500)
    priority: int = Field(default=50, ge=0, le=100)
    crew: str | None = Field(default=None, min_length=1, max_length=100)


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


@router.post("/{task_id}/move")
def move_task(
    found: Annotated[StoredTask, Depends(task_in_scope)], move: TaskMove, context: Context, principal: DayPlanner
) -> dict[str, Any]:
    """Move a planned or assigned task to another day, crew or route position (409 once started); a replan keeps
    it there."""
    try:
        stored = context.store.move_task(
            found.task.id,
            day=move.day,
            crew=move.crew,
            position=move.position,
            scope=principal.scope,
            actor=principal.subject,
        )
    except UnknownTaskError as error:
        raise not_found(f"task {found.task.id!r}") from error
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    logger.info(
        "task moved task=%s day=%s crew=%s route=%s", stored.task.id, stored.day, stored.task.crew, stored.task.route_id
    )
    assets = context.store.assets([stored.task.asset], principal.scope)
    return task_item(stored, assets[0] if assets else None)


def usual_crew(context: CloudContext, asset: Asset, kind: TaskKind, day: date, scope: Scope) -> str:
    """The crew whose route that day already does this work: for a bin, a route that empties bins of its waste
    type (the first by id when several trucks do); for watering, the first tanker's; else the crew named by the
    kind (a town planned without a fleet)."""
    from cloud.scheduler.fleet import waste_type_of  # as the planner counts a bin without a waste type

    routes = [r for r in context.store.routes(day=day, municipality=asset.municipality, scope=scope) if r.kind is kind]
    if kind is TaskKind.COLLECT:
        stops = {a.id: a for a in context.store.assets({stop for r in routes for stop in r.stops}, scope)}
        waste = waste_type_of(asset)
        routes = [r for r in routes if any(waste_type_of(stops[s]) == waste for s in r.stops if s in stops)]
    crews = [r.crew for r in routes if r.crew]
    return crews[0] if crews else default_crew(kind)


def load_evidence(context: CloudContext, asset: Asset, new: NewTask, scope: Scope) -> dict[str, Any]:
    """What a dispatcher's task puts on the vehicle, as the planner's tasks say it: a bin's latest fill ratio, a
    watering's litres (the planner's amount for the tree's age)."""
    if new.kind is TaskKind.COLLECT:
        fill = context.store.latest([asset.id], scope).get(asset.id, {}).get(Quantity.FILL_RATIO)
        return {"fill_ratio": round(fill.value, 4)} if fill is not None else {}
    if new.kind is TaskKind.WATER:
        from cloud.scheduler.planning import watering_litres  # the scheduler is a heavier package: imported late

        return {"litres": watering_litres(asset, new.day)}
    return {}


@router.post("", status_code=status.HTTP_201_CREATED)
def add_task(new: NewTask, context: Context, principal: DayPlanner) -> dict[str, Any]:
    """Add a task by hand for an asset of the caller's towns; it joins its crew's route that day if there is one."""
    from cloud.scheduler.planning import work_window  # the planner's working day, imported late (heavy package)

    assets = context.store.assets([new.asset], principal.scope)
    if not assets:
        raise not_found(f"asset {new.asset!r}")
    asset = assets[0]
    crew = new.crew or usual_crew(context, asset, new.kind, new.day, principal.scope)
    route = next(
        (
            r
            for r in context.store.routes(day=new.day, municipality=asset.municipality, scope=principal.scope)
            if r.crew == crew and r.kind is new.kind
        ),
        None,
    )
    due_from, due_until = work_window(new.day)
    task = Task(
        id=f"{new.day:%Y%m%d}-{new.kind.value}-{asset.id}"[:50] + f"~m{secrets.token_hex(5)}",
        kind=new.kind,
        asset=asset.id,
        municipality=asset.municipality,
        due_from=due_from,
        due_until=due_until,
        priority=new.priority,
        reason=new.reason,
        evidence={"source": "dispatcher", "added_by": principal.subject[:100]}
        | load_evidence(context, asset, new, principal.scope),
        crew=crew,
        route_id=route.id if route else None,
    )
    try:
        stored = context.store.add_task(task, new.day, scope=principal.scope, actor=principal.subject)
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    logger.info("task added task=%s asset=%s day=%s crew=%s", task.id, asset.id, new.day, crew)
    return task_item(stored, asset)
