"""Alerts and their outbox in the operational database: alert records, and deliveries kept until delivered.

The engine's changes and the deliveries they cause are written in one transaction (a transactional outbox), so an
alert never exists without its messages, and a message is never lost while a channel is down.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text, and_, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from cloud.alerts.engine import AlertRecord
from cloud.store.operational import Base, LatestRow, OperationalStore, Scope, UtcDateTime
from flurfunk.contracts import AlertState, Severity

MAX_LOG_ENTRIES = 20


class AlertRow(Base):
    __tablename__ = "alerts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    group_key: Mapped[str] = mapped_column(String(64))
    crew: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    members: Mapped[list[str]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    count: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    level: Mapped[int] = mapped_column(Integer)
    escalate_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_notice_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    notice_open: Mapped[bool] = mapped_column(Boolean)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    suppressed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AlertDeliveryRow(Base):
    """One message to one channel target; retried with backoff until delivered, never deleted undelivered."""

    __tablename__ = "alert_deliveries"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(64), index=True)
    municipality: Mapped[str] = mapped_column(String(64))
    crew: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A delivery as the outbox holds it."""

    id: str
    alert_id: str
    municipality: str
    crew: str
    event: str
    level: int
    channel: str
    target: str
    subject: str
    body: str
    created_at: datetime
    due_at: datetime
    attempts: int = 0
    delivered_at: datetime | None = None
    last_error: str | None = None
    log: tuple[dict[str, Any], ...] = ()


_RECORD_FIELDS = (
    "id", "municipality", "rule", "crew", "members", "first_seen", "last_seen", "count", "value", "level",
    "escalate_at", "last_notice_at", "notice_open", "acknowledged_by", "acknowledged_at", "resolved_by",
    "resolved_at", "suppressed_until",
)  # fmt: skip
_MESSAGE_FIELDS = tuple(OutboxMessage.__dataclass_fields__)


def record_from_row(row: AlertRow) -> AlertRecord:
    values = {name: getattr(row, name) for name in _RECORD_FIELDS}
    return AlertRecord(
        group=row.group_key,
        severity=Severity(row.severity),
        state=AlertState(row.state),
        **values | {"members": list(row.members)},
    )


def _row_values(record: AlertRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _RECORD_FIELDS}
    return values | {
        "group_key": record.group,
        "severity": record.severity.value,
        "state": record.state.value,
        "members": list(record.members),
    }


def _message_from_row(row: AlertDeliveryRow) -> OutboxMessage:
    return OutboxMessage(**{name: getattr(row, name) for name in _MESSAGE_FIELDS} | {"log": tuple(row.log)})


class AlertStore:
    """Alert records and the outbox, over the operational store's engine."""

    def __init__(self, store: OperationalStore) -> None:
        self._store = store

    def latest_values(self) -> list[tuple[str, str, float, datetime, list[str], str]]:
        """Every (asset, quantity, value, time, flags, device) of the latest state, without ORM objects: the
        alert round reads all of it every minute."""
        table = LatestRow.__table__
        query = select(table.c.asset, table.c.quantity, table.c.value, table.c.time, table.c.flags, table.c.device)
        with self._store.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]

    def current(self, municipality: str, now: datetime, lookback: timedelta) -> dict[tuple[str, str], AlertRecord]:
        """The newest record per condition among those still open, or resolved recently enough to matter."""
        since = now - lookback
        query = (
            select(AlertRow)
            .where(
                AlertRow.municipality == municipality,
                or_(
                    AlertRow.state != AlertState.RESOLVED.value,
                    AlertRow.last_notice_at >= since,
                    AlertRow.resolved_at >= since,
                    AlertRow.suppressed_until >= now,
                ),
            )
            .order_by(AlertRow.first_seen, AlertRow.id)
        )
        with self._store.session() as session:
            return {(row.rule, row.group_key): record_from_row(row) for row in session.scalars(query)}

    def save(self, records: Iterable[AlertRecord], messages: Sequence[OutboxMessage]) -> None:
        """Alert changes and their deliveries in one transaction."""
        with self._store.write_session() as session, session.begin():
            for record in records:
                row = session.get(AlertRow, record.id)
                if row is None:
                    session.add(AlertRow(**_row_values(record)))
                else:
                    for name, value in _row_values(record).items():
                        setattr(row, name, value)
            session.add_all(
                AlertDeliveryRow(**{name: getattr(m, name) for name in _MESSAGE_FIELDS} | {"log": list(m.log)})
                for m in messages
            )

    def alert(self, alert_id: str, scope: Scope) -> AlertRecord | None:
        with self._store.session() as session:
            row = session.get(AlertRow, alert_id)
            if row is None or not scope.allows(row.municipality):
                return None
            return record_from_row(row)

    def alerts(
        self,
        scope: Scope,
        *,
        states: Sequence[AlertState] = (),
        crews: Iterable[str] | None = None,
        limit: int = 200,
    ) -> list[AlertRecord]:
        """Newest first; `crews` narrows to those crews' alerts (a crew member sees the own crew's)."""
        query = scope.where(select(AlertRow), AlertRow.municipality).order_by(AlertRow.last_seen.desc(), AlertRow.id)
        if states:
            query = query.where(AlertRow.state.in_([state.value for state in states]))
        if crews is not None:
            query = query.where(AlertRow.crew.in_(sorted(set(crews))))
        with self._store.session() as session:
            return [record_from_row(row) for row in session.scalars(query.limit(limit))]

    def deliveries(self, alert_id: str) -> list[OutboxMessage]:
        query = select(AlertDeliveryRow).where(AlertDeliveryRow.alert_id == alert_id)
        with self._store.session() as session:
            rows = session.scalars(query.order_by(AlertDeliveryRow.created_at, AlertDeliveryRow.id))
            return [_message_from_row(row) for row in rows]

    def due(self, now: datetime, limit: int = 500) -> list[OutboxMessage]:
        """Undelivered messages whose time has come, oldest first."""
        query = (
            select(AlertDeliveryRow)
            .where(and_(AlertDeliveryRow.delivered_at.is_(None), AlertDeliveryRow.due_at <= now))
            .order_by(AlertDeliveryRow.due_at, AlertDeliveryRow.id)
            .limit(limit)
        )
        with self._store.session() as session:
            return [_message_from_row(row) for row in session.scalars(query)]

    def pending_count(self) -> int:
        query = select(AlertDeliveryRow.id).where(AlertDeliveryRow.delivered_at.is_(None))
        with self._store.session() as session:
            return len(session.scalars(query).all())

    def record_attempt(self, delivery_id: str, at: datetime, ok: bool, detail: str, next_due: datetime | None) -> None:
        """Log one attempt: delivered, or failed and due again at `next_due`."""
        with self._store.write_session() as session, session.begin():
            row = session.get(AlertDeliveryRow, delivery_id, with_for_update=True)
            if row is None or row.delivered_at is not None:
                return
            row.attempts += 1
            entry = {"at": at.isoformat(), "ok": ok, "detail": detail[:300]}
            row.log = [*row.log, entry][-MAX_LOG_ENTRIES:]
            if ok:
                row.delivered_at = at
                row.last_error = None
            else:
                row.last_error = detail[:500]
                row.due_at = next_due or at
