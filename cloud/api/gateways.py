"""Gateways (the towns' Raspberry Pis): which town each serves, its sync state, and its ingest token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Context, InventoryManager, Member, in_scope, not_found
from cloud.store.inventory import NotInScopeError
from cloud.store.operational import ConflictError, GatewayRow

router = APIRouter(prefix="/api/v1/gateways", tags=["gateways"])


class NewGateway(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    municipality: str | None = Field(default=None, max_length=64, description="default: the caller's town")
    name: str | None = Field(default=None, max_length=100)


class GatewayChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    municipality: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=100)


def gateway_in_scope(gateway_id: str, context: Context, principal: Member) -> dict[str, Any]:
    return in_scope(context.inventory.get(GatewayRow, gateway_id, principal.scope), f"gateway {gateway_id!r}")


ScopedGateway = Annotated[dict[str, Any], Depends(gateway_in_scope)]


@router.get("")
def list_gateways(context: Context, principal: Member) -> list[dict[str, Any]]:
    """Gateways of the caller's towns with their acknowledged sequence and last contact (never their tokens)."""
    return context.inventory.list(GatewayRow, principal.scope)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_gateway(new: NewGateway, context: Context, principal: InventoryManager) -> dict[str, Any]:
    """Register a gateway; get its token with `POST /gateways/{id}/token`."""
    values = new.model_dump() | {"municipality": new.municipality or principal.municipality, "acked_seq": 0}
    try:
        return context.inventory.create(GatewayRow, values, principal.subject, principal.scope)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error


@router.get("/{gateway_id}")
def get_gateway(gateway: ScopedGateway) -> dict[str, Any]:
    return gateway


@router.patch("/{gateway_id}")
def change_gateway(
    gateway: ScopedGateway, change: GatewayChange, context: Context, principal: InventoryManager
) -> dict[str, Any]:
    changes = change.model_dump(exclude_unset=True, exclude_none=True)
    try:
        updated = context.inventory.update(GatewayRow, gateway["id"], changes, principal.subject, principal.scope)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    return in_scope(updated, f"gateway {gateway['id']!r}")


@router.post("/{gateway_id}/token")
def issue_gateway_token(gateway: ScopedGateway, context: Context, principal: InventoryManager) -> dict[str, str]:
    """A new ingest token for the gateway, shown this once; the previous token stops working."""
    token = context.inventory.issue_gateway_token(gateway["id"], principal.subject, principal.scope)
    return {"gateway_id": gateway["id"], "token": in_scope(token, f"gateway {gateway['id']!r}")}


@router.delete("/{gateway_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_gateway(gateway: ScopedGateway, context: Context, principal: InventoryManager) -> None:
    """Forget a gateway and its token (a gateway named in the settings comes back at the next start)."""
    if not context.inventory.delete(GatewayRow, gateway["id"], principal.subject, principal.scope):
        raise not_found(f"gateway {gateway['id']!r}")
