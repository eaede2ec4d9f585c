"""The operational database: inventory, gateways, latest state, tasks and routes (SQLAlchemy 2).

SQLite by default, PostgreSQL in production; every statement here runs on both. The schema comes from the Alembic
migrations in `cloud.store.migrations`; reads and writes of town data take a `Scope` (one town, or all).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Unicode,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from flurfunk.contracts import (
    Asset,
    Batch,
    Depot,
    Device,
    GatewayStatus,
    Quantity,
    Reading,
    Task,
    TaskKind,
    TaskState,
)


class ConflictError(ValueError):
    """A change that clashes with what is stored: a duplicate id or name, or an object still in use."""


class UnknownTaskError(LookupError):
    """A task id that the operational store does not hold (or not in the caller's scope)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which municipalities a caller may see and change: one town by name, or all of them (`municipality=None`).

    Objects that belong to no town yet (a device whose asset is unknown) are visible to the all-towns scope only.
    """

    municipality: str | None = None

    @property
    def all_towns(self) -> bool:
        return self.municipality is None

    def allows(self, municipality: str | None) -> bool:
        return self.municipality is None or municipality == self.municipality

    def where(self, query: Any, column: InstrumentedAttribute[Any] | Any) -> Any:
        """`query` narrowed to this scope's town by `column` (a municipality name column)."""
        return query if self.municipality is None else query.where(column == self.municipality)


ALL_TOWNS = Scope()


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) and PostgreSQL (timestamptz) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the operational store; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class DepotRow(Base):
    __tablename__ = "depots"
    municipality: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)


class AssetRow(Base):
    __tablename__ = "assets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    municipality: Mapped[str] = mapped_column(String(64), index=True)
    village: Mapped[str] = mapped_column(String(64))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    capacity_l: Mapped[int | None] = mapped_column(Integer)
    waste_type: Mapped[str | None] = mapped_column(String(32))
    sensor_to_bottom_m: Mapped[float | None] = mapped_column(Float)
    sensor_to_full_m: Mapped[float | None] = mapped_column(Float)
    species: Mapped[str | None] = mapped_column(String(64))
    planting_year: Mapped[int | None] = mapped_column(Integer)


class MunicipalityRow(Base):
    """A tenant. Other tables name their town by `name` (as the contracts do); `id` is the slug in URLs."""

    __tablename__ = "municipalities"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class DeviceModelRow(Base):
    """A device model (payload format), shared by all towns on purpose: a Dragino LSE01 is the same everywhere."""

    __tablename__ = "device_models"
    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")


class DeviceRow(Base):
    __tablename__ = "devices"
    dev_eui: Mapped[str] = mapped_column(String(16), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(96))
    # No foreign key: devices may be registered before their asset, and readings of unknown assets are kept.
    asset: Mapped[str] = mapped_column(String(64), index=True)
    report_interval_s: Mapped[int] = mapped_column(Integer)
    # The asset's town when the device was stored; None until the asset is known (then only district admins see it).
    municipality: Mapped[str | None] = mapped_column(String(64), index=True)
    activation: Mapped[str | None] = mapped_column(String(8))  # otaa or abp
    join_eui: Mapped[str | None] = mapped_column(String(16))
    dev_addr: Mapped[str | None] = mapped_column(String(8))
    # Session and root keys, AES-GCM encrypted (cloud.store.keybox); never stored or returned in clear.
    app_key_enc: Mapped[str | None] = mapped_column(Text)
    nwk_s_key_enc: Mapped[str | None] = mapped_column(Text)
    app_s_key_enc: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)


class GatewayRow(Base):
    __tablename__ = "gateways"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    municipality: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    # "settings" (FLURFUNK_CLOUD_GATEWAY_TOKENS, replaced at every start) or "api" (issued through the admin API)
    token_source: Mapped[str | None] = mapped_column(String(16))
    acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LatestRow(Base):
    __tablename__ = "latest_state"
    asset: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    device: Mapped[str] = mapped_column(String(16))
    flags: Mapped[list[str]] = mapped_column(JSON)


class RouteRow(Base):
    __tablename__ = "routes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date, index=True)
    stops: Mapped[list[str]] = mapped_column(JSON)
    km: Mapped[float] = mapped_column(Float)
    polyline: Mapped[list[list[float]]] = mapped_column(JSON)
    crew: Mapped[str | None] = mapped_column(String(100))
    # Planned with a fleet (all None without one): the vehicle, what it holds and where it tips or refills; per stop
    # (in `stops` order) its load, service seconds and planned service start; the trips to the site
    # ([{"after_stop": n}]) and each trip's load; when it leaves, returns, must be back (seconds since local
    # midnight) and how late it runs.
    vehicle: Mapped[str | None] = mapped_column(String(64))
    capacity_l: Mapped[int | None] = mapped_column(Integer)
    reload_site: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    loads: Mapped[list[int] | None] = mapped_column(JSON)
    service_s: Mapped[list[int] | None] = mapped_column(JSON)
    service_starts_s: Mapped[list[int] | None] = mapped_column(JSON)
    reloads: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    trip_loads: Mapped[list[int] | None] = mapped_column(JSON)
    start_s: Mapped[int | None] = mapped_column(Integer)
    end_s: Mapped[int | None] = mapped_column(Integer)
    shift_end_s: Mapped[int | None] = mapped_column(Integer)
    speed_kmh: Mapped[float | None] = mapped_column(Float)
    late_s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class TaskRow(Base):
    __tablename__ = "tasks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(64), index=True)
    municipality: Mapped[str] = mapped_column(String(64), index=True)
    due_from: Mapped[datetime] = mapped_column(UtcDateTime)
    due_until: Mapped[datetime] = mapped_column(UtcDateTime)
    priority: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(32), index=True)
    skip_reason: Mapped[str | None] = mapped_column(Text)
    # No foreign key: replanning keeps every route a remaining task names, and the planner's ids are its own.
    route_id: Mapped[str | None] = mapped_column(String(64))
    crew: Mapped[str | None] = mapped_column(String(100))
    # Moved or added by a dispatcher: a replan keeps it even while it is still `planned`.
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class TaskEventRow(Base):
    """One change of a task (or a replanned day), in order: the source of the live feed (server-sent events).

    Kept in the database rather than in memory so every API replica streams the same events with the same ids,
    and a client that reconnects with Last-Event-ID gets what it missed."""

    __tablename__ = "task_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    municipality: Mapped[str] = mapped_column(String(64), index=True)
    day: Mapped[date] = mapped_column(Date)
    action: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class SchedulerJobRow(Base):
    """APScheduler's SQLAlchemyJobStore table (its own layout), declared here so the migrations own the schema."""

    __tablename__ = "apscheduler_jobs"
    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    # None only for the Zweckverband's district admins, who serve all six towns
    municipality: Mapped[str | None] = mapped_column(String(64), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SessionTokenRow(Base):
    """A login: the SHA-256 of an opaque random token (256 bits, so a plain hash suffices) and when it expires."""

    __tablename__ = "session_tokens"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ApiKeyRow(Base):
    """A machine's key: a role in one town (or all), stored as SHA-256; the key itself is shown once."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(32))
    municipality: Mapped[str | None] = mapped_column(String(64), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditRow(Base):
    """One change: who (principal), what (action on entity and id, before/after without secrets), when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    municipality: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def add_audit(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    municipality: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a change in the same transaction as the change itself: no change without its audit line."""
    session.add(
        AuditRow(
            at=datetime.now(UTC),
            actor=actor[:100],
            municipality=municipality,
            action=action,
            entity=entity,
            entity_id=entity_id[:128],
            before=before,
            after=after,
        )
    )


@dataclass(frozen=True, slots=True)
class LatestState:
    """The newest value of one quantity at one asset, and which device said so."""

    value: float
    time: datetime
    flags: tuple[str, ...]
    device: str


@dataclass(frozen=True, slots=True)
class GatewayState:
    id: str
    municipality: str | None
    acked_seq: int
    last_seen: datetime | None
    status: GatewayStatus | None


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task as the cloud keeps it: the contract plus the day it was planned for."""

    task: Task
    day: date
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A change for the live feed: `action` is added, moved, changed (state) or planned (a day was replanned)."""

    id: int
    at: datetime
    municipality: str
    day: date
    action: str
    task_id: str | None
    payload: dict[str, Any]


class RouteLike(Protocol):
    """What a planned route gives the store (the scheduler's `Route` fits)."""

    id: str
    municipality: str
    kind: TaskKind
    day: date
    stops: Sequence[str]
    km: float
    polyline: Sequence[tuple[float, float]] | Sequence[Sequence[float]]


@dataclass(frozen=True, slots=True)
class ReloadSite:
    """Where a route's vehicle tips its load (a disposal site) or fills its tank (a hydrant)."""

    id: str
    name: str
    latitude: float
    longitude: float
    unload_s: int = 0


@dataclass(frozen=True, slots=True)
class RouteVisit:
    """One place of a route in driving order: a stop (`asset`, the load it adds) or a trip to the reload site
    (`site`, the load tipped there or the litres filled)."""

    position: int  # 0-based place in the sequence
    asset: str | None = None
    load_l: int | None = None
    site: ReloadSite | None = None
    at_s: int | None = None  # a stop's planned service start, seconds since local midnight


@dataclass(frozen=True, slots=True)
class StoredRoute:
    id: str
    municipality: str
    kind: TaskKind
    day: date
    stops: list[str]
    km: float
    polyline: list[tuple[float, float]]
    crew: str | None = None
    vehicle: str | None = None
    capacity_l: int | None = None
    reload_site: ReloadSite | None = None
    loads: list[int] | None = None
    service_starts_s: list[int] | None = None
    reload_after: tuple[int, ...] = ()  # a trip to the reload site after this many stops, one entry per trip
    trip_loads: list[int] | None = None
    start_s: int | None = None
    end_s: int | None = None
    late_s: int = 0

    def visits(self) -> list[RouteVisit]:
        """Stops and trips to the reload site in driving order. A trip carries the load of the trip it ends: what
        a truck tips there, or the litres a tanker poured and fills up again."""
        sequence: list[RouteVisit] = []
        trips = list(self.trip_loads or [])
        pending = sorted(self.reload_after) if self.reload_site is not None else []
        done_trips = 0
        for index, stop in enumerate([*self.stops, None]):
            while pending and pending[0] <= index:
                pending.pop(0)
                load = trips[done_trips] if done_trips < len(trips) else None
                sequence.append(RouteVisit(len(sequence), site=self.reload_site, load_l=load))
                done_trips += 1
            if stop is not None:
                load = self.loads[index] if self.loads is not None and index < len(self.loads) else None
                starts = self.service_starts_s
                at_s = starts[index] if starts is not None and index < len(starts) else None
                sequence.append(RouteVisit(len(sequence), asset=stop, load_l=load, at_s=at_s))
        return sequence


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    tasks_stored: int
    tasks_kept: int
    routes_stored: int


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_TASK_FIELDS = tuple(Task.model_fields)
_ASSET_FIELDS = tuple(Asset.model_fields)


def _task_from_row(row: TaskRow) -> Task:
    return Task.model_validate({name: getattr(row, name) for name in _TASK_FIELDS})


def _route_from_row(row: RouteRow) -> StoredRoute:
    site = row.reload_site
    return StoredRoute(
        id=row.id,
        municipality=row.municipality,
        kind=TaskKind(row.kind),
        day=row.day,
        stops=list(row.stops),
        km=row.km,
        polyline=[(float(lat), float(lon)) for lat, lon in row.polyline],
        crew=row.crew,
        vehicle=row.vehicle,
        capacity_l=row.capacity_l,
        reload_site=ReloadSite(
            id=str(site["id"]),
            name=str(site["name"]),
            latitude=float(site["latitude"]),
            longitude=float(site["longitude"]),
            unload_s=int(site.get("unload_s", 0)),
        )
        if site
        else None,
        loads=list(row.loads) if row.loads is not None else None,
        service_starts_s=list(row.service_starts_s) if row.service_starts_s is not None else None,
        reload_after=tuple(int(entry["after_stop"]) for entry in row.reloads or ()),
        trip_loads=list(row.trip_loads) if row.trip_loads is not None else None,
        start_s=row.start_s,
        end_s=row.end_s,
        late_s=row.late_s or 0,
    )


def _fleet_columns(route: RouteLike) -> dict[str, Any]:
    """What a route planned with a fleet (`cloud.scheduler.fleet_routes.FleetRoute`) adds to its row; a plain route
    gives None (and 0 late) for all of it."""
    site = getattr(route, "reload_site", None)
    loads = getattr(route, "stop_loads", ())
    service = getattr(route, "stop_service_s", ())
    starts = getattr(route, "service_starts_s", ())
    trips = getattr(route, "trip_loads", ())
    return {
        "vehicle": getattr(route, "vehicle", None),
        "capacity_l": getattr(route, "capacity_l", None),
        "reload_site": {
            "id": site.id,
            "name": site.name,
            "latitude": site.latitude,
            "longitude": site.longitude,
            "unload_s": site.unload_s,
        }
        if site is not None
        else None,
        "loads": [int(load) for load in loads] if loads else None,
        "service_s": [int(seconds) for seconds in service] if service else None,
        "service_starts_s": [int(seconds) for seconds in starts] if starts and service else None,
        "reloads": [{"after_stop": int(reload.after_stop)} for reload in getattr(route, "reloads", ())] or None,
        "trip_loads": [int(load) for load in trips] if trips else None,
        "start_s": getattr(route, "start_s", None),
        "end_s": getattr(route, "end_s", None),
        "shift_end_s": getattr(route, "shift_end_s", None),
        "speed_kmh": getattr(route, "speed_kmh", None),
        "late_s": int(getattr(route, "late_s", 0) or 0),
    }


def default_crew(kind: TaskKind | str) -> str:
    """The crew of a planned task nobody assigned: one crew per town and kind, named by the kind ("collect")."""
    return TaskKind(kind).value


def _stored(row: TaskRow) -> StoredTask:
    return StoredTask(task=_task_from_row(row), day=row.day, pinned=bool(row.pinned))


def _task_payload(row: TaskRow) -> dict[str, Any]:
    return {**_task_from_row(row).model_dump(mode="json"), "day": row.day.isoformat(), "pinned": bool(row.pinned)}


def _add_event(
    session: Session, action: str, municipality: str, day: date, task_id: str | None, payload: dict[str, Any]
) -> None:
    session.add(
        TaskEventRow(
            at=datetime.now(UTC), municipality=municipality, day=day, action=action, task_id=task_id, payload=payload
        )
    )


def _polyline_km(points: Sequence[Sequence[float]]) -> float:
    from cloud.scheduler.geo import haversine_km  # pure and small; the scheduler package is otherwise not needed

    return sum(haversine_km(a[0], a[1], b[0], b[1]) for a, b in pairwise(points))


def asset_from_row(row: AssetRow) -> Asset:
    return Asset.model_validate({name: getattr(row, name) for name in _ASSET_FIELDS})


def _towns_of(rows: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """An audit summary of a bulk upsert: how many items per town (the items themselves would be too long)."""
    per_town: dict[str, int] = {}
    for row in rows.values():
        per_town[str(row.get("municipality"))] = per_town.get(str(row.get("municipality")), 0) + 1
    return {"count": len(rows), "per_municipality": per_town}


def _refresh_device_towns(session: Session) -> None:
    town_of_asset = select(AssetRow.municipality).where(AssetRow.id == DeviceRow.asset).scalar_subquery()
    session.execute(update(DeviceRow).values(municipality=town_of_asset).execution_options(synchronize_session=False))


_WRITES = "flurfunk_writes"


def _refit_route(session: Session, route: RouteRow, stops: list[str], new_tasks: Mapping[str, TaskRow]) -> None:
    """Give `route` the stops `stops` (a dispatcher's order) and fit the rest to it: each stop keeps its load and
    service time, a new stop's load comes from its task (`new_tasks`, by asset; `cloud.scheduler.fleet.stop_load_l`);
    trips to the reload site go where the vehicle is full (`fleet.reload_positions`), and a route that ended with a
    trip to the site keeps it; the polyline runs yard → stops and site visits → yard, km scaled by the route's own
    road factor (km over straight-line length before the change); each stop's time, the end and the lateness follow
    from the speed, service and unloading times the route was planned with."""
    from cloud.scheduler.fleet import reload_positions, stop_load_l, trip_loads  # pure; the solver is not needed

    where = {a.id: a for a in session.scalars(select(AssetRow).where(AssetRow.id.in_(stops)))}
    depot = route.polyline[0] if route.polyline else None
    straight_before = _polyline_km(route.polyline) if route.polyline else 0.0
    road_factor = route.km / straight_before if straight_before > 0 else 1.3
    site = route.reload_site
    positions: list[int] = []
    if route.loads is not None:
        old_loads = dict(zip(route.stops, route.loads, strict=False))
        old_service = dict(zip(route.stops, route.service_s or [], strict=False))
        typical_service = round(sum(old_service.values()) / len(old_service)) if old_service else 90
        loads = []
        for stop in stops:
            if stop in old_loads:
                loads.append(int(old_loads[stop]))
                continue
            task = new_tasks.get(stop)
            asset = where.get(stop)
            capacity = asset.capacity_l if asset is not None else None
            loads.append(stop_load_l(route.kind, capacity, task.evidence if task is not None else {}))
        service = [int(old_service.get(stop, typical_service)) for stop in stops]
        if site is not None:
            positions = reload_positions(loads, route.capacity_l)
            ended_at_site = any(int(entry["after_stop"]) >= len(route.stops) for entry in route.reloads or ())
            if ended_at_site and stops and (not positions or positions[-1] < len(stops)):
                positions.append(len(stops))
        route.loads, route.service_s = loads, service
        route.reloads = [{"after_stop": after} for after in positions] or None
        route.trip_loads = trip_loads(loads, positions)
    site_point = [float(site["latitude"]), float(site["longitude"])] if site else None
    places: list[tuple[list[float], str | None]] = []  # the polyline's points after the yard: (point, stop or None)
    pending = list(positions)
    for index, stop in enumerate([*stops, None]):
        while pending and pending[0] <= index and site_point is not None:
            pending.pop(0)
            places.append((site_point, None))
        if stop is not None and stop in where:
            places.append(([where[stop].latitude, where[stop].longitude], stop))
    points = [point for point, _ in places]
    polyline = [depot, *points, depot] if depot is not None else points
    route.stops = stops
    route.polyline = polyline
    route.km = round(_polyline_km(polyline) * road_factor, 3)
    if route.start_s is not None and route.speed_kmh and route.service_s is not None and depot is not None:
        # Times along the new order: driving at the planned speed on the route's road factor, each stop's service,
        # each trip to the site's unloading; a market's time window is not waited for (the planner's times were).
        service_of = dict(zip(stops, route.service_s, strict=False))
        unload_s = int(site.get("unload_s", 0)) if site else 0
        clock = float(route.start_s)
        here = depot
        starts: list[int] = []
        for point, stop in places:
            clock += _polyline_km([here, point]) * road_factor / route.speed_kmh * 3600
            here = point
            if stop is not None:
                starts.append(round(clock))
                clock += service_of.get(stop, 0)
            else:  # a trip to the site
                clock += unload_s
        clock += _polyline_km([here, depot]) * road_factor / route.speed_kmh * 3600
        route.service_starts_s = starts if len(starts) == len(stops) else None
        route.end_s = round(clock)
        route.late_s = max(route.end_s - route.shift_end_s, 0) if route.shift_end_s is not None else 0


def _make_sqlite_writers_wait(engine: Engine) -> None:
    """WAL, and BEGIN IMMEDIATE for transactions that write: a deferred transaction that starts writing while
    another writer commits fails at once with SQLITE_BUSY instead of waiting for the busy timeout. Reads stay
    deferred, so in WAL mode they never wait for writers."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITES) else "BEGIN")


class OperationalStore:
    """The repository over the operational database; each method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(engine.execution_options(**{_WRITES: True}), expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> OperationalStore:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return cls(create_engine(url, pool_pre_ping=True, **engine_options))
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False} | ({} if "timeout" in parsed.query else {"timeout": 15})
        engine_options.setdefault("connect_args", connect_args)
        engine = create_engine(url, **engine_options)
        _make_sqlite_writers_wait(engine)
        return cls(engine)

    def create_schema(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        from cloud.store.migrations import upgrade_to_head

        upgrade_to_head(self.engine)

    def session(self) -> Session:
        """A session for reading."""
        return self._sessions()

    def write_session(self) -> Session:
        """A session for a transaction that writes (on SQLite it takes the write lock at BEGIN)."""
        return self._write_sessions()

    # -- inventory ------------------------------------------------------------------------------------------------

    def _upsert(self, session: Session, row_type: type[Base], rows: list[dict[str, Any]], keys: list[str]) -> None:
        if not rows:
            return
        dialect = session.get_bind().dialect.name
        dialect_insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
        if dialect_insert is None:
            raise NotImplementedError(f"upserts are written for SQLite and PostgreSQL, not {dialect}")
        statement = dialect_insert(row_type)
        updates = {name: statement.excluded[name] for name in rows[0] if name not in keys}
        statement = statement.on_conflict_do_update(index_elements=keys, set_=updates)
        session.execute(statement, rows)

    def upsert_depots(self, depots: Iterable[Depot], actor: str = "system") -> int:
        rows = {(d.municipality, d.name): d.model_dump() for d in depots}
        with self.write_session() as session, session.begin():
            self._upsert(session, DepotRow, list(rows.values()), ["municipality", "name"])
            if rows:
                add_audit(session, actor, "upsert", "depots", f"{len(rows)} depots", None, after=_towns_of(rows))
        return len(rows)

    def upsert_assets(self, assets: Iterable[Asset], actor: str = "system") -> int:
        rows = {a.id: a.model_dump(mode="json") for a in assets}
        with self.write_session() as session, session.begin():
            self._upsert(session, AssetRow, list(rows.values()), ["id"])
            if rows:
                session.flush()
                # A device takes its asset's town: assets may arrive after their devices, or move.
                _refresh_device_towns(session)
                add_audit(session, actor, "upsert", "assets", f"{len(rows)} assets", None, after=_towns_of(rows))
        return len(rows)

    def upsert_devices(self, devices: Iterable[Device], actor: str = "system") -> int:
        rows = {d.dev_eui: d.model_dump() for d in devices}
        with self.write_session() as session, session.begin():
            self._upsert(session, DeviceRow, list(rows.values()), ["dev_eui"])
            if rows:
                session.flush()
                _refresh_device_towns(session)
                add_audit(session, actor, "upsert", "devices", f"{len(rows)} devices", None, after={"count": len(rows)})
        return len(rows)

    def depots(self, scope: Scope = ALL_TOWNS) -> list[Depot]:
        query = scope.where(select(DepotRow), DepotRow.municipality).order_by(DepotRow.municipality, DepotRow.name)
        with self.session() as session:
            rows = session.scalars(query).all()
        return [
            Depot(municipality=r.municipality, name=r.name, latitude=r.latitude, longitude=r.longitude) for r in rows
        ]

    def assets(self, ids: Iterable[str] | None = None, scope: Scope = ALL_TOWNS) -> list[Asset]:
        query = scope.where(select(AssetRow), AssetRow.municipality).order_by(AssetRow.id)
        if ids is not None:
            query = query.where(AssetRow.id.in_(sorted(set(ids))))
        with self.session() as session:
            rows = session.scalars(query).all()
        return [asset_from_row(r) for r in rows]

    def devices(self, scope: Scope = ALL_TOWNS) -> list[Device]:
        query = scope.where(select(DeviceRow), DeviceRow.municipality).order_by(DeviceRow.dev_eui)
        with self.session() as session:
            rows = session.scalars(query).all()
        return [
            Device(dev_eui=r.dev_eui, model_id=r.model_id, asset=r.asset, report_interval_s=r.report_interval_s)
            for r in rows
        ]

    # -- gateways and ingest --------------------------------------------------------------------------------------

    def set_gateway_tokens(self, tokens: Mapping[str, str]) -> None:
        """Make exactly these settings tokens valid (as SHA-256 hashes); other gateways keep their history only.

        Tokens issued through the admin API (`token_source="api"`) are left alone unless the settings name their
        gateway, which then takes the settings token.
        """
        with self.write_session() as session, session.begin():
            session.execute(
                update(GatewayRow)
                .where(or_(GatewayRow.token_source.is_(None), GatewayRow.token_source != "api"))
                .values(token_sha256=None, token_source=None)
            )
            # Flush the cleared hashes first so a token moving from one gateway to another violates no uniqueness.
            session.flush()
            self._upsert(
                session,
                GatewayRow,
                [
                    {"id": gateway_id, "token_sha256": token_sha256(token), "token_source": "settings"}
                    for gateway_id, token in tokens.items()
                ],
                ["id"],
            )

    def gateway_for_token(self, token: str) -> str | None:
        with self.session() as session:
            return session.scalar(select(GatewayRow.id).where(GatewayRow.token_sha256 == token_sha256(token)))

    def record_batch(self, batch: Batch, received_at: datetime) -> list[str]:
        """Move latest state forward and the gateway's acked sequence up, in one transaction.

        Call only once the batch's readings are in the series store. Returns the asset ids the cloud does not know.
        Latest state only moves forward in time, so a replay or a late batch never overwrites newer values.
        """
        newest: dict[tuple[str, Quantity], Reading] = {}
        for reading in batch.readings:
            key = (reading.asset, reading.quantity)  # the member, not `.value`: enum attribute access costs per reading
            current = newest.get(key)
            if current is None or reading.time >= current.time:
                newest[key] = reading
        asset_ids = {asset for asset, _ in newest}
        with self.write_session() as session, session.begin():
            known = set(session.scalars(select(AssetRow.id).where(AssetRow.id.in_(sorted(asset_ids)))))
            if newest:
                # Sorted keys: concurrent batches lock rows in one order, so PostgreSQL cannot deadlock on them.
                self._upsert_latest(session, [newest[key] for key in sorted(newest)])
            gateway = session.get(GatewayRow, batch.gateway_id, with_for_update=True)
            if gateway is None:
                gateway = GatewayRow(id=batch.gateway_id, acked_seq=0)
                session.add(gateway)
            gateway.acked_seq = max(gateway.acked_seq or 0, batch.last_seq)
            gateway.last_seen = received_at
            if batch.status is not None and (gateway.status_sent_at is None or batch.sent_at >= gateway.status_sent_at):
                gateway.status = batch.status.model_dump(mode="json")
                gateway.status_sent_at = batch.sent_at
        return sorted(asset_ids - known)

    def _upsert_latest(self, session: Session, readings: list[Reading]) -> None:
        """One `INSERT … ON CONFLICT DO UPDATE … WHERE` for all rows: a row moves only to a time not older than its own.

        Core on the table, not the ORM bulk path: the ORM's per-row bookkeeping cost more than the statement itself.
        `>=`, not `>`: a reading sent again for the same time replaces the value, as it does in the series store.
        """
        dialect = session.get_bind().dialect.name
        table = LatestRow.__table__
        if dialect == "sqlite":
            self._upsert_latest_sqlite(session, readings)
            return
        dialect_insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        statement = dialect_insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.asset, table.c.quantity],
            set_={name: statement.excluded[name] for name in ("value", "time", "device", "flags")},
            where=statement.excluded.time >= table.c.time,
        )
        rows = [
            {
                "asset": r.asset,
                "quantity": r.quantity.value,
                "value": r.value,
                "time": r.time,
                "device": r.device,
                "flags": list(r.flags),
            }
            for r in readings
        ]
        session.connection().execute(statement, rows)

    _SQLITE_UPSERT_LATEST = (
        "INSERT INTO latest_state (asset, quantity, value, time, device, flags) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (asset, quantity) DO UPDATE SET value = excluded.value, time = excluded.time, "
        "device = excluded.device, flags = excluded.flags WHERE excluded.time >= latest_state.time"
    )

    def _upsert_latest_sqlite(self, session: Session, readings: list[Reading]) -> None:
        """The same upsert on SQLite through the driver: SQLAlchemy's per-row parameter processing cost twice the
        statement. Times and flags go through the columns' own bind processors (the stored format stays exactly
        SQLAlchemy's), once per distinct value — the readings of one uplink share a time."""
        connection = session.connection()
        table = LatestRow.__table__
        dialect = connection.dialect
        time_to_db = table.c.time.type.dialect_impl(dialect).bind_processor(dialect)
        flags_to_db = table.c.flags.type.dialect_impl(dialect).bind_processor(dialect)
        stored_times: dict[datetime, Any] = {}
        stored_flags: dict[tuple[str, ...], Any] = {}
        rows = []
        for r in readings:
            stored_time = stored_times.get(r.time)
            if stored_time is None:
                stored_time = stored_times[r.time] = time_to_db(r.time) if time_to_db else r.time
            flags = stored_flags.get(r.flags)
            if flags is None:
                flags = stored_flags[r.flags] = flags_to_db(list(r.flags)) if flags_to_db else list(r.flags)
            rows.append((r.asset, r.quantity.value, r.value, stored_time, r.device, flags))
        connection.exec_driver_sql(self._SQLITE_UPSERT_LATEST, rows)

    def gateways(self, scope: Scope = ALL_TOWNS) -> list[GatewayState]:
        query = scope.where(select(GatewayRow), GatewayRow.municipality).order_by(GatewayRow.id)
        with self.session() as session:
            rows = session.scalars(query).all()
        return [
            GatewayState(
                id=r.id,
                municipality=r.municipality,
                acked_seq=r.acked_seq or 0,
                last_seen=r.last_seen,
                status=GatewayStatus.model_validate(r.status) if r.status is not None else None,
            )
            for r in rows
        ]

    def latest(
        self, asset_ids: Iterable[str] | None = None, scope: Scope = ALL_TOWNS
    ) -> dict[str, dict[Quantity, LatestState]]:
        """Latest state per asset and quantity; quantities outside today's vocabulary are left out.

        A town's scope sees the state of its own assets only; state of assets not in the inventory needs all towns.
        """
        query = select(LatestRow)
        if not scope.all_towns:
            query = query.join(AssetRow, AssetRow.id == LatestRow.asset).where(
                AssetRow.municipality == scope.municipality
            )
        if asset_ids is not None:
            query = query.where(LatestRow.asset.in_(sorted(set(asset_ids))))
        known_quantities = {q.value for q in Quantity}
        result: dict[str, dict[Quantity, LatestState]] = {}
        with self.session() as session:
            for row in session.scalars(query):
                if row.quantity in known_quantities:
                    result.setdefault(row.asset, {})[Quantity(row.quantity)] = LatestState(
                        value=row.value, time=row.time, flags=tuple(row.flags), device=row.device
                    )
        return result

    def latest_reading_time(self, scope: Scope = ALL_TOWNS) -> datetime | None:
        query = select(func.max(LatestRow.time))
        if not scope.all_towns:
            query = query.join(AssetRow, AssetRow.id == LatestRow.asset).where(
                AssetRow.municipality == scope.municipality
            )
        with self.session() as session:
            return session.scalar(query)

    # -- tasks and routes -----------------------------------------------------------------------------------------

    def replace_plan(
        self,
        day: date,
        tasks: Sequence[Task],
        routes: Sequence[RouteLike],
        scope: Scope = ALL_TOWNS,
        actor: str = "system",
    ) -> PlanOutcome:
        """Store a day's plan, replacing that day's tasks still in `planned` and routes no remaining task uses.

        Tasks already assigned, in progress or finished stay as they are, and so do planned tasks a dispatcher
        moved or added (`pinned`); a new task with the id of one of them, or for the asset and kind of a pinned
        task that day, is dropped, so replanning never undoes what a crew has started or a dispatcher decided. A new
        route keeps the stops of remaining tasks that named it, in front (started work first). Tasks without a crew get
        their route's crew, else `default_crew(kind)`. Only the scope's towns are replaced; tasks and routes of
        other towns in `tasks`/`routes` are refused with ValueError. One `planned` event per town reaches the feed.
        """
        unique_tasks: dict[str, Task] = {}
        for task in tasks:
            unique_tasks.setdefault(task.id, task)  # the first of any duplicate id wins
        tasks = list(unique_tasks.values())
        outside = {t.municipality for t in tasks} | {r.municipality for r in routes}
        if not all(scope.allows(town) for town in outside):
            raise ValueError(f"the plan names towns outside the scope {scope.municipality!r}")
        with self.write_session() as session, session.begin():
            session.execute(
                scope.where(
                    delete(TaskRow).where(
                        TaskRow.day == day, TaskRow.state == TaskState.PLANNED.value, TaskRow.pinned.is_(False)
                    ),
                    TaskRow.municipality,
                )
            )
            kept_ids = set(session.scalars(select(TaskRow.id).where(TaskRow.id.in_([t.id for t in tasks]))))
            remaining = session.scalars(scope.where(select(TaskRow).where(TaskRow.day == day), TaskRow.municipality))
            remaining_rows = list(remaining)
            # A dispatcher's own task for an asset stands in for the planner's (their ids differ).
            kept_work = {(r.asset, r.kind) for r in remaining_rows if r.pinned}
            stops_in_use: dict[str, list[str]] = {}
            for row in remaining_rows:
                if row.route_id is not None:
                    stops_in_use.setdefault(row.route_id, []).append(row.asset)
            routes_in_use = set(
                session.scalars(select(TaskRow.route_id).where(TaskRow.day == day, TaskRow.route_id.is_not(None)))
            )
            old_stops = {
                r.id: list(r.stops) for r in session.scalars(select(RouteRow).where(RouteRow.id.in_(stops_in_use)))
            }
            session.execute(
                scope.where(
                    delete(RouteRow).where(RouteRow.day == day, RouteRow.id.not_in(routes_in_use)),
                    RouteRow.municipality,
                )
            )
            route_rows = []
            carried_stops: dict[str, list[str]] = {}
            for r in routes:
                crew = getattr(r, "crew", None) or default_crew(r.kind)
                stops = list(r.stops)
                kept = stops_in_use.get(r.id, [])
                # Stops of started or pinned work stay on the route, in the order the crew had them.
                carried = [s for s in old_stops.get(r.id, kept) if s in kept and s not in stops]
                fleet = _fleet_columns(r)
                route_rows.append(
                    {
                        "id": r.id,
                        "municipality": r.municipality,
                        "kind": TaskKind(r.kind).value,
                        "day": r.day,
                        "stops": stops if fleet["loads"] is not None else carried + stops,
                        "km": float(r.km),
                        "polyline": [[float(lat), float(lon)] for lat, lon in r.polyline],
                        "crew": crew,
                        **fleet,
                    }
                )
                if carried and fleet["loads"] is not None:
                    carried_stops[r.id] = carried
            self._upsert(session, RouteRow, route_rows, ["id"])
            session.flush()
            for rid, carried in carried_stops.items():
                route_row = session.get(RouteRow, rid)
                if route_row is not None:
                    # Started work goes first: loads, trips to the site and km follow the crew's real order.
                    task_of = {row.asset: row for row in remaining_rows if row.route_id == rid}
                    _refit_route(session, route_row, carried + list(route_row.stops), task_of)
                    next(row for row in route_rows if row["id"] == rid)["stops"] = list(route_row.stops)
            crew_of_route = {row["id"]: row["crew"] for row in route_rows}
            new_tasks = [t for t in tasks if t.id not in kept_ids and (t.asset, t.kind.value) not in kept_work]
            session.add_all(
                TaskRow(
                    day=day,
                    **t.model_dump(mode="python", exclude={"crew"}),
                    crew=t.crew or crew_of_route.get(t.route_id or "") or default_crew(t.kind),
                    pinned=False,
                )
                for t in new_tasks
            )
            towns = sorted({t.municipality for t in tasks} | {r.municipality for r in routes})
            if scope.municipality is not None and scope.municipality not in towns:
                towns.append(scope.municipality)
            for town in towns:
                _add_event(
                    session,
                    "planned",
                    town,
                    day,
                    None,
                    {
                        "day": day.isoformat(),
                        "municipality": town,
                        "tasks": sum(t.municipality == town for t in new_tasks),
                    },
                )
            add_audit(
                session,
                actor,
                "plan",
                "plan",
                day.isoformat(),
                scope.municipality,
                after={
                    "tasks_stored": len(new_tasks),
                    "tasks_kept": len(tasks) - len(new_tasks),
                    "routes": len(route_rows),
                },
            )
        return PlanOutcome(
            tasks_stored=len(new_tasks), tasks_kept=len(tasks) - len(new_tasks), routes_stored=len(route_rows)
        )

    def tasks(
        self,
        *,
        day: date | None = None,
        municipality: str | None = None,
        kind: TaskKind | None = None,
        state: TaskState | None = None,
        crew: str | None = None,
        start: date | None = None,
        end: date | None = None,
        scope: Scope = ALL_TOWNS,
    ) -> list[StoredTask]:
        """Tasks by any of day, town, kind, state, crew, and days in [start, end)."""
        query = select(TaskRow).order_by(TaskRow.day, TaskRow.municipality, TaskRow.priority.desc(), TaskRow.id)
        query = scope.where(query, TaskRow.municipality)
        if day is not None:
            query = query.where(TaskRow.day == day)
        if start is not None:
            query = query.where(TaskRow.day >= start)
        if end is not None:
            query = query.where(TaskRow.day < end)
        if municipality is not None:
            query = query.where(TaskRow.municipality == municipality)
        if kind is not None:
            query = query.where(TaskRow.kind == kind.value)
        if state is not None:
            query = query.where(TaskRow.state == state.value)
        if crew is not None:
            query = query.where(TaskRow.crew == crew)
        with self.session() as session:
            rows = session.scalars(query).all()
        return [_stored(r) for r in rows]

    def task(self, task_id: str, scope: Scope = ALL_TOWNS) -> StoredTask | None:
        with self.session() as session:
            row = session.get(TaskRow, task_id)
            if row is None or not scope.allows(row.municipality):
                return None
            return _stored(row)

    def transition_task(
        self,
        task_id: str,
        to: TaskState,
        skip_reason: str | None = None,
        scope: Scope = ALL_TOWNS,
        actor: str = "system",
    ) -> StoredTask:
        """Move a task along its state machine; raises UnknownTaskError (also outside the scope) or
        InvalidTransitionError."""
        with self.write_session() as session, session.begin():
            row = session.get(TaskRow, task_id, with_for_update=True)
            if row is None or not scope.allows(row.municipality):
                raise UnknownTaskError(f"no task {task_id!r}")
            before = {"state": row.state, "skip_reason": row.skip_reason}
            moved = _task_from_row(row).transition(to, skip_reason)
            row.state = moved.state.value
            row.skip_reason = moved.skip_reason
            if moved.state is TaskState.CANCELLED and row.route_id is not None:
                # Nobody drives to a cancelled task: its stop leaves the route, loads and trips follow.
                self._reroute(session, row.route_id, remove=row.asset)
            after = {"state": row.state, "skip_reason": row.skip_reason}
            add_audit(session, actor, "transition", "task", task_id, row.municipality, before, after)
            _add_event(session, "changed", row.municipality, row.day, task_id, _task_payload(row))
            return _stored(row)

    def add_task(self, task: Task, day: date, scope: Scope = ALL_TOWNS, actor: str = "system") -> StoredTask:
        """A dispatcher's task: stored pinned (a replan keeps it); ConflictError if the id exists."""
        if not scope.allows(task.municipality):
            raise UnknownTaskError(f"no municipality {task.municipality!r}")
        with self.write_session() as session, session.begin():
            if session.get(TaskRow, task.id) is not None:
                raise ConflictError(f"a task {task.id!r} exists already")
            row = TaskRow(day=day, **task.model_dump(mode="python", exclude={"crew"}), crew=task.crew, pinned=True)
            session.add(row)
            session.flush()
            if task.route_id is not None:
                self._reroute(session, task.route_id, add=row)
            add_audit(session, actor, "create", "task", task.id, task.municipality, after=_task_payload(row))
            _add_event(session, "added", task.municipality, day, task.id, _task_payload(row))
            return _stored(row)

    def move_task(
        self,
        task_id: str,
        *,
        day: date | None = None,
        crew: str | None = None,
        position: int | None = None,
        scope: Scope = ALL_TOWNS,
        actor: str = "system",
    ) -> StoredTask:
        """Move a task not yet started to another day, crew or position in its crew's route; it becomes pinned.

        The task joins the route its crew drives that day (at `position`, default the end) or none if the crew has
        no route then; routes it leaves or joins get their polyline and km anew (the route's road factor kept).
        Raises UnknownTaskError, or ConflictError for a task already in progress or finished.
        """
        with self.write_session() as session, session.begin():
            row = session.get(TaskRow, task_id, with_for_update=True)
            if row is None or not scope.allows(row.municipality):
                raise UnknownTaskError(f"no task {task_id!r}")
            if row.state not in (TaskState.PLANNED.value, TaskState.ASSIGNED.value):
                raise ConflictError(f"task {task_id} is {row.state}: only planned or assigned tasks can be moved")
            before = _task_payload(row)
            target_day = day or row.day
            target_crew = crew or row.crew or default_crew(row.kind)
            if target_day != row.day:
                shift = timedelta(days=(target_day - row.day).days)
                row.due_from, row.due_until = row.due_from + shift, row.due_until + shift
            target_route = session.scalar(
                select(RouteRow.id).where(
                    RouteRow.municipality == row.municipality,
                    RouteRow.day == target_day,
                    RouteRow.crew == target_crew,
                    RouteRow.kind == row.kind,
                )
            )
            if row.route_id is not None:
                self._reroute(session, row.route_id, remove=row.asset)
            if target_route is not None:
                self._reroute(session, target_route, add=row, position=position)
            row.day, row.crew, row.route_id, row.pinned = target_day, target_crew, target_route, True
            after = _task_payload(row)
            add_audit(session, actor, "move", "task", task_id, row.municipality, before, after)
            _add_event(session, "moved", row.municipality, row.day, task_id, after | {"from_day": before["day"]})
            return _stored(row)

    def _reroute(
        self,
        session: Session,
        route_id: str,
        *,
        add: TaskRow | None = None,
        remove: str | None = None,
        position: int | None = None,
    ) -> None:
        """Take a stop out of a route or put a task's stop in at `position` (default: the end), and fit the route
        to its new order (`_refit_route`)."""
        route = session.get(RouteRow, route_id, with_for_update=True)
        if route is None:
            return
        added = add.asset if add is not None else None
        stops = [s for s in route.stops if s not in (added, remove)]
        if added is not None:
            stops.insert(len(stops) if position is None else max(0, min(position, len(stops))), added)
        _refit_route(session, route, stops, {added: add} if add is not None and added is not None else {})

    def task_events(self, after_id: int, scope: Scope = ALL_TOWNS, limit: int = 500) -> list[TaskEvent]:
        """Events newer than `after_id`, oldest first, at most `limit`."""
        query = scope.where(select(TaskEventRow).where(TaskEventRow.id > after_id), TaskEventRow.municipality)
        with self.session() as session:
            rows = session.scalars(query.order_by(TaskEventRow.id).limit(limit)).all()
        return [
            TaskEvent(
                id=r.id,
                at=r.at,
                municipality=r.municipality,
                day=r.day,
                action=r.action,
                task_id=r.task_id,
                payload=dict(r.payload),
            )
            for r in rows
        ]

    def last_task_event_id(self) -> int:
        """The newest event id of all towns (a new stream starts after it)."""
        with self.session() as session:
            return int(session.scalar(select(func.max(TaskEventRow.id))) or 0)

    def routes(
        self,
        *,
        day: date | None = None,
        municipality: str | None = None,
        start: date | None = None,
        end: date | None = None,
        scope: Scope = ALL_TOWNS,
    ) -> list[StoredRoute]:
        """Routes by any of day, town, and days in [start, end)."""
        query = scope.where(select(RouteRow), RouteRow.municipality).order_by(
            RouteRow.day, RouteRow.municipality, RouteRow.id
        )
        if day is not None:
            query = query.where(RouteRow.day == day)
        if start is not None:
            query = query.where(RouteRow.day >= start)
        if end is not None:
            query = query.where(RouteRow.day < end)
        if municipality is not None:
            query = query.where(RouteRow.municipality == municipality)
        with self.session() as session:
            rows = session.scalars(query).all()
        return [_route_from_row(r) for r in rows]

    def task_days(self, scope: Scope = ALL_TOWNS) -> list[date]:
        """The days that have tasks, oldest first."""
        query = scope.where(select(TaskRow.day), TaskRow.municipality).distinct().order_by(TaskRow.day)
        with self.session() as session:
            return list(session.scalars(query))

    def task_counts(self, day: date | None = None, scope: Scope = ALL_TOWNS) -> dict[str, dict[str, int]]:
        """Number of tasks per municipality and kind."""
        query = select(TaskRow.municipality, TaskRow.kind, func.count()).group_by(TaskRow.municipality, TaskRow.kind)
        query = scope.where(query, TaskRow.municipality)
        if day is not None:
            query = query.where(TaskRow.day == day)
        counts: dict[str, dict[str, int]] = {}
        with self.session() as session:
            for municipality, kind, number in session.execute(query):
                counts.setdefault(municipality, {})[kind] = int(number)
        return counts

    def km_planned(self, day: date | None = None, scope: Scope = ALL_TOWNS) -> dict[str, float]:
        """Route kilometres per municipality."""
        query = select(RouteRow.municipality, func.sum(RouteRow.km)).group_by(RouteRow.municipality)
        query = scope.where(query, RouteRow.municipality)
        if day is not None:
            query = query.where(RouteRow.day == day)
        with self.session() as session:
            return {municipality: float(km or 0.0) for municipality, km in session.execute(query)}
