"""Device models (payload formats), shared by all towns on purpose; district admins maintain the list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Context, Member, ModelManager, in_scope, not_found
from cloud.store.operational import ConflictError, DeviceModelRow

router = APIRouter(prefix="/api/v1/device-models", tags=["device-models"])

_PART = r"^[a-z0-9\-]+$"


class NewDeviceModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=3, max_length=96, pattern=r"^[a-z0-9\-]+/[a-z0-9\-]+(@[a-z0-9\-.]+)?$")
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)


class DeviceModelChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)


def model_by_path(vendor: str, model: str, context: Context, principal: Member) -> dict[str, Any]:
    model_id = f"{vendor}/{model}"
    return in_scope(context.inventory.get(DeviceModelRow, model_id), f"device model {model_id!r}")


KnownModel = Annotated[dict[str, Any], Depends(model_by_path)]


@router.get("")
def list_device_models(context: Context, principal: Member) -> list[dict[str, Any]]:
    return context.inventory.list(DeviceModelRow)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_device_model(new: NewDeviceModel, context: Context, principal: ModelManager) -> dict[str, Any]:
    values = new.model_dump() | {"vendor": new.id.split("/", 1)[0]}
    try:
        return context.inventory.create(DeviceModelRow, values, principal.subject)
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error


@router.get("/{vendor}/{model}")
def get_device_model(device_model: KnownModel) -> dict[str, Any]:
    """A model by its id `vendor/model[@version]`."""
    return device_model


@router.patch("/{vendor}/{model}")
def change_device_model(
    device_model: KnownModel, change: DeviceModelChange, context: Context, principal: ModelManager
) -> dict[str, Any]:
    changes = change.model_dump(exclude_unset=True, exclude_none=True)
    updated = context.inventory.update(DeviceModelRow, device_model["id"], changes, principal.subject)
    return in_scope(updated, f"device model {device_model['id']!r}")


@router.delete("/{vendor}/{model}", status_code=status.HTTP_204_NO_CONTENT)
def delete_device_model(device_model: KnownModel, context: Context, principal: ModelManager) -> None:
    """Remove a model no device uses (409 otherwise)."""
    try:
        deleted = context.inventory.delete(DeviceModelRow, device_model["id"], principal.subject)
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if not deleted:
        raise not_found(f"device model {device_model['id']!r}")
