"""Labelled training data: readings of the virtual district with injected faults, or history from a SeriesStore
with faults injected into it (real history carries no labels, so the faults are ours and known)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

import decoders
from cloud.store.series import SeriesStore
from edge.anomaly.features import (
    FAMILY_OF_QUANTITY,
    LOOK_AHEAD,
    MIN_HISTORY,
    NO_NEXT,
    ZERO_IS_NO_VALUE,
    LateContext,
    StreamingFeatures,
    late_features,
)
from edge.anomaly.rules import rule_fault
from edge.sim import Simulation, build_world
from edge.sim.faults import FAMILY_QUANTITY, FaultInjector, FaultLabel, family_of, random_plan
from flurfunk.contracts import Asset, AssetKind, Device, Quantity

CLEAN = "clean"
TILTED = "tilted"  # a knocked-over bin: not a sensor fault, left out of training and metrics
KIND_FAMILY = {
    AssetKind.BIN: "bin",
    AssetKind.TREE: "soil",
    AssetKind.GREEN_SPACE: "soil",
    AssetKind.WEATHER_STATION: "weather",
}
MAX_DAYS = 366


def device_family(model_id: str, kind: AssetKind | None = None) -> str | None:
    """The sensor family a device's readings are scored as: what its model measures (a fill sensor is a bin's, a
    soil-moisture probe a soil's); a model that measures several (a multi-sensor) by the asset it watches; None for
    a model that measures none, or an unknown one."""
    try:
        quantities = decoders.model(model_id).quantities
    except decoders.UnknownModelError:
        return None
    families = {FAMILY_OF_QUANTITY[quantity] for quantity in quantities if quantity in FAMILY_OF_QUANTITY}
    if len(families) == 1:
        return families.pop()
    by_kind = KIND_FAMILY.get(kind) if kind is not None else None
    return by_kind if by_kind in families else None


@dataclass(frozen=True)
class Record:
    """One uplink's values as the device reported them, with the ground truth of its family's quantity."""

    dev_eui: str
    asset: str
    family: str
    time_s: float
    values: Mapping[Quantity, float]
    label: str


@dataclass
class FamilyData:
    """Features, labels and device ids of one sensor family: an instant row per reading the network scores, and a
    late row per reading after it (1 to LOOK_AHEAD later) that is known."""

    features: list[list[float]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    known_after: list[int] = field(default_factory=list)  # readings known after the scored one: 0 to LOOK_AHEAD

    def add(self, features: list[float], label: str, device: str, known_after: int) -> None:
        self.features.append(features)
        self.labels.append(label)
        self.devices.append(device)
        self.known_after.append(known_after)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.array(self.features, dtype=np.float64).reshape(-1, len(self.features[0]) if self.features else 0),
            np.array(self.labels),
            np.array(self.devices),
            np.array(self.known_after, dtype=np.int64),
        )


def simulate_records(
    seed: int, days: int, scale: float = 0.3, start: datetime | None = None, mean_gap_h: float = 60.0
) -> list[Record]:
    """Uplink values of a simulated district over `days`, faults injected, bins emptied daily when nearly full."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    start = start or datetime(2026, 3, 2, tzinfo=UTC)
    world = build_world(seed, scale)
    end = start + timedelta(days=days)
    plan = random_plan(
        ((d.dev_eui, device_family(d.model_id), d.report_interval_s) for d in world.devices),
        start.timestamp(),
        end.timestamp(),
        seed,
        mean_gap_h=mean_gap_h,
    )
    injector = FaultInjector(plan, seed=seed)
    captured: list[dict[Quantity, float]] = []

    def capture(model_id: str, values: Mapping[Quantity, float]) -> tuple[int, bytes]:
        captured.append(dict(values))
        return 1, b""  # the values are what we need; the codecs are tested elsewhere

    simulation = Simulation(world, seed, start, capture, faults=injector)
    asset_of = {d.dev_eui: d.asset for d in world.devices}
    bins = [a.id for a in world.assets if a.kind is AssetKind.BIN]
    uplinks = []
    moment = start
    while moment < end:
        moment += timedelta(hours=1)
        uplinks.extend(simulation.advance(moment))
        if moment.hour == 8:
            for asset_id in bins:
                if simulation.fill_ratio(asset_id) >= 0.85:
                    simulation.empty_bin(asset_id, moment)
    truth = {(label.dev_eui, label.time_s): label.fault for label in injector.labels}
    records = []
    for uplink, values in zip(uplinks, captured, strict=True):
        family = family_of(values)
        if family is None:
            continue
        time_s = uplink.received_at.timestamp()
        label = truth.get((uplink.dev_eui, time_s), CLEAN)
        if family == "bin" and values.get(Quantity.TILT, 0.0) >= 0.5:
            label = TILTED  # the gateway does not score a knocked-over bin, whatever else is wrong with it
        records.append(Record(uplink.dev_eui, asset_of[uplink.dev_eui], family, time_s, values, label))
    return records


def store_records(
    store: SeriesStore,
    assets: Sequence[Asset],
    devices: Sequence[Device],
    start: datetime,
    end: datetime,
    seed: int,
    mean_gap_h: float = 60.0,
) -> list[Record]:
    """History of each device's family quantity (and soil temperature) from the store, faults injected."""
    kinds = {asset.id: asset.kind for asset in assets}
    records: list[Record] = []
    plan_devices = []
    series: list[tuple[Device, str, list[tuple[float, dict[Quantity, float]]]]] = []
    for device in devices:
        kind = kinds.get(device.asset)
        family = device_family(device.model_id, kind)
        if family is None:
            continue
        quantity = FAMILY_QUANTITY[family]
        points = store.query(device.asset, quantity, start, end)
        context = {}
        if family == "soil":
            context = {p.time: p.value for p in store.query(device.asset, Quantity.SOIL_TEMPERATURE_C, start, end)}
        rows = []
        for point in points:
            values = {quantity: point.value}
            if point.time in context:
                values[Quantity.SOIL_TEMPERATURE_C] = context[point.time]
            rows.append((point.time.timestamp(), values))
        series.append((device, family, rows))
        plan_devices.append((device.dev_eui, family, device.report_interval_s))
    injector = FaultInjector(random_plan(plan_devices, start.timestamp(), end.timestamp(), seed, mean_gap_h), seed)
    for device, family, rows in series:
        before = len(injector.labels)
        for time_s, values in rows:
            reported = injector.apply(device.dev_eui, time_s, values)
            label: FaultLabel | None = injector.labels[-1] if len(injector.labels) > before else None
            before = len(injector.labels)
            fault = label.fault if label is not None and label.time_s == time_s else CLEAN
            records.append(Record(device.dev_eui, device.asset, family, time_s, reported, fault))
    return records


def featurise(records: Sequence[Record]) -> dict[str, FamilyData]:
    """Features per family through the same streaming windows and rules the gateway's scorer uses: readings a rule
    decides and knocked-over bins get no rows (the gateway does not ask the network about them)."""
    streams = StreamingFeatures(max_series=1_000_000)
    data: dict[str, FamilyData] = {}
    # Per device, the readings still waiting for their later verdicts: instant features, context, label, values after.
    waiting: dict[str, list[tuple[list[float], LateContext, str, list[float]]]] = {}
    for record in sorted(records, key=lambda r: (r.time_s, r.dev_eui)):
        if record.label == TILTED:
            continue
        quantity = FAMILY_QUANTITY[record.family]
        assert FAMILY_OF_QUANTITY[quantity] == record.family
        value = record.values[quantity]
        temperature = record.values.get(Quantity.SOIL_TEMPERATURE_C) if record.family == "soil" else None
        window = streams.window(record.dev_eui, quantity)
        judged = rule_fault(record.family, window, value) is None
        history = len(window)  # before the push adds this reading
        computed = streams.push(record.dev_eui, quantity, value, record.family, temperature, compute=judged)
        if value == 0.0 and record.family in ZERO_IS_NO_VALUE:
            continue  # as on the gateway: the readings before wait for the next real value
        family_data = data.setdefault(record.family, FamilyData())
        earlier = waiting.pop(record.dev_eui, [])
        for instant, context, label, following in earlier:
            following.append(value)
            # Every count of readings after, also those the gateway does not ask about (not in REVISE_AT): they show
            # the network how a burst goes on (trained without them, held-out noise_burst F1 0.82 instead of 0.86).
            family_data.add(instant + late_features(context, following, record.family), label, record.dev_eui,
                            len(following))  # fmt: skip
        earlier = [entry for entry in earlier if len(entry[3]) < LOOK_AHEAD]
        if computed is not None:
            if history >= MIN_HISTORY:  # as on the gateway: judged on arrival once the window holds enough
                family_data.add(computed[0] + list(NO_NEXT), record.label, record.dev_eui, 0)
            earlier.append((computed[0], computed[1], record.label, []))
        if earlier:
            waiting[record.dev_eui] = earlier
    return data
