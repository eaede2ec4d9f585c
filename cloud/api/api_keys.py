"""API keys for machines (exports, GIS, the works yard's software): a role in one town, shown once, stored hashed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Context, Member, RowId, UserManager, in_scope, not_found
from cloud.auth import Role, check_role_and_town
from cloud.store.accounts import ApiKeyView
from cloud.store.inventory import NotInScopeError
from flurfunk.contracts import UtcDatetime, utc_now

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Role
    municipality: str | None = Field(default=None, max_length=64, description="default: the caller's town")
    expires_at: UtcDatetime | None = None


def _view(key: ApiKeyView) -> dict[str, Any]:
    return asdict(key) | {"role": key.role.value}


def key_in_scope(key_id: RowId, context: Context, principal: Member) -> ApiKeyView:
    return in_scope(context.accounts.api_key(key_id, principal.scope), f"API key {key_id}")


ScopedKey = Annotated[ApiKeyView, Depends(key_in_scope)]


@router.get("")
def list_api_keys(context: Context, principal: UserManager) -> list[dict[str, Any]]:
    return [_view(k) for k in context.accounts.api_keys(principal.scope)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_api_key(new: NewApiKey, context: Context, principal: UserManager) -> dict[str, Any]:
    """Create a key; the answer holds it in `key` — the only time it is shown."""
    municipality = None if new.role is Role.DISTRICT_ADMIN else (new.municipality or principal.municipality)
    try:
        if municipality is not None:
            context.inventory.check_town(municipality, principal.scope)
        check_role_and_town(new.role, municipality)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    if new.role is Role.DISTRICT_ADMIN and not principal.scope.all_towns:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a district admin may create district-wide keys")
    if new.expires_at is not None and new.expires_at <= utc_now():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "expires_at is in the past")
    view, key = context.accounts.create_api_key(new.name, new.role, municipality, new.expires_at, principal.subject)
    return _view(view) | {"key": key}


@router.get("/{key_id}")
def get_api_key(key: ScopedKey, principal: UserManager) -> dict[str, Any]:
    return _view(key)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_api_key(key: ScopedKey, context: Context, principal: UserManager) -> None:
    """Revoke a key at once."""
    if not context.accounts.delete_api_key(key.id, principal.subject, principal.scope):
        raise not_found(f"API key {key.id}")
