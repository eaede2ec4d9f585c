"""The operational database: inventory, gateways, latest state, tasks and routes (SQLAlchemy 2).

SQLite by default, PostgreSQL in production; every statement here runs on both. The schema comes from the Alembic
migrations in `cloud.store.migrations`; reads and writes of town data take a `Scope` (one town, or all).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
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
    MetaData,
    String,
    Text,
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
class StoredRoute:
    id: str
    municipality: str
    kind: TaskKind
    day: date
    stops: list[str]
    km: float
    polyline: list[tuple[float, float]]


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
    return StoredRoute(
        id=row.id,
        municipality=row.municipality,
        kind=TaskKind(row.kind),
        day=row.day,
        stops=list(row.stops),
        km=row.km,
        polyline=[(float(lat), float(lon)) for lat, lon in row.polyline],
    )


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
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for reading in batch.readings:
            key = (reading.asset, reading.quantity.value)
            if key not in newest or reading.time >= newest[key]["time"]:
                newest[key] = {
                    "asset": reading.asset,
                    "quantity": reading.quantity.value,
                    "value": reading.value,
                    "time": reading.time,
                    "device": reading.device,
                    "flags": list(reading.flags),
                }
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

    def _upsert_latest(self, session: Session, rows: list[dict[str, Any]]) -> None:
        dialect = session.get_bind().dialect.name
        dialect_insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        statement = dialect_insert(LatestRow)
        table = LatestRow.__table__
        statement = statement.on_conflict_do_update(
            index_elements=["asset", "quantity"],
            set_={name: statement.excluded[name] for name in ("value", "time", "device", "flags")},
            where=statement.excluded.time >= table.c.time,
        )
        session.execute(statement, rows)

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
        """Store a day's plan, replacing that day's tasks still in `planned` and routes no started task uses.

        Tasks already assigned, in progress or finished stay as they are; a new task with the id of one of them
        is dropped, so replanning never undoes what a crew has started. Only the scope's towns are replaced;
        tasks and routes of other towns in `tasks`/`routes` are refused with ValueError.
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
                    delete(TaskRow).where(TaskRow.day == day, TaskRow.state == TaskState.PLANNED.value),
                    TaskRow.municipality,
                )
            )
            kept_ids = set(session.scalars(select(TaskRow.id).where(TaskRow.id.in_([t.id for t in tasks]))))
            routes_in_use = set(
                session.scalars(select(TaskRow.route_id).where(TaskRow.day == day, TaskRow.route_id.is_not(None)))
            )
            session.execute(
                scope.where(
                    delete(RouteRow).where(RouteRow.day == day, RouteRow.id.not_in(routes_in_use)),
                    RouteRow.municipality,
                )
            )
            route_rows = [
                {
                    "id": r.id,
                    "municipality": r.municipality,
                    "kind": TaskKind(r.kind).value,
                    "day": r.day,
                    "stops": list(r.stops),
                    "km": float(r.km),
                    "polyline": [[float(lat), float(lon)] for lat, lon in r.polyline],
                }
                for r in routes
            ]
            self._upsert(session, RouteRow, route_rows, ["id"])
            session.flush()
            new_tasks = [t for t in tasks if t.id not in kept_ids]
            session.add_all(TaskRow(day=day, **t.model_dump(mode="python")) for t in new_tasks)
            add_audit(
                session,
                actor,
                "plan",
                "plan",
                day.isoformat(),
                scope.municipality,
                after={"tasks_stored": len(new_tasks), "tasks_kept": len(kept_ids), "routes": len(route_rows)},
            )
        return PlanOutcome(tasks_stored=len(new_tasks), tasks_kept=len(kept_ids), routes_stored=len(route_rows))

    def tasks(
        self,
        *,
        day: date | None = None,
        municipality: str | None = None,
        kind: TaskKind | None = None,
        state: TaskState | None = None,
        scope: Scope = ALL_TOWNS,
    ) -> list[StoredTask]:
        query = select(TaskRow).order_by(TaskRow.day, TaskRow.municipality, TaskRow.priority.desc(), TaskRow.id)
        query = scope.where(query, TaskRow.municipality)
        if day is not None:
            query = query.where(TaskRow.day == day)
        if municipality is not None:
            query = query.where(TaskRow.municipality == municipality)
        if kind is not None:
            query = query.where(TaskRow.kind == kind.value)
        if state is not None:
            query = query.where(TaskRow.state == state.value)
        with self.session() as session:
            rows = session.scalars(query).all()
        return [StoredTask(task=_task_from_row(r), day=r.day) for r in rows]

    def task(self, task_id: str, scope: Scope = ALL_TOWNS) -> StoredTask | None:
        with self.session() as session:
            row = session.get(TaskRow, task_id)
            if row is None or not scope.allows(row.municipality):
                return None
            return StoredTask(task=_task_from_row(row), day=row.day)

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
            after = {"state": row.state, "skip_reason": row.skip_reason}
            add_audit(session, actor, "transition", "task", task_id, row.municipality, before, after)
            return StoredTask(task=moved, day=row.day)

    def routes(
        self, *, day: date | None = None, municipality: str | None = None, scope: Scope = ALL_TOWNS
    ) -> list[StoredRoute]:
        query = scope.where(select(RouteRow), RouteRow.municipality).order_by(
            RouteRow.day, RouteRow.municipality, RouteRow.id
        )
        if day is not None:
            query = query.where(RouteRow.day == day)
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
