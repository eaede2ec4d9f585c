"""Rule evaluation, pure: a snapshot of the town's state in, the conditions that hold out (with hysteresis)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloud.alerts.config import GroupBy, MunicipalityAlerts, Rule, RuleKind
from flurfunk.contracts import Asset, AssetKind, Device, Quantity


@dataclass(frozen=True, slots=True)
class Latest:
    value: float
    time: datetime
    flags: tuple[str, ...] = ()
    device: str = ""


@dataclass(frozen=True, slots=True)
class GatewayView:
    id: str
    municipality: str | None
    last_seen: datetime | None
    buffered: int = 0
    oldest_unsynced_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the rules look at: assets and their newest values, devices, gateways and the bins' outlook."""

    now: datetime
    assets: Mapping[str, Asset]
    latest: Mapping[str, Mapping[Quantity, Latest]]
    devices: Sequence[Device] = ()
    gateways: Sequence[GatewayView] = ()
    # the value before the newest one, per asset and quantity (for rate rules)
    previous: Mapping[tuple[str, Quantity], Latest] = field(default_factory=dict)
    overflow_at: Mapping[str, datetime] = field(default_factory=dict)  # bin -> predicted overflow
    next_collection: Mapping[str, datetime] = field(default_factory=dict)  # bin -> end of its next planned run


@dataclass(frozen=True, slots=True)
class Hit:
    """One member (asset, device or gateway) of a condition that holds now."""

    member: str
    value: float | None = None
    village: str | None = None


ConditionKey = tuple[str, str]  # (rule id, group: asset id, village or town)


def evaluate(
    config: MunicipalityAlerts, snapshot: Snapshot, active: Mapping[str, set[str]]
) -> dict[ConditionKey, list[Hit]]:
    """The conditions that hold in `snapshot`, each with its members.

    `active` holds, per rule id, the members already in an open condition: they stay until the value is back past
    the rule's clearing limit (hysteresis); others join only past the tripping limit.
    """
    town_assets = {a.id: a for a in snapshot.assets.values() if a.municipality == config.municipality}
    conditions: dict[ConditionKey, list[Hit]] = {}
    for rule in config.rules:
        already = active.get(rule.id, set())
        for hit in _hits(rule, snapshot, town_assets, already, config.municipality):
            conditions.setdefault((rule.id, _group(rule, hit, config.municipality)), []).append(hit)
    for hits in conditions.values():
        hits.sort(key=lambda hit: hit.member)
    return conditions


def _group(rule: Rule, hit: Hit, municipality: str) -> str:
    if rule.group_by is GroupBy.MUNICIPALITY:
        return municipality
    if rule.group_by is GroupBy.VILLAGE and hit.village is not None:
        return hit.village
    return hit.member


def _applies(rule: Rule, asset: Asset, now: datetime) -> bool:
    if rule.asset_kinds and asset.kind not in rule.asset_kinds:
        return False
    if rule.max_tree_age_years is not None:
        if asset.kind not in (AssetKind.TREE, AssetKind.GREEN_SPACE) or asset.planting_year is None:
            return False
        return now.year - asset.planting_year <= rule.max_tree_age_years
    return True


def _hits(
    rule: Rule, snapshot: Snapshot, assets: Mapping[str, Asset], already: set[str], municipality: str
) -> list[Hit]:
    now = snapshot.now
    kind = rule.kind
    if kind is RuleKind.GATEWAY_OFFLINE:
        return [
            Hit(gateway.id, (now - gateway.last_seen).total_seconds())
            for gateway in snapshot.gateways
            if gateway.municipality == municipality
            and gateway.last_seen is not None
            and (now - gateway.last_seen).total_seconds() > rule.after_s
        ]
    if kind is RuleKind.GATEWAY_BUFFER:
        hits = []
        for gateway in snapshot.gateways:
            if gateway.municipality != municipality:
                continue
            full = rule.buffered_above is not None and gateway.buffered > rule.buffered_above
            stale = (
                rule.oldest_unsynced_above_s is not None and gateway.oldest_unsynced_s > rule.oldest_unsynced_above_s
            )
            if full or stale:
                hits.append(Hit(gateway.id, float(gateway.buffered)))
        return hits
    if kind is RuleKind.SILENCE:
        return _silent_devices(rule, snapshot, assets)
    hits = []
    for asset in assets.values():
        if not _applies(rule, asset, now):
            continue
        values = snapshot.latest.get(asset.id, {})
        hit = _asset_hit(rule, snapshot, asset, values, asset.id in already)
        if hit is not None:
            hits.append(hit)
    return hits


def _asset_hit(
    rule: Rule, snapshot: Snapshot, asset: Asset, values: Mapping[Quantity, Latest], was_active: bool
) -> Hit | None:
    kind = rule.kind
    if kind is RuleKind.THRESHOLD and rule.quantity is not None:
        latest = values.get(rule.quantity)
        if latest is None:
            return None
        beyond = rule.holds(latest.value) if was_active else rule.trips(latest.value)
        return Hit(asset.id, latest.value, asset.village) if beyond else None
    if kind is RuleKind.RATE and rule.quantity is not None and rule.max_change_per_h is not None:
        latest = values.get(rule.quantity)
        before = snapshot.previous.get((asset.id, rule.quantity))
        if latest is None or before is None or latest.time <= before.time:
            return None
        per_hour = (latest.value - before.value) / ((latest.time - before.time).total_seconds() / 3600)
        return Hit(asset.id, per_hour, asset.village) if abs(per_hour) > rule.max_change_per_h else None
    if kind is RuleKind.FLAG and rule.flag is not None:
        flagged = [latest for latest in values.values() if rule.flag in latest.flags]
        return Hit(asset.id, None, asset.village) if flagged else None
    if kind is RuleKind.OVERFLOW:
        overflow = snapshot.overflow_at.get(asset.id)
        if overflow is None:
            return None
        deadline = snapshot.next_collection.get(asset.id)
        if deadline is None:
            deadline = snapshot.now + timedelta(seconds=rule.horizon_s)
        hours_left = (overflow - snapshot.now).total_seconds() / 3600
        return Hit(asset.id, hours_left, asset.village) if overflow < deadline else None
    return None


def _silent_devices(rule: Rule, snapshot: Snapshot, assets: Mapping[str, Asset]) -> list[Hit]:
    hits = []
    for device in snapshot.devices:
        asset = assets.get(device.asset)
        if asset is None or not _applies(rule, asset, snapshot.now):
            continue
        heard = [
            latest.time for latest in snapshot.latest.get(asset.id, {}).values() if latest.device == device.dev_eui
        ]
        if not heard:
            continue  # never heard: an installation not yet live, not a sensor gone quiet
        silent_s = (snapshot.now - max(heard)).total_seconds()
        if silent_s > rule.factor * device.report_interval_s:
            hits.append(Hit(device.dev_eui, silent_s, asset.village))
    return hits
