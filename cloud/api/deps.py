"""Request dependencies: the app's context (settings, stores, planner), who calls (the principal) and what they may
do. The tenant scope comes from here and nowhere else: handlers pass `principal.scope` (or `town_scope`) to the
stores, which answer None for other towns' objects, and the handlers turn that into 404.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status

from cloud.auth import Permission, Principal, Role
from cloud.settings import CloudSettings
from cloud.store.accounts import Accounts
from cloud.store.inventory import Inventory
from cloud.store.operational import OperationalStore, Scope
from cloud.store.series import SeriesStore

# plan_day(day, depots, assets, latest, language=...) -> an object with `tasks` and `routes`
Planner = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class CloudContext:
    settings: CloudSettings
    store: OperationalStore
    series: SeriesStore
    planner: Planner | None
    accounts: Accounts
    inventory: Inventory


def get_context(request: Request) -> CloudContext:
    context: CloudContext = request.app.state.cloud
    return context


Context = Annotated[CloudContext, Depends(get_context)]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}

BOOTSTRAP_ADMIN = "bootstrap-admin"
_OPEN_READER = Principal("anonymous", Role.CREW, None)


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, reason, _CHALLENGE)


def _principal_for(context: CloudContext, token: str) -> Principal | None:
    admin_token = context.settings.admin_token
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        # The bootstrap key from the settings: a district admin, to create the first accounts (and for the demo).
        return Principal(BOOTSTRAP_ADMIN, Role.DISTRICT_ADMIN, None)
    return context.accounts.principal_for_token(token)


def current_principal(request: Request, context: Context) -> Principal:
    """Who calls: a login token, an API key or the bootstrap admin key; 401 for anything else."""
    token = bearer_token(request)
    if token is None:
        raise _unauthorized("token missing (Authorization: Bearer …)")
    principal = _principal_for(context, token)
    if principal is None:
        raise _unauthorized("token not accepted: unknown, expired or revoked")
    return principal


def reading_principal(request: Request, context: Context) -> Principal:
    """As `current_principal`, but in the local demo (`open_read`) a call without a token may read all towns."""
    if context.settings.open_read and bearer_token(request) is None:
        return _OPEN_READER
    return current_principal(request, context)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
ReadingPrincipal = Annotated[Principal, Depends(reading_principal)]


def allowed(permission: Permission, *, open_read: bool = False) -> Any:
    """A dependency giving the principal if its role has `permission`; 403 names what is missing."""
    source = reading_principal if open_read else current_principal

    # A default rather than an Annotated hint: with postponed annotations FastAPI could not see the local `source`.
    def check(principal: Principal = Depends(source)) -> Principal:  # noqa: B008
        if not principal.may(permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the role {principal.role.value} may not {permission.value.replace('_', ' ')}",
            )
        return principal

    return Depends(check)


def town_scope(principal: Principal, municipality: str | None) -> Scope:
    """The scope narrowed to a requested town: a town outside the principal's scope is 404, as if it did not exist."""
    if municipality is None:
        return principal.scope
    if not principal.scope.allows(municipality):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no municipality {municipality!r}")
    return Scope(municipality)


def requested_towns(
    principal: Annotated[Principal, Depends(current_principal)], municipality: str | None = None
) -> Scope:
    """The `municipality` query parameter as a scope, checked before any role check so another town is 404."""
    return town_scope(principal, municipality)


RequestedTowns = Annotated[Scope, Depends(requested_towns)]
Reader = Annotated[Principal, allowed(Permission.READ, open_read=True)]
Member = Annotated[Principal, allowed(Permission.READ)]
TaskChanger = Annotated[Principal, allowed(Permission.CHANGE_TASKS)]
DayPlanner = Annotated[Principal, allowed(Permission.PLAN)]
InventoryManager = Annotated[Principal, allowed(Permission.MANAGE_INVENTORY)]
KeyExporter = Annotated[Principal, allowed(Permission.EXPORT_DEVICE_KEYS)]
ModelManager = Annotated[Principal, allowed(Permission.MANAGE_DEVICE_MODELS)]
UserManager = Annotated[Principal, allowed(Permission.MANAGE_USERS)]
MunicipalityManager = Annotated[Principal, allowed(Permission.MANAGE_MUNICIPALITIES)]
AuditReader = Annotated[Principal, allowed(Permission.READ_AUDIT)]


def require_gateway(request: Request, context: Context) -> str:
    """The id of the gateway whose token the request carries."""
    token = bearer_token(request)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "gateway token missing (Authorization: Bearer …)", _CHALLENGE)
    gateway_id = context.store.gateway_for_token(token)
    if gateway_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "gateway token not known", _CHALLENGE)
    return gateway_id


GatewayId = Annotated[str, Depends(require_gateway)]


def not_found(what: str) -> HTTPException:
    """The one answer for objects that do not exist *or* belong to another town: the caller cannot tell which."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {what}")


def in_scope(found: Any, what: str) -> Any:
    if found is None:
        raise not_found(what)
    return found


# Numeric ids fit a 32-bit column on every database; larger numbers are refused as 422 before any query.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
