"""The tenants: the six towns (seeded by the first migration) and any the Zweckverband adds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Context, Member, MunicipalityManager, in_scope, not_found
from cloud.store.operational import ConflictError, MunicipalityRow

router = APIRouter(prefix="/api/v1/municipalities", tags=["municipalities"])


class NewMunicipality(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9\-]*$", description="slug for URLs")
    name: str = Field(min_length=1, max_length=64, description="as assets, tasks and users name the town")


def municipality_in_scope(municipality_id: str, context: Context, principal: Member) -> dict[str, Any]:
    found = context.inventory.get(MunicipalityRow, municipality_id, principal.scope)
    return in_scope(found, f"municipality {municipality_id!r}")


ScopedMunicipality = Annotated[dict[str, Any], Depends(municipality_in_scope)]


@router.get("")
def list_municipalities(context: Context, principal: Member) -> list[dict[str, Any]]:
    """The caller's town, or all towns for district admins."""
    return context.inventory.list(MunicipalityRow, principal.scope)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_municipality(new: NewMunicipality, context: Context, principal: MunicipalityManager) -> dict[str, Any]:
    try:
        return context.inventory.create(MunicipalityRow, new.model_dump(), principal.subject)
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error


@router.get("/{municipality_id}")
def get_municipality(municipality: ScopedMunicipality) -> dict[str, Any]:
    return municipality


@router.delete("/{municipality_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_municipality(municipality: ScopedMunicipality, context: Context, principal: MunicipalityManager) -> None:
    """Remove a town that holds nothing any more (409 names what it still has)."""
    try:
        deleted = context.inventory.delete(MunicipalityRow, municipality["id"], principal.subject)
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if not deleted:
        raise not_found(f"municipality {municipality['id']!r}")
