"""Alerts API: list, acknowledge and resolve (tenant-scoped; a crew member sees the own crew's alerts), and the
alerts section of the crew page (`crew_alerts_html`)."""

from __future__ import annotations

import html
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse

from cloud.alerts.engine import AlertActionError, AlertRecord
from cloud.alerts.service import AlertService
from cloud.api.deps import Member, in_scope
from cloud.auth import Permission, Principal, Role
from flurfunk.contracts import AlertState
from flurfunk.i18n import Language, text

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


def alert_service(request: Request) -> AlertService:
    service: AlertService = request.app.state.alerts
    return service


def visible_crews(service: AlertService, principal: Principal) -> set[str] | None:
    """None: every crew of the principal's towns; a crew member: the crews whose `members` name them."""
    if principal.role is not Role.CREW or principal.municipality is None:
        return None
    config = service.configs.get(principal.municipality)
    # Logins are `user:<name>`; the roster names people by user name.
    return config.crews_of(principal.subject.removeprefix("user:")) if config else set()


def _visible(service: AlertService, principal: Principal, alert_id: str) -> AlertRecord:
    record = in_scope(service.alerts.alert(alert_id, principal.scope), "alert")
    crews = visible_crews(service, principal)
    if crews is not None and record.crew not in crews:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no alert")
    return record


def alert_json(service: AlertService, record: AlertRecord, with_deliveries: bool = False) -> dict[str, Any]:
    """The Alert contract's fields plus crew, group, members, level and who acknowledged or resolved it."""
    body: dict[str, Any] = {
        "id": record.id,
        "rule": record.rule,
        "severity": record.severity.value,
        "subject": service.summary(record)[:200],
        "municipality": record.municipality,
        "first_seen": record.first_seen.isoformat(),
        "last_seen": record.last_seen.isoformat(),
        "count": record.count,
        "state": record.state.value,
        "crew": record.crew,
        "group": record.group,
        "members": record.members,
        "value": record.value,
        "level": record.level,
        "acknowledged_by": record.acknowledged_by,
        "acknowledged_at": record.acknowledged_at.isoformat() if record.acknowledged_at else None,
        "resolved_by": record.resolved_by,
        "resolved_at": record.resolved_at.isoformat() if record.resolved_at else None,
    }
    if with_deliveries:
        body["deliveries"] = [
            {
                "id": m.id,
                "channel": m.channel,
                "target": m.target,
                "event": m.event,
                "level": m.level,
                "attempts": m.attempts,
                "delivered_at": m.delivered_at.isoformat() if m.delivered_at else None,
                "next_attempt_at": None if m.delivered_at else m.due_at.isoformat(),
                "last_error": m.last_error,
                "log": list(m.log),
            }
            for m in service.alerts.deliveries(record.id)
        ]
    return body


@router.get("")
def list_alerts(
    request: Request,
    principal: Member,
    state: Annotated[list[AlertState] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Newest first; `state` may repeat (default: open and acknowledged)."""
    service = alert_service(request)
    states = state or [AlertState.OPEN, AlertState.ACKNOWLEDGED]
    crews = visible_crews(service, principal)
    records = service.alerts.alerts(principal.scope, states=states, crews=crews, limit=limit)
    return [alert_json(service, record) for record in records]


@router.get("/crew-section", response_class=HTMLResponse)
def crew_alerts_section(
    request: Request,
    principal: Member,
    crew: Annotated[str | None, Query(max_length=100)] = None,
    lang: Literal["de", "en"] = "de",
) -> HTMLResponse:
    """The crew page's alerts section as an HTML fragment: the caller's crews (or `crew`, if they may see it)."""
    return HTMLResponse(crew_alerts_html(alert_service(request), principal, crew, lang))


@router.get("/{alert_id}")
def get_alert(request: Request, principal: Member, alert_id: str) -> dict[str, Any]:
    """One alert with its delivery log."""
    service = alert_service(request)
    return alert_json(service, _visible(service, principal, alert_id), with_deliveries=True)


def _act(request: Request, principal: Principal, alert_id: str, action: str) -> dict[str, Any]:
    service = alert_service(request)
    _visible(service, principal, alert_id)  # looked up before the role check: another town's alert is 404
    if not principal.may(Permission.CHANGE_TASKS):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the role {principal.role.value} may not {action} alerts")
    try:
        if action == "acknowledge":
            record = service.acknowledge(alert_id, principal.subject, principal.scope)
        else:
            record = service.resolve(alert_id, principal.subject, principal.scope)
    except AlertActionError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    return alert_json(service, in_scope(record, "alert"))


@router.post("/{alert_id}/acknowledge")
def acknowledge_alert(request: Request, principal: Member, alert_id: str) -> dict[str, Any]:
    """I take it: escalation stops; the alert resolves itself when the condition clears. 409 if resolved."""
    return _act(request, principal, alert_id, "acknowledge")


@router.post("/{alert_id}/resolve")
def resolve_alert(request: Request, principal: Member, alert_id: str) -> dict[str, Any]:
    """Dealt with: the condition cannot reopen it before the rule's cooldown. 409 if resolved already."""
    return _act(request, principal, alert_id, "resolve")


def crew_alerts(service: AlertService, principal: Principal, crew: str | None = None) -> list[AlertRecord]:
    """Open and acknowledged alerts for the crew page: the principal's crews (or `crew`, if they may see it)."""
    crews = visible_crews(service, principal)
    if crew is not None:
        crews = {crew} if crews is None or crew in crews else set()
    return service.alerts.alerts(principal.scope, states=[AlertState.OPEN, AlertState.ACKNOWLEDGED], crews=crews)


def crew_alerts_html(
    service: AlertService, principal: Principal, crew: str | None = None, language: Language = "de"
) -> str:
    """The crew page's alerts section (escaped HTML). Each open alert has a button with `data-alert-id`; the
    page's script POSTs `/api/v1/alerts/{id}/acknowledge` with the crew's token."""
    records = crew_alerts(service, principal, crew)
    title = html.escape(text("alert.page.title", language))
    if not records:
        return (
            f'<section class="alerts"><h2>{title}</h2><p>{html.escape(text("alert.page.none", language))}</p></section>'
        )
    items = []
    for record in records:
        summary = html.escape(service.summary(record, language))
        severity = html.escape(text(f"alert.severity.{record.severity.value}", language))
        if record.state is AlertState.ACKNOWLEDGED:
            action = html.escape(text("alert.page.acknowledged", language, by=record.acknowledged_by or ""))
        else:
            label = html.escape(text("alert.page.acknowledge", language))
            action = f'<button type="button" data-alert-id="{html.escape(record.id)}">{label}</button>'
        items.append(
            f'<li class="alert alert-{record.severity.value}"><strong>{severity}</strong> {summary} {action}</li>'
        )
    return f'<section class="alerts"><h2>{title}</h2><ul>{"".join(items)}</ul></section>'
