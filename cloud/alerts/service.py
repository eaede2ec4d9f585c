"""The alert service, the thin shell: reads the operational state, runs rules and engine, writes alerts and the
outbox, and delivers due messages over the channels with retries and backoff."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from cloud.alerts.channels import Channel, DeliveryError
from cloud.alerts.config import MunicipalityAlerts, RuleKind, municipality_slug
from cloud.alerts.engine import AlertEngine, AlertRecord, Notice, NoticeEvent, StepOutcome, active_members
from cloud.alerts.rules import GatewayView, Latest, Snapshot, evaluate
from cloud.store.alerts import AlertStore, OutboxMessage
from cloud.store.operational import OperationalStore, Scope
from flurfunk.contracts import Asset, AssetKind, Device, Quantity, TaskKind, TaskState
from flurfunk.i18n import text

logger = logging.getLogger("cloud.alerts")

Clock = Callable[[], datetime]
# (bins, now) -> bin id -> predicted overflow time; the default predicts nothing
OverflowForecast = Callable[[list[str], datetime], Mapping[str, datetime]]

BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 15 * 60.0
MAX_MEMBERS_IN_TEXT = 10
INVENTORY_REFRESH_S = 300.0


def backoff_s(attempts: int, delivery_id: str) -> float:
    """30 s, 60 s, 120 s … capped at 15 min, with ±20 % jitter fixed per delivery (reproducible in tests)."""
    jitter = int(hashlib.sha256(delivery_id.encode()).hexdigest()[:4], 16) / 0xFFFF * 0.4 - 0.2
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(attempts - 1, 0)) * (1 + jitter)


def _format_value(value: float | None) -> str:
    return "–" if value is None else format(value, ".3g")


def _members_text(members: list[str]) -> str:
    shown = ", ".join(members[:MAX_MEMBERS_IN_TEXT])
    return shown + (f" (+{len(members) - MAX_MEMBERS_IN_TEXT})" if len(members) > MAX_MEMBERS_IN_TEXT else "")


class AlertService:
    """One per cloud app. `evaluate()` and the API actions are synchronous (database); `deliver_due()` is async."""

    def __init__(
        self,
        store: OperationalStore,
        configs: Mapping[str, MunicipalityAlerts],
        channels: Mapping[str, Channel] | None = None,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        mqtt_topic_prefix: str = "flurfunk",
        overflow_forecast: OverflowForecast | None = None,
    ) -> None:
        self.store = store
        self.alerts = AlertStore(store)
        self.configs = dict(configs)
        self.engines = {town: AlertEngine(config) for town, config in self.configs.items()}
        self.channels = dict(channels or {})
        self.clock = clock
        self.mqtt_topic_prefix = mqtt_topic_prefix.rstrip("/")
        self.overflow_forecast = overflow_forecast
        self._previous: dict[tuple[str, Quantity], Latest] = {}
        self._newest: dict[tuple[str, Quantity], Latest] = {}
        self._lock = threading.Lock()
        self._inventory_cache: tuple[float, dict[str, Asset], list[Device]] | None = None
        lookbacks = [rule.cooldown_s for config in self.configs.values() for rule in config.rules]
        self._lookback = timedelta(seconds=max([3600, *lookbacks]))

    # -- evaluation -----------------------------------------------------------------------------------------------

    def snapshot(self, now: datetime) -> Snapshot:
        assets, devices = self._inventory()
        latest: dict[str, dict[Quantity, Latest]] = {}
        quantities = {q.value: q for q in Quantity}
        for asset_id, quantity_name, value, at, flags, device in self.alerts.latest_values():
            quantity = quantities.get(quantity_name)
            if quantity is None:
                continue
            current = Latest(value, at, tuple(flags), device)
            latest.setdefault(asset_id, {})[quantity] = current
            key = (asset_id, quantity)
            known = self._newest.get(key)
            if known is not None and known.time < current.time:
                self._previous[key] = known  # in memory: after a restart, rate rules wait for two readings
            self._newest[key] = current
        gateways = [
            GatewayView(
                g.id,
                g.municipality,
                g.last_seen,
                g.status.buffered if g.status else 0,
                g.status.oldest_unsynced_s if g.status else 0.0,
            )
            for g in self.store.gateways()
        ]
        next_collection: dict[str, datetime] = {}
        open_states = {TaskState.PLANNED, TaskState.ASSIGNED, TaskState.IN_PROGRESS}
        for stored in self.store.tasks(kind=TaskKind.COLLECT):
            task = stored.task
            if task.state in open_states and task.due_until >= now:
                known_run = next_collection.get(task.asset)
                next_collection[task.asset] = min(known_run, task.due_until) if known_run else task.due_until
        bins = [a.id for a in assets.values() if a.kind is AssetKind.BIN]
        uses_overflow = any(r.kind is RuleKind.OVERFLOW for c in self.configs.values() for r in c.rules)
        overflow = self.overflow_forecast(bins, now) if self.overflow_forecast and uses_overflow else {}
        return Snapshot(
            now=now,
            assets=assets,
            latest=latest,
            devices=devices,
            gateways=gateways,
            previous=dict(self._previous),
            overflow_at=overflow,
            next_collection=next_collection,
        )

    def _inventory(self) -> tuple[dict[str, Asset], list[Device]]:
        """Assets and devices, read again at most every `INVENTORY_REFRESH_S` (they change by the day, not minute)."""
        moment = time.monotonic()
        if self._inventory_cache is None or moment - self._inventory_cache[0] > INVENTORY_REFRESH_S:
            assets = {asset.id: asset for asset in self.store.assets()}
            self._inventory_cache = (moment, assets, self.store.devices())
        return self._inventory_cache[1], self._inventory_cache[2]

    def evaluate(self) -> int:
        """Run every town's rules once; returns how many messages were queued."""
        now = self.clock()
        with self._lock:
            snapshot = self.snapshot(now)
            queued = 0
            for town, engine in self.engines.items():
                records = self.alerts.current(town, now, self._lookback)
                conditions = evaluate(engine.config, snapshot, active_members(records))
                outcome = engine.step(records, conditions, now)
                queued += self._save(engine, outcome, now)
        return queued

    def _save(self, engine: AlertEngine, outcome: StepOutcome, now: datetime) -> int:
        messages = [message for notice in outcome.notices for message in self._messages(engine, notice, now)]
        if outcome.changed or messages:
            self.alerts.save(outcome.changed.values(), messages)
        for notice in outcome.notices:
            logger.info(
                "alert %s id=%s rule=%s town=%s crew=%s level=%d due=%s",
                notice.event.value, notice.alert.id, notice.alert.rule, notice.alert.municipality,
                notice.alert.crew, notice.level, notice.due_at.isoformat(),
            )  # fmt: skip
        return len(messages)

    # -- people's actions -----------------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str, scope: Scope) -> AlertRecord | None:
        return self._act(alert_id, by, scope, "acknowledge")

    def resolve(self, alert_id: str, by: str, scope: Scope) -> AlertRecord | None:
        return self._act(alert_id, by, scope, "resolve")

    def _act(self, alert_id: str, by: str, scope: Scope, action: str) -> AlertRecord | None:
        """None when the alert does not exist in `scope`; AlertActionError when its state refuses the action."""
        now = self.clock()
        with self._lock:
            record = self.alerts.alert(alert_id, scope)
            if record is None:
                return None
            engine = self.engines[record.municipality]
            outcome = (
                engine.acknowledge(record, by, now) if action == "acknowledge" else engine.resolve(record, by, now)
            )
            self._save(engine, outcome, now)
        return record

    # -- messages -------------------------------------------------------------------------------------------------

    def summary(self, record: AlertRecord, language: str | None = None) -> str:
        engine = self.engines.get(record.municipality)
        rule = engine.rule(record.rule) if engine else None
        lang = language or (engine.config.language if engine else "de")
        key = rule.text_key if rule else "alert.threshold"
        return text(
            key,
            lang,  # type: ignore[arg-type]
            group=record.group,
            members=_members_text(record.members) or record.group,
            count=len(record.members),
            value=_format_value(record.value),
        )

    def crew_topic(self, municipality: str, crew: str) -> str:
        return f"{self.mqtt_topic_prefix}/{municipality_slug(municipality)}/crew/{crew}/alerts"

    def _messages(self, engine: AlertEngine, notice: Notice, now: datetime) -> list[OutboxMessage]:
        record, config = notice.alert, engine.config
        crew = config.crew(record.crew)
        if crew is None:
            return []
        lang = config.language
        summary = self.summary(record, lang)
        severity = text(f"alert.severity.{record.severity.value}", lang)
        subject = text(
            f"alert.subject.{notice.event.value}",
            lang,
            municipality=record.municipality,
            severity=severity,
            summary=summary,
            level=notice.level,
        )[:300]
        on_call = crew.on_call[notice.level] if notice.level < len(crew.on_call) else None
        following = crew.on_call[notice.level + 1].name if notice.level + 1 < len(crew.on_call) else None
        mail_text = text(
            "alert.mail.body",
            lang,
            summary=summary,
            alert_id=record.id,
            severity=severity,
            crew=record.crew,
            first_seen=record.first_seen.isoformat(timespec="minutes"),
            next_on_call=following or text("alert.mail.nobody", lang),
        )
        targets: list[tuple[str, str]] = []
        if crew.mqtt:
            targets.append(("mqtt", self.crew_topic(record.municipality, record.crew)))
        targets += [("webhook", hook.url) for hook in crew.webhooks]
        if notice.event is not NoticeEvent.RESOLVED and on_call is not None and on_call.email:
            targets.append(("email", on_call.email))  # people get mail to act on; machines also get resolutions
        messages = []
        for channel, target in targets:
            delivery_id = "dl-" + uuid.uuid4().hex[:24]  # the idempotency key, the same on every retry
            body = {
                "delivery_id": delivery_id,
                "alert_id": record.id,
                "event": notice.event.value,
                "level": notice.level,
                "on_call": on_call.name if on_call else None,
                "rule": record.rule,
                "severity": record.severity.value,
                "state": record.state.value,
                "municipality": record.municipality,
                "crew": record.crew,
                "group": record.group,
                "members": record.members,
                "value": record.value,
                "first_seen": record.first_seen.isoformat(),
                "subject": subject,
                "text": mail_text if channel == "email" else summary,
            }
            messages.append(
                OutboxMessage(
                    id=delivery_id,
                    alert_id=record.id,
                    municipality=record.municipality,
                    crew=record.crew,
                    event=notice.event.value,
                    level=notice.level,
                    channel=channel,
                    target=target,
                    subject=subject,
                    body=json.dumps(body, ensure_ascii=False, sort_keys=True),
                    created_at=now,
                    due_at=notice.due_at,
                )
            )
        return messages

    def webhook_secret(self, message: OutboxMessage) -> bytes:
        config = self.configs.get(message.municipality)
        crew = config.crew(message.crew) if config else None
        for hook in crew.webhooks if crew else ():
            if hook.url == message.target:
                return hook.signing_key()
        raise DeliveryError(f"webhook {message.target}: no longer configured for crew {message.crew}")

    # -- delivery -------------------------------------------------------------------------------------------------

    async def deliver_due(self, limit: int = 500) -> int:
        """Send what is due, every channel at once: one that fails or hangs never holds up the others."""
        now = self.clock()
        due = await asyncio.to_thread(self.alerts.due, now, limit)
        per_channel: dict[str, list[OutboxMessage]] = {}
        for message in due:
            per_channel.setdefault(message.channel, []).append(message)
        results = await asyncio.gather(
            *(self._deliver_channel(name, messages) for name, messages in per_channel.items())
        )
        return sum(results)

    async def _deliver_channel(self, name: str, messages: list[OutboxMessage]) -> int:
        channel = self.channels.get(name)
        delivered = 0
        for message in messages:
            try:
                if channel is None:
                    raise DeliveryError(f"channel {name} is not configured")
                await channel.send(message)
            except DeliveryError as error:
                at = self.clock()
                next_due = at + timedelta(seconds=backoff_s(message.attempts + 1, message.id))
                await asyncio.to_thread(self.alerts.record_attempt, message.id, at, False, str(error), next_due)
                logger.warning("alert delivery failed id=%s alert=%s: %s", message.id, message.alert_id, error)
                continue
            await asyncio.to_thread(self.alerts.record_attempt, message.id, self.clock(), True, "delivered", None)
            delivered += 1
        return delivered

    async def tick(self) -> int:
        """Evaluate once, then deliver what is due; returns the number delivered."""
        await asyncio.to_thread(self.evaluate)
        return await self.deliver_due()

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """The background loop of the cloud app; an error in one round is logged, the next round runs."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                logger.exception("alert round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
