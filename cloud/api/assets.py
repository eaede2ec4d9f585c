"""Assets (bins, trees, green spaces, weather stations): CRUD, their latest state, and their time series."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.api.deps import Context, InventoryManager, Member, in_scope, not_found, town_scope
from cloud.store.inventory import NotInScopeError
from cloud.store.operational import AssetRow, ConflictError, asset_from_row
from cloud.store.series import SeriesStoreUnavailableError
from flurfunk.contracts import Asset, AssetKind, Quantity, UtcDatetime

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])

MAX_SERIES_POINTS = 10_000
MAX_SERIES_SPAN = timedelta(days=3 * 366)
MIN_EVERY = timedelta(seconds=1)


class AssetChange(BaseModel):
    """Fields to change; the result must still be a valid asset (checked against the contract)."""

    model_config = ConfigDict(extra="forbid")

    municipality: str | None = Field(default=None, min_length=1, max_length=64)
    village: str | None = Field(default=None, min_length=1, max_length=64)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    capacity_l: int | None = Field(default=None, gt=0, le=100_000)
    waste_type: str | None = Field(default=None, max_length=32)
    sensor_to_bottom_m: float | None = Field(default=None, gt=0, le=100)
    sensor_to_full_m: float | None = Field(default=None, ge=0, le=100)
    species: str | None = Field(default=None, max_length=64)
    planting_year: int | None = Field(default=None, ge=1800, le=2200)


def asset_in_scope(asset_id: str, context: Context, principal: Member) -> dict[str, Any]:
    return in_scope(context.inventory.get(AssetRow, asset_id, principal.scope), f"asset {asset_id!r}")


ScopedAsset = Annotated[dict[str, Any], Depends(asset_in_scope)]


def _json(asset: dict[str, Any]) -> dict[str, Any]:
    return asset_from_row(AssetRow(**asset)).model_dump(mode="json")


@router.get("")
def list_assets(
    context: Context,
    principal: Member,
    kind: AssetKind | None = None,
    municipality: str | None = None,
    village: str | None = None,
) -> list[dict[str, Any]]:
    scope = town_scope(principal, municipality)
    found = context.inventory.list(AssetRow, scope, kind=kind.value if kind else None, village=village)
    return [_json(a) for a in found]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_asset(asset: Asset, context: Context, principal: InventoryManager) -> dict[str, Any]:
    """Register an asset in one of the caller's towns (bins: capacity and waste type; trees: species, year)."""
    try:
        created = context.inventory.create(AssetRow, asset.model_dump(mode="json"), principal.subject, principal.scope)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    return _json(created)


@router.get("/{asset_id}")
def get_asset(asset: ScopedAsset) -> dict[str, Any]:
    return _json(asset)


@router.patch("/{asset_id}")
def change_asset(asset: ScopedAsset, change: AssetChange, context: Context, principal: InventoryManager) -> dict:
    changes = change.model_dump(exclude_unset=True)
    try:
        Asset.model_validate(_json(asset) | changes)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems) from error
    try:
        updated = context.inventory.update(AssetRow, asset["id"], changes, principal.subject, principal.scope)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    return _json(in_scope(updated, f"asset {asset['id']!r}"))


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_asset(asset: ScopedAsset, context: Context, principal: InventoryManager) -> None:
    """Remove an asset without devices (409 otherwise) and its latest state; its series stay in the series store."""
    try:
        deleted = context.inventory.delete(AssetRow, asset["id"], principal.subject, principal.scope)
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if not deleted:
        raise not_found(f"asset {asset['id']!r}")


@router.get("/{asset_id}/latest")
def latest_state(asset: ScopedAsset, context: Context) -> dict[str, Any]:
    """The newest value per quantity, with its time, flags and device."""
    by_quantity = context.store.latest([asset["id"]]).get(asset["id"], {})
    return {
        "asset": asset["id"],
        "latest": {
            quantity.value: {
                "value": state.value,
                "unit": quantity.unit,
                "time": state.time.isoformat(),
                "flags": list(state.flags),
                "device": state.device,
            }
            for quantity, state in sorted(by_quantity.items())
        },
    }


@router.get("/{asset_id}/series")
def series(
    asset: ScopedAsset,
    context: Context,
    quantity: Quantity,
    start: Annotated[UtcDatetime, Query(description="inclusive, with time zone")],
    end: Annotated[UtcDatetime, Query(description="exclusive, with time zone")],
    every: Annotated[timedelta | None, Query(description="window for the mean, e.g. PT1H or 3600")] = None,
) -> dict[str, Any]:
    """One quantity of the asset in [start, end), oldest first; with `every`, the mean per epoch-aligned window.

    At most 10,000 points per answer: a longer raw range needs `every`.
    """
    if end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end must be after start")
    if end - start > MAX_SERIES_SPAN:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"the range is over {MAX_SERIES_SPAN.days} days")
    if every is not None:
        if every < MIN_EVERY:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "every must be at least 1 second")
        if (end - start) / every > MAX_SERIES_POINTS:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"more than {MAX_SERIES_POINTS} windows; choose a larger every"
            )
    try:
        points = context.series.query(asset["id"], quantity, start, end, every)
    except SeriesStoreUnavailableError as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"time-series store unavailable: {error}", {"Retry-After": "30"}
        ) from error
    if len(points) > MAX_SERIES_POINTS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{len(points)} points are more than {MAX_SERIES_POINTS}; give every (e.g. PT1H) to downsample",
        )
    return {
        "asset": asset["id"],
        "quantity": quantity.value,
        "unit": quantity.unit,
        "every_s": every.total_seconds() if every else None,
        "points": [{"time": p.time.isoformat(), "value": p.value} for p in points],
    }
