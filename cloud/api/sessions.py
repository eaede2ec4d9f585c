"""Login and logout: a password gives an opaque token that expires; `me` says who the token stands for."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Context, CurrentPrincipal, bearer_token
from cloud.auth import MAX_PASSWORD_LENGTH, burn_password_time, verify_password

logger = logging.getLogger("cloud.sessions")

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class LoginAnswer(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    username: str
    role: str
    municipality: str | None


@router.post("/login", responses={401: {"description": "unknown user, wrong password or deactivated account"}})
def login(credentials: Login, context: Context) -> LoginAnswer:
    """Exchange username and password for a bearer token (valid `session_ttl_hours`)."""
    found = context.accounts.credentials(credentials.username)
    if found is None:
        burn_password_time(credentials.password)  # unknown names take as long as wrong passwords
        ok = False
    else:
        ok = verify_password(credentials.password, found[1]) and found[0].active
    if not ok or found is None:
        logger.info("login refused username=%r", credentials.username)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "username or password not accepted", {"WWW-Authenticate": "Bearer"}
        )
    user = found[0]
    token, expires_at = context.accounts.start_session(user, timedelta(hours=context.settings.session_ttl_hours))
    logger.info("login user=%s role=%s municipality=%s", user.username, user.role, user.municipality)
    return LoginAnswer(
        token=token, expires_at=expires_at, username=user.username, role=user.role.value, municipality=user.municipality
    )


@router.post("/logout")
def logout(request: Request, context: Context, principal: CurrentPrincipal) -> dict[str, bool]:
    """End the login whose token the request carries (API keys are deleted under /api-keys instead)."""
    token = bearer_token(request) or ""
    return {"revoked": context.accounts.end_session(token, principal)}


@router.get("/me")
def me(principal: CurrentPrincipal) -> dict[str, Any]:
    """Who the token stands for: subject, role and town (null: all towns)."""
    return {"subject": principal.subject, "role": principal.role.value, "municipality": principal.municipality}
