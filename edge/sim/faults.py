"""Fault injection for the virtual sensors: spikes, stuck values, drift, dropouts, noise bursts, lid reflections and
frozen soil, each with a ground-truth label per affected reading.

A `FaultInjector` owns its own random generator, so a simulation with faults draws exactly the same physics as one
without; a simulation without an injector is unchanged. The injector also works on plain series (`apply`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from flurfunk.contracts import Quantity

SPIKE = "spike"
STUCK_AT = "stuck_at"
DRIFT = "drift"
DROPOUT = "dropout"
NOISE_BURST = "noise_burst"
LID_REFLECTION = "lid_reflection"
FROZEN_SOIL = "frozen_soil"
FAULT_TYPES: tuple[str, ...] = (SPIKE, STUCK_AT, DRIFT, DROPOUT, NOISE_BURST, LID_REFLECTION, FROZEN_SOIL)

# The quantity each sensor family's faults hit, and which faults that family can have. Weather stations get no
# drift (no reference to tell it from a cold spell) and no dropout (their firmware has no sentinel: it stays silent).
FAMILY_QUANTITY: dict[str, Quantity] = {
    "bin": Quantity.DISTANCE_M,
    "soil": Quantity.SOIL_VWC,
    "weather": Quantity.AIR_TEMPERATURE_C,
}
FAMILY_FAULTS: dict[str, tuple[str, ...]] = {
    "bin": (SPIKE, STUCK_AT, DRIFT, DROPOUT, NOISE_BURST, LID_REFLECTION),
    "soil": (SPIKE, STUCK_AT, DRIFT, DROPOUT, NOISE_BURST, FROZEN_SOIL),
    "weather": (SPIKE, STUCK_AT, NOISE_BURST),
}


@dataclass(frozen=True)
class FaultShape:
    """How big a family's faults are, in its quantity's unit: spike size, drift per hour, burst noise, limits."""

    spike: tuple[float, float]
    drift_per_h: tuple[float, float]
    drift_label_at: float  # drift counts as a fault once its offset exceeds the sensor's tolerance
    burst_sd: tuple[float, float]
    low: float
    high: float


SHAPES: dict[str, FaultShape] = {
    "bin": FaultShape(spike=(0.3, 0.8), drift_per_h=(0.01, 0.03), drift_label_at=0.02, burst_sd=(0.1, 0.3),
                      low=0.03, high=2.0),
    "soil": FaultShape(spike=(0.08, 0.2), drift_per_h=(0.002, 0.006), drift_label_at=0.01, burst_sd=(0.03, 0.08),
                       low=0.005, high=0.6),
    "weather": FaultShape(spike=(8.0, 20.0), drift_per_h=(0.0, 0.0), drift_label_at=1.0, burst_sd=(2.0, 5.0),
                          low=-50.0, high=60.0),
}  # fmt: skip
_RESOLUTION = {"bin": 3, "soil": 4, "weather": 1}  # decimals the firmware reports

# Durations in readings (min, max); a spike is one reading.
_DURATION = {STUCK_AT: (12, 72), DRIFT: (24, 72), DROPOUT: (2, 24), NOISE_BURST: (3, 12), LID_REFLECTION: (3, 12),
             FROZEN_SOIL: (12, 48), SPIKE: (1, 1)}  # fmt: skip


@dataclass(frozen=True)
class FaultEvent:
    """One fault of one device: `fault` hits the family's quantity for readings at times in [start_s, end_s)."""

    dev_eui: str
    family: str
    fault: str
    start_s: float
    end_s: float
    magnitude: float  # spike offset, drift per hour, burst sd or frozen share (sign included where it matters)


@dataclass(frozen=True)
class FaultLabel:
    """Ground truth: this reading of this device was falsified by `fault`."""

    dev_eui: str
    quantity: Quantity
    time_s: float
    fault: str


def family_of(values: Mapping[Quantity, float]) -> str | None:
    """The sensor family whose primary quantity is among the values, or None."""
    for family, quantity in FAMILY_QUANTITY.items():
        if quantity in values:
            return family
    return None


def random_plan(
    devices: Iterable[tuple[str, str, int]],
    start_s: float,
    end_s: float,
    seed: int,
    mean_gap_h: float = 72.0,
) -> list[FaultEvent]:
    """Faults for `devices` (dev_eui, family, report interval s) between start and end: after a clean gap of
    `mean_gap_h` on average, one fault of a type drawn uniformly from the family's, then the next gap."""
    if mean_gap_h <= 0 or end_s <= start_s:
        raise ValueError(f"need mean_gap_h > 0 and end after start, got {mean_gap_h}, {start_s}..{end_s}")
    rng = np.random.default_rng([seed, 0xFA17])
    events: list[FaultEvent] = []
    for dev_eui, family, interval_s in devices:
        if family not in FAMILY_FAULTS:
            raise ValueError(f"unknown sensor family {family!r}; known: {', '.join(FAMILY_FAULTS)}")
        shape = SHAPES[family]
        at = start_s + rng.exponential(mean_gap_h * 3600.0)
        while at < end_s:
            # Spikes last one reading: drawn as often as all other faults together, so there are enough to learn.
            kinds = FAMILY_FAULTS[family]
            fault = SPIKE if rng.random() < 0.5 else str(rng.choice(kinds[1:]))
            low, high = _DURATION[fault]
            readings = int(rng.integers(low, high + 1))
            sign = 1.0 if rng.random() < 0.5 else -1.0
            magnitude = {
                SPIKE: sign * rng.uniform(*shape.spike),
                DRIFT: sign * rng.uniform(*shape.drift_per_h),
                NOISE_BURST: rng.uniform(*shape.burst_sd),
                FROZEN_SOIL: rng.uniform(0.3, 0.6),
                LID_REFLECTION: rng.uniform(0.05, 0.09),
            }.get(fault, 0.0)
            if family == "bin" and fault == DRIFT:
                magnitude = abs(magnitude)  # a wet or dirty transducer face reads long, never short
            # Start half an interval early so the event covers whole reports whatever the device's phase.
            event_start = at - interval_s / 2
            events.append(
                FaultEvent(dev_eui, family, fault, event_start, event_start + readings * interval_s, float(magnitude))
            )
            at = event_start + readings * interval_s + rng.exponential(mean_gap_h * 3600.0)
    return events


@dataclass
class FaultInjector:
    """Applies a fault plan to readings as they are reported, and records what it falsified in `labels`."""

    events: list[FaultEvent]
    seed: int = 0
    labels: list[FaultLabel] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng([self.seed, 0xFA18])
        self._by_device: dict[str, list[FaultEvent]] = {}
        for event in sorted(self.events, key=lambda e: e.start_s):
            if event.fault not in FAMILY_FAULTS.get(event.family, ()):
                raise ValueError(f"fault {event.fault!r} does not apply to sensor family {event.family!r}")
            self._by_device.setdefault(event.dev_eui, []).append(event)
        self._last_reported: dict[str, float] = {}
        self._stuck_value: dict[FaultEvent, float] = {}
        self._native: dict[str, str] = {}

    def note_native(self, dev_euis: set[str], fault: str) -> None:
        """The simulation's own physics falsify these devices' next reading (a stray echo): label it `fault`."""
        for dev_eui in dev_euis:
            self._native[dev_eui] = fault

    def apply(self, dev_eui: str, time_s: float, values: Mapping[Quantity, float]) -> dict[Quantity, float]:
        """The values the faulty sensor reports instead of `values` at `time_s` (a copy; unchanged if healthy)."""
        reported = dict(values)
        family = family_of(values)
        events = self._by_device.get(dev_eui)
        if family is None:
            return reported
        quantity = FAMILY_QUANTITY[family]
        event = _active(events, time_s) if events else None
        native = self._native.pop(dev_eui, None)
        if native is not None and (event is None or event.family != family):
            self.labels.append(FaultLabel(dev_eui, quantity, time_s, native))
        elif event is not None and event.family == family:
            truth = float(values[quantity])
            value, labelled = self._falsify(event, truth, time_s, reported)
            reported[quantity] = value
            if labelled:
                self.labels.append(FaultLabel(dev_eui, quantity, time_s, event.fault))
        self._last_reported[dev_eui] = float(reported[quantity])
        return reported

    def _falsify(
        self, event: FaultEvent, truth: float, time_s: float, reported: dict[Quantity, float]
    ) -> tuple[float, bool]:
        shape = SHAPES[event.family]
        decimals = _RESOLUTION[event.family]
        fault = event.fault
        if fault == SPIKE:
            offset = event.magnitude
            if not shape.low + 0.1 * abs(offset) < truth + offset < shape.high:
                offset = -offset
            value = truth + offset
        elif fault == STUCK_AT:
            value = self._stuck_value.setdefault(event, self._last_reported.get(event.dev_eui, truth))
        elif fault == DRIFT:
            offset = event.magnitude * (time_s - event.start_s) / 3600.0
            value = truth + offset
            if abs(round(value, decimals) - truth) < shape.drift_label_at:
                return _clip(value, shape, decimals), False
        elif fault == DROPOUT:
            return 0.0, True  # no echo / no probe: the firmware's zero
        elif fault == NOISE_BURST:
            value = truth + event.magnitude * float(self._rng.standard_normal())
        elif fault == LID_REFLECTION:
            value = event.magnitude + 0.003 * float(self._rng.standard_normal())
        elif fault == FROZEN_SOIL:
            # Ice is not water to a capacitive probe: the water content reads low while the soil is frozen.
            value = truth * event.magnitude
            if Quantity.SOIL_TEMPERATURE_C in reported:
                reported[Quantity.SOIL_TEMPERATURE_C] = round(-0.3 - 2.0 * abs(math.sin(time_s / 7200.0)), 2)
        else:  # pragma: no cover - FaultInjector.__post_init__ refuses unknown faults
            raise ValueError(f"unknown fault {fault!r}")
        return _clip(value, shape, decimals), True


def _active(events: list[FaultEvent], time_s: float) -> FaultEvent | None:
    for event in events:
        if event.start_s <= time_s < event.end_s:
            return event
        if event.start_s > time_s:
            break
    return None


def _clip(value: float, shape: FaultShape, decimals: int) -> float:
    return round(min(max(value, shape.low), shape.high), decimals)
