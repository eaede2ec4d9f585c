"""Admin calls: seed or update the inventory, and plan a day (tasks and routes) from the latest state."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import AdminOnly, CloudContext, Context, Planner
from cloud.store.operational import LatestState
from flurfunk.contracts import Asset, Depot, Device, Quantity, Task

logger = logging.getLogger("cloud.admin")

router = APIRouter(prefix="/api/v1", tags=["admin"], dependencies=[AdminOnly])

MAX_INVENTORY_ITEMS = 100_000


class Inventory(BaseModel):
    """Depots, assets and devices to insert or update (matched by their ids)."""

    model_config = ConfigDict(extra="forbid")

    depots: list[Depot] = Field(default_factory=list, max_length=MAX_INVENTORY_ITEMS)
    assets: list[Asset] = Field(default_factory=list, max_length=MAX_INVENTORY_ITEMS)
    devices: list[Device] = Field(default_factory=list, max_length=MAX_INVENTORY_ITEMS)


@router.post("/admin/inventory")
def upsert_inventory(inventory: Inventory, context: Context) -> dict[str, int]:
    counts = {
        "depots": context.store.upsert_depots(inventory.depots),
        "assets": context.store.upsert_assets(inventory.assets),
        "devices": context.store.upsert_devices(inventory.devices),
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


def plan(context: CloudContext, day: date) -> dict[str, Any]:
    planner = context.planner or default_planner()
    assets = context.store.assets()
    known = {asset.id for asset in assets}
    latest = {asset: values for asset, values in context.store.latest().items() if asset in known}
    day_plan = planner(
        day, context.store.depots(), assets, _latest_for_planner(latest), language=context.settings.language
    )
    tasks: list[Task] = list(day_plan.tasks)
    outcome = context.store.replace_plan(day, tasks, list(day_plan.routes))
    km = round(sum(float(route.km) for route in day_plan.routes), 3)
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
def plan_day_endpoint(day: date, context: Context) -> dict[str, Any]:
    """Plan `day`: replaces that day's tasks still in `planned` and their routes; started tasks stay."""
    return plan(context, day)
