"""Devices (sensors): CRUD, bulk import from a vendor's CSV, and the explicit, audited export of their keys."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.api.deps import Context, InventoryManager, KeyExporter, Member, in_scope, not_found
from cloud.store.device_csv import MAX_CSV_BYTES, DeviceCsvError, parse_device_csv
from cloud.store.inventory import NotInScopeError
from cloud.store.keybox import KeyBoxError
from cloud.store.operational import ConflictError, DeviceRow
from flurfunk.contracts import Eui64

logger = logging.getLogger("cloud.devices")

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

HexKey = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{32}$", description="128-bit key, 32 hex digits")]
ModelId = Annotated[str, Field(min_length=3, max_length=96, pattern=r"^[a-z0-9\-]+/[a-z0-9\-]+(@[a-z0-9\-.]+)?$")]
AssetId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
HexEui = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{16}$")]
HexDevAddr = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{8}$")]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class _DeviceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    join_eui: HexEui | None = None
    dev_addr: HexDevAddr | None = None
    app_key: HexKey | None = None
    nwk_s_key: HexKey | None = None
    app_s_key: HexKey | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    def keys(self) -> dict[str, bytes]:
        return {
            name: bytes.fromhex(value)
            for name in ("app_key", "nwk_s_key", "app_s_key")
            if (value := getattr(self, name)) is not None
        }


class NewDevice(_DeviceFields):
    dev_eui: Eui64
    model_id: ModelId
    asset: AssetId
    report_interval_s: int = Field(default=3600, gt=0, le=7 * 86400)

    @model_validator(mode="after")
    def _one_activation(self) -> NewDevice:
        abp = (self.nwk_s_key, self.app_s_key, self.dev_addr)
        if self.app_key is not None and any(v is not None for v in abp):
            raise ValueError("give either app_key (OTAA) or nwk_s_key, app_s_key and dev_addr (ABP)")
        if self.app_key is None and any(v is not None for v in abp) and not all(v is not None for v in abp):
            raise ValueError("ABP needs nwk_s_key, app_s_key and dev_addr together")
        return self

    @property
    def activation(self) -> str | None:
        if self.app_key is not None:
            return "otaa"
        return "abp" if self.dev_addr is not None else None


class DeviceChange(_DeviceFields):
    model_id: ModelId | None = None
    asset: AssetId | None = None
    report_interval_s: int | None = Field(default=None, gt=0, le=7 * 86400)


def device_in_scope(dev_eui: str, context: Context, principal: Member) -> dict[str, Any]:
    compact = dev_eui.replace("-", "").replace(":", "").lower()
    return in_scope(context.inventory.get(DeviceRow, compact, principal.scope), f"device {dev_eui!r}")


ScopedDevice = Annotated[dict[str, Any], Depends(device_in_scope)]


@router.get("")
def list_devices(
    context: Context, principal: Member, asset: str | None = None, model_id: str | None = None
) -> list[dict[str, Any]]:
    """Devices of the caller's towns; `keys` names which keys a device has, never their values."""
    return context.inventory.list(DeviceRow, principal.scope, asset=asset, model_id=model_id)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_device(new: NewDevice, context: Context, principal: InventoryManager) -> dict[str, Any]:
    """Register a device on an asset of the caller's towns; keys are stored encrypted."""
    values = new.model_dump(include={"dev_eui", "model_id", "asset", "report_interval_s", "join_eui", "dev_addr"})
    values |= {"latitude": new.latitude, "longitude": new.longitude, "activation": new.activation}
    if values["join_eui"]:
        values["join_eui"] = values["join_eui"].lower()
    if values["dev_addr"]:
        values["dev_addr"] = values["dev_addr"].lower()
    try:
        return context.inventory.create_device(values, new.keys(), principal.subject, principal.scope)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error


@router.post(
    "/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "maxLength": MAX_CSV_BYTES}}},
        }
    },
    responses={422: {"description": "one error per bad row: {row, column, reason}; nothing was imported"}},
)
async def import_devices(request: Request, context: Context, principal: InventoryManager) -> dict[str, Any]:
    """Import the vendor's device list (CSV with header: DevEUI, model, asset, AppKey or NwkSKey/AppSKey/DevAddr,
    JoinEUI, latitude, longitude, report interval). All rows or none: any bad row means nothing is stored."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_CSV_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the CSV is over the limit of {MAX_CSV_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CSV_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"the CSV is over the limit of {MAX_CSV_BYTES} bytes"
            )
    try:
        parsed = parse_device_csv(bytes(body))
    except DeviceCsvError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from error
    errors = parsed.errors
    if not errors:
        outcome = context.inventory.import_devices(parsed.rows, principal.subject, principal.scope)
        errors = outcome.errors
    if errors:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {
                "message": f"{len(errors)} problems; nothing was imported",
                "errors": [{"row": e.row, "column": e.column, "reason": e.reason} for e in errors[:1000]],
            },
        )
    logger.info("devices imported count=%d by=%s", len(parsed.rows), principal.subject)
    return {"imported": len(parsed.rows), "ignored_columns": parsed.ignored_columns}


@router.get("/{dev_eui}")
def get_device(device: ScopedDevice) -> dict[str, Any]:
    return device


@router.patch("/{dev_eui}")
def change_device(
    device: ScopedDevice, change: DeviceChange, context: Context, principal: InventoryManager
) -> dict[str, Any]:
    """Change model, asset, interval, coordinates or keys (a key given replaces the stored one)."""
    given = change.model_dump(exclude_unset=True, exclude_none=True)
    changes = {k: v for k, v in given.items() if k not in ("app_key", "nwk_s_key", "app_s_key")}
    for name in ("join_eui", "dev_addr"):
        if name in changes:
            changes[name] = changes[name].lower()
    keys = change.keys()
    if "app_key" in keys:
        changes["activation"] = "otaa"
    elif keys or "dev_addr" in changes:
        changes["activation"] = "abp"
    try:
        updated = context.inventory.update_device(device["dev_eui"], changes, keys, principal.subject, principal.scope)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    return in_scope(updated, f"device {device['dev_eui']!r}")


@router.post("/{dev_eui}/keys/export")
def export_device_keys(device: ScopedDevice, context: Context, principal: KeyExporter) -> dict[str, Any]:
    """The device's keys in clear (hex) for provisioning elsewhere; each export is written to the audit log."""
    try:
        keys = context.inventory.export_device_keys(device["dev_eui"], principal.subject, principal.scope)
    except KeyBoxError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    logger.warning("device keys exported dev_eui=%s by=%s", device["dev_eui"], principal.subject)
    return {"dev_eui": device["dev_eui"], "keys": in_scope(keys, f"device {device['dev_eui']!r}")}


@router.delete("/{dev_eui}", status_code=status.HTTP_204_NO_CONTENT)
def delete_device(device: ScopedDevice, context: Context, principal: InventoryManager) -> None:
    if not context.inventory.delete(DeviceRow, device["dev_eui"], principal.subject, principal.scope):
        raise not_found(f"device {device['dev_eui']!r}")
