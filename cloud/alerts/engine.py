"""The alert life cycle, pure: conditions in, alert records and the notices to send out.

One record per condition (rule + group); a condition that trips again within the rule's cooldown of the last
message reopens its record silently. Notices: `opened` (first on-call), `escalated` (next on-call when nobody
acknowledged within `escalate_after_s`), `resolved` (when a message went out and the condition cleared or a person
resolved it). Quiet hours hold notices below their minimum severity until the quiet hours end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from cloud.alerts.config import SEVERITY_RANK, MunicipalityAlerts, QuietHours, Rule
from cloud.alerts.rules import ConditionKey, Hit
from flurfunk.contracts import AlertState, Severity


class NoticeEvent(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class AlertActionError(ValueError):
    """A person asked for a change the alert's state does not allow (e.g. acknowledging a resolved alert)."""


@dataclass(slots=True)
class AlertRecord:
    """An alert as the engine keeps it (the database row mirrors it field by field)."""

    id: str
    municipality: str
    rule: str
    group: str
    crew: str
    severity: Severity
    state: AlertState
    members: list[str]
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    value: float | None = None
    level: int = 0  # index into the crew's on-call roster of who was called last
    escalate_at: datetime | None = None
    last_notice_at: datetime | None = None
    notice_open: bool = False  # an opened/escalated message went out and no resolved one since
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    suppressed_until: datetime | None = None

    @property
    def key(self) -> ConditionKey:
        return (self.rule, self.group)


@dataclass(frozen=True, slots=True)
class Notice:
    alert: AlertRecord
    event: NoticeEvent
    level: int
    due_at: datetime


@dataclass(slots=True)
class StepOutcome:
    changed: dict[str, AlertRecord] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)

    def touch(self, record: AlertRecord) -> None:
        self.changed[record.id] = record


def new_alert_id() -> str:
    return "al-" + uuid.uuid4().hex[:20]


def release_time(now: datetime, severity: Severity, quiet: QuietHours | None, timezone: str) -> datetime:
    """When a notice of `severity` may go out: now, or the end of the quiet hours it falls into."""
    if quiet is None or SEVERITY_RANK[severity] >= SEVERITY_RANK[quiet.min_severity] or quiet.start == quiet.end:
        return now
    local = now.astimezone(ZoneInfo(timezone))
    clock = local.time().replace(tzinfo=None)
    wraps = quiet.start > quiet.end  # e.g. 20:00-06:00
    inside = (clock >= quiet.start or clock < quiet.end) if wraps else (quiet.start <= clock < quiet.end)
    if not inside:
        return now
    end_day = local.date() + timedelta(days=1) if wraps and clock >= quiet.start else local.date()
    end = datetime.combine(end_day, quiet.end, tzinfo=ZoneInfo(timezone))
    return end.astimezone(now.tzinfo)


def active_members(records: Mapping[ConditionKey, AlertRecord]) -> dict[str, set[str]]:
    """Per rule id, the members of open or acknowledged alerts: the hysteresis state for `rules.evaluate`."""
    active: dict[str, set[str]] = {}
    for record in records.values():
        if record.state is not AlertState.RESOLVED:
            active.setdefault(record.rule, set()).update(record.members)
    return active


class AlertEngine:
    """Applies conditions, time and people's actions to one town's alert records."""

    def __init__(self, config: MunicipalityAlerts, new_id: Callable[[], str] = new_alert_id) -> None:
        self.config = config
        self._rules: dict[str, Rule] = {rule.id: rule for rule in config.rules}
        self._new_id = new_id

    def rule(self, rule_id: str) -> Rule | None:
        return self._rules.get(rule_id)

    def _release(self, now: datetime, severity: Severity) -> datetime:
        return release_time(now, severity, self.config.quiet_hours, self.config.timezone)

    def _roster_size(self, crew: str) -> int:
        found = self.config.crew(crew)
        return len(found.on_call) if found is not None else 0

    def _next_escalation(self, record: AlertRecord, rule: Rule, sent_at: datetime) -> datetime | None:
        if record.level + 1 >= self._roster_size(record.crew):
            return None  # nobody left to call
        return sent_at + timedelta(seconds=rule.escalate_after_s)

    def step(
        self,
        records: Mapping[ConditionKey, AlertRecord],
        conditions: Mapping[ConditionKey, list[Hit]],
        now: datetime,
    ) -> StepOutcome:
        """Open, update, reopen, resolve and escalate. `records` holds the newest record per condition."""
        outcome = StepOutcome()
        for key, hits in conditions.items():
            rule = self._rules.get(key[0])
            if rule is None or not hits:
                continue
            members = [hit.member for hit in hits]
            value = hits[0].value
            record = records.get(key)
            if record is not None and record.state is not AlertState.RESOLVED:
                joined = set(members) - set(record.members)
                if joined or members != record.members:
                    # Stored when the members change; a new value alone is not worth a write per round.
                    record.count += len(joined)
                    record.members, record.value, record.last_seen = members, value, now
                    outcome.touch(record)
                continue
            if record is not None and record.suppressed_until is not None and now < record.suppressed_until:
                continue  # a person resolved it: quiet until the cooldown has passed
            cooled_down = (
                record is None
                or record.last_notice_at is None
                or now >= record.last_notice_at + timedelta(seconds=rule.cooldown_s)
            )
            if record is not None and not cooled_down:
                # Flapping: the same alert again, silently, in the state it had (acknowledged stays acknowledged).
                record.state = AlertState.ACKNOWLEDGED if record.acknowledged_at else AlertState.OPEN
                record.members, record.value, record.last_seen = members, value, now
                record.count += 1
                record.resolved_at = record.resolved_by = None
                if record.state is AlertState.OPEN:
                    # Unacknowledged still: the roster goes on (the level never goes back, so this is bounded).
                    record.escalate_at = self._next_escalation(record, rule, now)
                outcome.touch(record)
                continue
            fresh = AlertRecord(
                id=self._new_id(),
                municipality=self.config.municipality,
                rule=rule.id,
                group=key[1],
                crew=rule.crew,
                severity=rule.severity,
                state=AlertState.OPEN,
                members=members,
                first_seen=now,
                last_seen=now,
                count=len(members),
                value=value,
            )
            due = self._release(now, rule.severity)
            fresh.last_notice_at = due
            fresh.notice_open = True
            fresh.escalate_at = self._next_escalation(fresh, rule, due)
            outcome.touch(fresh)
            outcome.notices.append(Notice(fresh, NoticeEvent.OPENED, 0, due))
        for key, record in records.items():
            if record.state is AlertState.RESOLVED or key in conditions:
                continue
            self._resolve(record, now, "auto", outcome)
        for record in records.values():
            if record.state is AlertState.OPEN and record.escalate_at is not None and now >= record.escalate_at:
                self._escalate(record, now, outcome)
        return outcome

    def _escalate(self, record: AlertRecord, now: datetime, outcome: StepOutcome) -> None:
        rule = self._rules.get(record.rule)
        if rule is None:
            record.escalate_at = None
            return
        record.level += 1
        due = self._release(now, record.severity)
        record.last_notice_at = due
        record.notice_open = True
        record.escalate_at = self._next_escalation(record, rule, due)
        outcome.touch(record)
        outcome.notices.append(Notice(record, NoticeEvent.ESCALATED, record.level, due))

    def _resolve(self, record: AlertRecord, now: datetime, by: str, outcome: StepOutcome) -> None:
        record.state = AlertState.RESOLVED
        record.resolved_at, record.resolved_by = now, by
        record.members = []
        record.escalate_at = None
        outcome.touch(record)
        if record.notice_open:
            record.notice_open = False
            outcome.notices.append(Notice(record, NoticeEvent.RESOLVED, record.level, now))

    def acknowledge(self, record: AlertRecord, by: str, now: datetime) -> StepOutcome:
        """A person takes it: escalation stops; the alert resolves itself once the condition clears."""
        if record.state is AlertState.RESOLVED:
            raise AlertActionError(f"alert {record.id} is resolved already")
        outcome = StepOutcome()
        record.state = AlertState.ACKNOWLEDGED
        record.acknowledged_by, record.acknowledged_at = by, now
        record.escalate_at = None
        outcome.touch(record)
        return outcome

    def resolve(self, record: AlertRecord, by: str, now: datetime) -> StepOutcome:
        """A person says it is dealt with; the condition cannot reopen it before the rule's cooldown has passed."""
        if record.state is AlertState.RESOLVED:
            raise AlertActionError(f"alert {record.id} is resolved already")
        outcome = StepOutcome()
        rule = self._rules.get(record.rule)
        record.suppressed_until = now + timedelta(seconds=rule.cooldown_s if rule is not None else 0)
        self._resolve(record, now, by, outcome)
        return outcome
