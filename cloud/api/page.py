"""The dispatcher page: one day's tasks per town with their routes, server-rendered, German by default, offline."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from html import escape
from importlib import resources
from string import Template
from typing import Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cloud.api.crew import json_for_script
from cloud.api.deps import CloudContext, Context, Reader
from cloud.api.feed import clock, late_text, reload_label, route_summary
from cloud.store.operational import ALL_TOWNS, Scope, StoredRoute, StoredTask
from cloud.store.series import SeriesStoreUnavailableError
from flurfunk.contracts import MUNICIPALITIES, Asset, TaskKind, TaskState
from flurfunk.i18n import Language, text

router = APIRouter(tags=["page"])

# The towns' clock decides what "today" is for the Bauhof.
TOWN_TIME_ZONE = ZoneInfo("Europe/Berlin")
KIND_ORDER = (TaskKind.COLLECT, TaskKind.WATER, TaskKind.INSPECT, TaskKind.MAINTAIN)

_PAGE = Template(resources.files("cloud").joinpath("templates/dispatcher.html").read_text(encoding="utf-8"))


def town_today() -> date:
    return datetime.now(TOWN_TIME_ZONE).date()


def _number(value: float, language: Language, decimals: int = 0) -> str:
    formatted = f"{value:,.{decimals}f}"
    if language == "de":
        formatted = formatted.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return formatted


def _local_time(moment: datetime, language: Language) -> str:
    local = moment.astimezone(TOWN_TIME_ZONE)
    return local.strftime("%d.%m.%Y %H:%M") if language == "de" else local.strftime("%Y-%m-%d %H:%M")


def _day_label(day: date, language: Language) -> str:
    return day.strftime("%d.%m.%Y") if language == "de" else day.isoformat()


def _link(label: str, day: date | None, language: Language) -> str:
    query = urlencode({"day": day.isoformat(), "lang": language} if day else {"lang": language})
    return f'<a href="/?{escape(query)}">{escape(label)}</a>'


def _kind_name(kind: TaskKind, language: Language) -> str:
    return text(f"task.kind.{kind.value}", language)


def _state_name(stored: StoredTask, language: Language) -> str:
    task = stored.task
    if task.state is TaskState.SKIPPED:
        return text("task.state.skipped", language, skip_reason=task.skip_reason or "")
    return text(f"task.state.{task.state.value}", language)


def _overview(tasks: list[StoredTask], towns: list[str], language: Language) -> str:
    counts: dict[tuple[str, TaskKind], int] = defaultdict(int)
    for stored in tasks:
        counts[(stored.task.municipality, stored.task.kind)] += 1
    header = "".join(
        f'<th class="number kind kind-{kind.value}">{escape(_kind_name(kind, language))}</th>' for kind in KIND_ORDER
    )
    rows = "".join(
        f"<tr><td>{escape(town)}</td>"
        + "".join(f'<td class="number">{counts[(town, kind)]}</td>' for kind in KIND_ORDER)
        + "</tr>"
        for town in towns
    )
    return (
        f"<h2>{escape(text('page.dispatch.overview', language))}</h2>"
        f"<table><thead><tr><th>{escape(text('page.dispatch.column.municipality', language))}</th>{header}</tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _route_section(route: StoredRoute, assets: dict[str, Asset], language: Language) -> str:
    """A route's line (kind, stops, km; with a fleet the vehicle, crew, times, trips and lateness) and its places in
    driving order: stops with their village and load, trips to the disposal site or hydrant with what they tip."""
    summary = text(
        "page.dispatch.route",
        language,
        kind=_kind_name(route.kind, language),
        stops=len(route.stops),
        km=_number(route.km, language, 1),
    )
    details = []
    vehicle_line = route_summary(route, language)
    if vehicle_line:
        details.append(f'<p class="route-detail">{escape(vehicle_line)}</p>')
    late_line = late_text(route, language)
    if late_line:
        details.append(f'<p class="route-detail late">{escape(late_line)}</p>')
    items = []
    for visit in route.visits():
        load = (
            f' <span class="load">{escape(text("route.load", language, load=_number(visit.load_l, language)))}</span>'
            if visit.load_l is not None
            else ""
        )
        if visit.site is not None:
            items.append(f'<li class="reload">{escape(reload_label(route, language))}{load}</li>')
            continue
        stop = visit.asset or ""
        village = f' <span class="muted">({escape(assets[stop].village)})</span>' if stop in assets else ""
        at = f'<span class="muted">{escape(clock(visit.at_s) or "")}</span> ' if visit.at_s is not None else ""
        items.append(f"<li>{at}{escape(stop)}{village}{load}</li>")
    return (
        f'<section class="route" id="route-{escape(route.id)}">'
        f'<p class="kind kind-{route.kind.value}">{escape(summary)}</p>{"".join(details)}'
        f'<ol class="route">{"".join(items)}</ol></section>'
    )


def _task_table(tasks: list[StoredTask], assets: dict[str, Asset], language: Language) -> str:
    columns = ("kind", "asset", "village", "reason", "state", "priority")
    headers = []
    for column in columns:
        label = escape(text(f"page.dispatch.column.{column}", language))
        headers.append(f'<th class="number">{label}</th>' if column == "priority" else f"<th>{label}</th>")
    header = "".join(headers)
    rows = []
    for stored in tasks:
        task = stored.task
        asset = assets.get(task.asset)
        rows.append(
            f'<tr id="task-{escape(task.id)}">'
            f'<td class="kind kind-{task.kind.value}">{escape(_kind_name(task.kind, language))}</td>'
            f"<td>{escape(task.asset)}</td>"
            f"<td>{escape(asset.village) if asset else ''}</td>"
            f"<td>{escape(task.reason)}</td>"
            f'<td class="state state-{task.state.value}">{escape(_state_name(stored, language))}</td>'
            f'<td class="number">{task.priority}</td></tr>'
        )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _visiting_order(tasks: list[StoredTask], routes: list[StoredRoute]) -> list[StoredTask]:
    """Routed tasks in the order the crew drives, then the rest by urgency."""
    position = {(route.id, stop): index for route in routes for index, stop in enumerate(route.stops)}
    kind_rank = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
    return sorted(
        tasks,
        key=lambda s: (
            kind_rank[s.task.kind],
            s.task.route_id is None,
            position.get((s.task.route_id or "", s.task.asset), 0),
            -s.task.priority,
            s.task.asset,
        ),
    )


def _nearest_day_with_tasks(context: CloudContext, day: date, scope: Scope) -> date | None:
    days = context.store.task_days(scope)
    return min(days, key=lambda d: (abs((d - day).days), d)) if days else None


def _footer(context: CloudContext, language: Language, scope: Scope) -> str:
    try:
        count = context.series.count()
    except SeriesStoreUnavailableError:
        return ""
    latest = context.store.latest_reading_time(scope)
    if count == 0 or latest is None:
        return escape(text("page.dispatch.no_readings", language))
    return escape(
        text("page.dispatch.readings", language, count=_number(count, language), time=_local_time(latest, language))
    )


def render_dispatcher_page(context: CloudContext, day: date, language: Language, scope: Scope = ALL_TOWNS) -> str:
    tasks = context.store.tasks(day=day, scope=scope)
    routes = context.store.routes(day=day, scope=scope)
    assets = {asset.id: asset for asset in context.store.assets({s.task.asset for s in tasks}, scope)}
    towns = list(MUNICIPALITIES) + sorted({s.task.municipality for s in tasks} - set(MUNICIPALITIES))
    towns = [town for town in towns if scope.allows(town)]

    sections = [_overview(tasks, towns, language)]
    if not tasks:
        nearest = _nearest_day_with_tasks(context, day, scope)
        if nearest is not None:
            link = _link(_day_label(nearest, language), nearest, language)
            message = escape(text("page.dispatch.nearest_day", language, day="\0")).replace("\0", link)
            sections.append(f"<p>{message}</p>")
        else:
            sections.append(f'<p class="muted">{escape(text("page.dispatch.no_tasks", language))}</p>')
    for town in towns:
        town_tasks = [s for s in tasks if s.task.municipality == town]
        town_routes = sorted((r for r in routes if r.municipality == town), key=lambda r: KIND_ORDER.index(r.kind))
        if not town_tasks and not town_routes:
            continue
        sections.append(f"<h2>{escape(town)}</h2>")
        sections.extend(_route_section(route, assets, language) for route in town_routes)
        if town_tasks:
            sections.append(_task_table(_visiting_order(town_tasks, town_routes), assets, language))
        else:
            sections.append(f'<p class="muted">{escape(text("page.dispatch.no_tasks", language))}</p>')

    other: Language = "en" if language == "de" else "de"
    navigation = " ".join(
        [
            f'<a href="/crew?{escape(urlencode({"lang": language, "day": day.isoformat()}))}">'
            f"{escape(text('page.dispatch.crew_link', language))}</a>",
            _link(text("page.dispatch.previous_day", language), day - timedelta(days=1), language),
            _link(text("page.dispatch.today", language), None, language),
            _link(text("page.dispatch.next_day", language), day + timedelta(days=1), language),
            _link(text("page.dispatch.other_language", language), day, other),
        ]
    )
    return _PAGE.substitute(
        lang=language,
        title=escape(text("page.dispatch.title", language, day=_day_label(day, language))),
        navigation=navigation,
        body="\n".join(sections),
        footer=_footer(context, language, scope),
        live_label=escape(text("page.dispatch.live", language)),
        live_config=json_for_script(
            {
                "day": day.isoformat(),
                "states": {
                    state.value: text(f"task.state.{state.value}", language, skip_reason="{skip_reason}")
                    for state in TaskState
                },
            }
        ),
    )


@router.get("/", response_class=HTMLResponse)
def dispatcher_page(
    context: Context, principal: Reader, day: date | None = None, lang: Literal["de", "en"] | None = None
) -> HTMLResponse:
    """Today's (or `day`'s) tasks per town (the caller's) with route order and km; `lang=en` for English."""
    language: Language = lang or context.settings.language
    return HTMLResponse(render_dispatcher_page(context, day or town_today(), language, principal.scope))
