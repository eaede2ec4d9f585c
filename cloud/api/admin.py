"""Bulk calls: seed or update the inventory in one go, and plan a day (tasks and routes) from the latest state."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import CloudContext, Context, DayPlanner, InventoryManager, Planner, RequestedTowns
from cloud.auth import Principal
from cloud.store.operational import LatestState, Scope
from flurfunk.contracts import Asset, Depot, Device, Quantity, Task

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


def default_planner() -> Planner:
    from cloud.scheduler import plan_day  # imported late: the scheduler is a separate, heavier package

    return plan_day


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
    planner = context.planner or default_planner()
    assets = context.store.assets(scope=scope)
    known = {asset.id for asset in assets}
    latest = {asset: values for asset, values in context.store.latest(scope=scope).items() if asset in known}
    day_plan = planner(
        day, context.store.depots(scope), assets, _latest_for_planner(latest), language=context.settings.language
    )
    tasks: list[Task] = [t for t in day_plan.tasks if scope.allows(t.municipality)]
    routes = [r for r in day_plan.routes if scope.allows(r.municipality)]
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
    return {
        "day": day.isoformat(),
        "tasks_stored": outcome.tasks_stored,
        "tasks_kept": outcome.tasks_kept,
        "routes_stored": outcome.routes_stored,
        "km": km,
        "not_acted_on": [{"asset": asset, "reason": reason} for asset, reason in getattr(day_plan, "skipped", [])],
    }


@router.post("/plan/{day}")
def plan_day_endpoint(day: date, context: Context, scope: RequestedTowns, principal: DayPlanner) -> dict[str, Any]:
    """Plan `day` for the caller's towns (or one of them): replaces that day's tasks still in `planned` and their
    routes; started tasks stay."""
    return plan(context, day, principal, scope)
