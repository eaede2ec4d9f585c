"""People's accounts: a role in one town (or, for the Zweckverband's district admins, all towns)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Context, Member, RowId, UserManager, in_scope, not_found
from cloud.auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Principal, Role, check_role_and_town, hash_password
from cloud.store.accounts import UserView
from cloud.store.inventory import NotInScopeError
from cloud.store.operational import ConflictError

router = APIRouter(prefix="/api/v1/users", tags=["users"])

Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")
    password: Password
    role: Role
    municipality: str | None = Field(default=None, max_length=64, description="default: the caller's town")


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password | None = None
    role: Role | None = None
    municipality: str | None = Field(default=None, max_length=64)
    active: bool | None = None


def _view(user: UserView) -> dict[str, Any]:
    return asdict(user) | {"role": user.role.value}


def _check_assignment(context: Context, principal: Principal, role: Role, municipality: str | None) -> None:
    try:
        if municipality is not None:
            context.inventory.check_town(municipality, principal.scope)
        check_role_and_town(role, municipality)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    if role is Role.DISTRICT_ADMIN and not principal.scope.all_towns:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a district admin may make district admins")


def user_in_scope(user_id: RowId, context: Context, principal: Member) -> UserView:
    return in_scope(context.accounts.user(user_id, principal.scope), f"user {user_id}")


ScopedUser = Annotated[UserView, Depends(user_in_scope)]


@router.get("")
def list_users(context: Context, principal: UserManager) -> list[dict[str, Any]]:
    return [_view(u) for u in context.accounts.users(principal.scope)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(new: NewUser, context: Context, principal: UserManager) -> dict[str, Any]:
    """Create an account; a town admin creates accounts of their own town only."""
    municipality = new.municipality if new.municipality is not None else principal.municipality
    if new.role is Role.DISTRICT_ADMIN and new.municipality is None:
        municipality = None
    _check_assignment(context, principal, new.role, municipality)
    try:
        user = context.accounts.create_user(
            new.username, hash_password(new.password), new.role, municipality, principal.subject
        )
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    return _view(user)


@router.get("/{user_id}")
def get_user(user: ScopedUser, principal: UserManager) -> dict[str, Any]:
    return _view(user)


@router.patch("/{user_id}")
def change_user(user: ScopedUser, change: UserChange, context: Context, principal: UserManager) -> dict[str, Any]:
    """Change password, role, town or whether the account is active; a new password or deactivation logs out."""
    given = change.model_dump(exclude_unset=True)
    role = change.role or user.role
    municipality = given.get("municipality", user.municipality)
    if role is Role.DISTRICT_ADMIN and "municipality" not in given:
        municipality = None
    if "role" in given or "municipality" in given:
        _check_assignment(context, principal, role, municipality)
    changes: dict[str, Any] = {}
    if change.password is not None:
        changes["password_hash"] = hash_password(change.password)
    if "role" in given or "municipality" in given:
        changes |= {"role": role, "municipality": municipality}
    if change.active is not None:
        changes["active"] = change.active
    updated = context.accounts.update_user(user.id, changes, principal.subject, principal.scope)
    return _view(in_scope(updated, f"user {user.id}"))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(user: ScopedUser, context: Context, principal: UserManager) -> None:
    if not context.accounts.delete_user(user.id, principal.subject, principal.scope):
        raise not_found(f"user {user.id}")
