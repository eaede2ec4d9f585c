"""Bulk calls: seed or update the inventory in one go, and plan a day (tasks and routes) from the fill forecasts,
the water balance and the latest state."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import CloudContext, Context, DayPlanner, InventoryManager, RequestedTowns
from cloud.auth import Principal
from cloud.store.operational import LatestState, Scope
from cloud.store.series import SeriesStoreUnavailableError
from flurfunk.contracts import Asset, Depot, Device, Quantity, Task, TaskKind, TaskState
from flurfunk.i18n import Language, text

if TYPE_CHECKING:
    from cloud.scheduler.inputs import PlanInputs

logger = logging.getLogger("cloud.admin")

router = APIRouter(prefix="/api/v1", tags=["admin"])

MAX_INVENTORY_ITEMS = 100_000


class Inventory(BaseModel):
    """Depots, assets and devices to insert or update (matched by their ids)."""

    model_config = ConfigDict(extra="forbid")

    depots: list[Depot] = Field(default_factory=list, max_length=MAX_INVENTORY_ITEMS)
    assets: list[Asset] = Field(default_factory=list, max_length=MAX_INVENTORY_ITEMS)
    devices: list[Device] = Field(default_factory=list, max_length=MAX_INVENTORY_ITEMS)


def _refuse_outside_scope(context: CloudContext, inventory: Inventory, scope: Scope) -> None:
    """404 naming the first depot, asset or device of a town the caller does not serve (as if it did not exist)."""
    for item in [*inventory.depots, *inventory.assets]:
        if not scope.allows(item.municipality):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no municipality {item.municipality!r}")
    if scope.all_towns:
        return
    towns = {a.id: a.municipality for a in inventory.assets}
    stored = {a.id: a.municipality for a in context.store.assets({d.asset for d in inventory.devices} - set(towns))}
    for device in inventory.devices:
        if not scope.allows(towns.get(device.asset, stored.get(device.asset))):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device.dev_eui}: no asset {device.asset!r}")


@router.post("/admin/inventory")
def upsert_inventory(inventory: Inventory, context: Context, principal: InventoryManager) -> dict[str, int]:
    """Insert or update depots, assets and devices (matched by id) of the caller's towns, in three transactions."""
    _refuse_outside_scope(context, inventory, principal.scope)
    actor = principal.subject
    counts = {
        "depots": context.store.upsert_depots(inventory.depots, actor),
        "assets": context.store.upsert_assets(inventory.assets, actor),
        "devices": context.store.upsert_devices(inventory.devices, actor),
    }
    logger.info("inventory upserted depots=%d assets=%d devices=%d", *counts.values())
    return counts


def _latest_for_planner(latest: dict[str, dict[Quantity, LatestState]]) -> dict[str, dict[Quantity, Any]]:
    """The scheduler's `LatestValue` per asset and quantity (LatestState has the same fields where it is absent)."""
    try:
        from cloud.scheduler import LatestValue
    except ImportError:
        return dict(latest)
    return {
        asset: {quantity: LatestValue(value=s.value, time=s.time, flags=s.flags) for quantity, s in by_quantity.items()}
        for asset, by_quantity in latest.items()
    }


def plan(context: CloudContext, day: date, principal: Principal, scope: Scope | None = None) -> dict[str, Any]:
    """Plan `day` for the towns in `scope` (default: the principal's)."""
    scope = scope or principal.scope
    language = context.settings.language
    assets = context.store.assets(scope=scope)
    known = {asset.id for asset in assets}
    latest = {asset: values for asset, values in context.store.latest(scope=scope).items() if asset in known}
    depots = context.store.depots(scope)
    notes: list[str] = []
    if context.planner is not None:  # a planner passed to create_app gets the latest values only
        day_plan = context.planner(day, depots, assets, _latest_for_planner(latest), language=language)
        planned = list(day_plan.tasks)
    else:
        from cloud.scheduler.inputs import explain_fallbacks  # late: the scheduler is a heavier package

        day_plan, inputs = _forecast_plan(context, day, depots, assets, latest, scope)
        planned = explain_fallbacks(day_plan.tasks, inputs, language)
        notes = inputs.notes
    tasks: list[Task] = [t for t in planned if scope.allows(t.municipality)]
    routes = [r for r in day_plan.routes if scope.allows(r.municipality)]
    notes = notes + _late_route_notes(routes, language)
    outcome = context.store.replace_plan(day, tasks, routes, scope=scope, actor=principal.subject)
    km = round(sum(float(route.km) for route in routes), 3)
    logger.info(
        "day planned day=%s tasks_stored=%d tasks_kept=%d routes=%d km=%.1f",
        day,
        outcome.tasks_stored,
        outcome.tasks_kept,
        outcome.routes_stored,
        km,
    )
    answer: dict[str, Any] = {
        "day": day.isoformat(),
        "tasks_stored": outcome.tasks_stored,
        "tasks_kept": outcome.tasks_kept,
        "routes_stored": outcome.routes_stored,
        "km": km,
        "not_acted_on": [{"asset": asset, "reason": reason} for asset, reason in getattr(day_plan, "skipped", [])],
    }
    if context.planner is None:  # what the built-in planner based its tasks on, and what it lacked
        answer |= {"planned_by": _basis_counts(tasks), "notes": notes}
    return answer


def _late_route_notes(routes: list[Any], language: Language) -> list[str]:
    """A route whose must-go stops do not fit its crew's shift (or a market's hours) still goes out: say so."""
    notes = []
    for route in routes:
        late_s = getattr(route, "late_s", 0)
        if late_s > 0:
            logger.warning("route %s overruns its shift by %d s", route.id, late_s)
            notes.append(text("plan.note.route_late", language, route=route.id, minutes=math.ceil(late_s / 60)))
    return notes


def _forecast_plan(
    context: CloudContext,
    day: date,
    depots: list[Depot],
    assets: list[Asset],
    latest: dict[str, dict[Quantity, LatestState]],
    scope: Scope,
) -> tuple[Any, PlanInputs]:
    """Plan with the fill forecasts and the water balance from the series store; the latest values serve the
    assets without enough history (and when the store cannot be read at all)."""
    from cloud.scheduler import plan_day  # imported late: the scheduler is a separate, heavier package
    from cloud.scheduler.fleet import plan_day_arguments
    from cloud.scheduler.inputs import CLOUD_PLAN_SETTINGS, HISTORY_DAYS, PlanInputs, read_plan_inputs

    language = context.settings.language
    watered: dict[str, dict[date, float]] = defaultdict(dict)
    for stored in context.store.tasks(
        kind=TaskKind.WATER, state=TaskState.DONE, start=day - timedelta(days=HISTORY_DAYS), end=day, scope=scope
    ):
        litres = stored.task.evidence.get("litres")
        if isinstance(litres, int | float):
            watered[stored.task.asset][stored.day] = watered[stored.task.asset].get(stored.day, 0.0) + float(litres)
    try:
        inputs = read_plan_inputs(context.series, day, assets, language=language, watered_litres=watered)
    except SeriesStoreUnavailableError as error:
        logger.warning("plan day=%s by latest values only: series store unavailable (%s)", day, error)
        inputs = PlanInputs(bin_history={}, watering=None, notes=[str(error)])
    day_plan = plan_day(
        day,
        depots,
        assets,
        _latest_for_planner(latest),
        CLOUD_PLAN_SETTINGS,
        language=language,
        bin_history=inputs.bin_history,
        watering=inputs.watering,
        **plan_day_arguments(context.settings.town_planning_file),  # the towns' fleets and calendars
    )
    return day_plan, inputs


def _basis_counts(tasks: list[Task]) -> dict[str, int]:
    """How many collect and water tasks each basis produced (forecast, water_balance, latest_value)."""
    counts: dict[str, int] = defaultdict(int)
    for task in tasks:
        basis = task.evidence.get("planned_by")
        if isinstance(basis, str):
            counts[basis] += 1
    return dict(sorted(counts.items()))


@router.post("/plan/{day}")
def plan_day_endpoint(day: date, context: Context, scope: RequestedTowns, principal: DayPlanner) -> dict[str, Any]:
    """Plan `day` for the caller's towns (or one of them): replaces that day's tasks still in `planned` and their
    routes; started tasks stay."""
    return plan(context, day, principal, scope)
