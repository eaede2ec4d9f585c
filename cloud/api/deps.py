"""Request dependencies: the app's context (settings, stores, planner) and who may call what."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from cloud.settings import CloudSettings
from cloud.store.operational import OperationalStore
from cloud.store.series import SeriesStore

# plan_day(day, depots, assets, latest, language=...) -> an object with `tasks` and `routes`
Planner = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class CloudContext:
    settings: CloudSettings
    store: OperationalStore
    series: SeriesStore
    planner: Planner | None


def get_context(request: Request) -> CloudContext:
    context: CloudContext = request.app.state.cloud
    return context


Context = Annotated[CloudContext, Depends(get_context)]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _is_admin(context: CloudContext, token: str | None) -> bool:
    admin_token = context.settings.admin_token
    return bool(admin_token and token and hmac.compare_digest(token.encode(), admin_token.encode()))


def require_admin(request: Request, context: Context) -> None:
    token = bearer_token(request)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "admin token missing (Authorization: Bearer …)", _CHALLENGE)
    if not context.settings.admin_token:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the admin API is off: no admin_token is configured")
    if not _is_admin(context, token):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "admin token not accepted", _CHALLENGE)


def require_reader(request: Request, context: Context) -> None:
    """Reads are open in the local demo (`open_read`); otherwise they need the admin token until accounts exist."""
    if context.settings.open_read:
        return
    token = bearer_token(request)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "token missing (Authorization: Bearer …)", _CHALLENGE)
    if not _is_admin(context, token):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "token not accepted for reading", _CHALLENGE)


def require_gateway(request: Request, context: Context) -> str:
    """The id of the gateway whose token the request carries."""
    token = bearer_token(request)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "gateway token missing (Authorization: Bearer …)", _CHALLENGE)
    gateway_id = context.store.gateway_for_token(token)
    if gateway_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "gateway token not known", _CHALLENGE)
    return gateway_id


AdminOnly = Depends(require_admin)
Reader = Depends(require_reader)
GatewayId = Annotated[str, Depends(require_gateway)]
