"""The shared contracts: the data every Flurfunk package speaks (pydantic v2, versioned).

Gateway and cloud never import each other; they share these models and the wire format in `flurfunk.wire`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from itertools import repeat
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

CONTRACT_VERSION = 1

MUNICIPALITIES: tuple[str, ...] = (
    "Wächtersbach",
    "Bad Orb",
    "Bad Soden-Salmünster",
    "Birstein",
    "Sinntal",
    "Steinau an der Straße",
)

_EUI64 = re.compile(r"^[0-9a-f]{16}$")


def _normalise_eui(value: str) -> str:
    compact = value.replace("-", "").replace(":", "").lower()
    if not _EUI64.match(compact):
        raise ValueError(f"not an EUI-64 (16 hex digits): {value!r}")
    return compact


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a time zone (UTC)")
    return value.astimezone(UTC)


def _require_finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value!r}")
    return value


Eui64 = Annotated[str, AfterValidator(_normalise_eui)]
UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
FiniteFloat = Annotated[float, AfterValidator(_require_finite)]


class Quantity(StrEnum):
    """The closed vocabulary of measured quantities; each has one unit (`QUANTITY_UNITS`)."""

    FILL_RATIO = "fill_ratio"
    DISTANCE_M = "distance_m"
    SOIL_VWC = "soil_vwc"
    SOIL_TENSION_KPA = "soil_tension_kpa"
    SOIL_TEMPERATURE_C = "soil_temperature_c"
    SOIL_EC_US_CM = "soil_ec_us_cm"
    AIR_TEMPERATURE_C = "air_temperature_c"
    HUMIDITY_PCT = "humidity_pct"
    PRESSURE_HPA = "pressure_hpa"
    RAIN_MM = "rain_mm"
    WIND_SPEED_MS = "wind_speed_ms"
    WIND_DIRECTION_DEG = "wind_direction_deg"
    SOLAR_RADIATION_W_M2 = "solar_radiation_w_m2"
    ILLUMINANCE_LUX = "illuminance_lux"
    DEVICE_TEMPERATURE_C = "device_temperature_c"
    BATTERY_V = "battery_v"
    BATTERY_PCT = "battery_pct"
    TILT = "tilt"

    @property
    def unit(self) -> str:
        return QUANTITY_UNITS[self]


QUANTITY_UNITS: dict[Quantity, str] = {
    Quantity.FILL_RATIO: "1",
    Quantity.DISTANCE_M: "m",
    Quantity.SOIL_VWC: "m³/m³",
    Quantity.SOIL_TENSION_KPA: "kPa",
    Quantity.SOIL_TEMPERATURE_C: "°C",
    Quantity.SOIL_EC_US_CM: "µS/cm",
    Quantity.AIR_TEMPERATURE_C: "°C",
    Quantity.HUMIDITY_PCT: "%",
    Quantity.PRESSURE_HPA: "hPa",
    Quantity.RAIN_MM: "mm",
    Quantity.WIND_SPEED_MS: "m/s",
    Quantity.WIND_DIRECTION_DEG: "°",
    Quantity.SOLAR_RADIATION_W_M2: "W/m²",
    Quantity.ILLUMINANCE_LUX: "lx",
    Quantity.DEVICE_TEMPERATURE_C: "°C",
    Quantity.BATTERY_V: "V",
    Quantity.BATTERY_PCT: "%",
    Quantity.TILT: "1",
}


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RxInfo(_Contract):
    """One reception of an uplink by one gateway."""

    gateway_id: Eui64
    rssi: int = Field(ge=-200, le=50)
    snr: FiniteFloat = Field(ge=-40, le=40)
    frequency_hz: int = Field(ge=100_000_000, le=3_000_000_000)
    data_rate: str = Field(min_length=1, max_length=32, description="e.g. SF9BW125")


UplinkSource = Literal["semtech_udp", "chirpstack", "tts", "simulator"]


class Uplink(_Contract):
    """An application uplink as the gateway hears it, before decoding."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    dev_eui: Eui64
    f_port: int = Field(ge=1, le=255)
    f_cnt: int = Field(ge=0, lt=2**32)
    payload: bytes = Field(max_length=255)
    received_at: UtcDatetime
    rx: tuple[RxInfo, ...] = ()
    source: UplinkSource


class Reading(_Contract):
    """One normalised fact: a quantity of an asset at a time, in the quantity's unit."""

    device: Eui64
    asset: str = Field(min_length=1, max_length=64)
    quantity: Quantity
    value: FiniteFloat
    time: UtcDatetime
    anomaly_score: FiniteFloat = Field(default=0.0, ge=0.0)
    flags: tuple[str, ...] = ()

    @field_validator("flags")
    @classmethod
    def _flags_are_names(cls, flags: tuple[str, ...]) -> tuple[str, ...]:
        for flag in flags:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", flag):
                raise ValueError(f"flag must be a snake_case name, got {flag!r}")
        return tuple(sorted(set(flags)))

    @property
    def unit(self) -> str:
        return self.quantity.unit

    @classmethod
    def from_trusted(
        cls,
        device: str,
        asset: str,
        quantity: Quantity | str,
        value: float,
        time: datetime,
        anomaly_score: float = 0.0,
        flags: tuple[str, ...] = (),
    ) -> Reading:
        """A Reading built without pydantic's machinery, for producers that make many (decoders, the wire format).

        It keeps every rule of the validated constructor with checks that cost little (a device EUI-64 is checked
        once per process and remembered), so the result equals `Reading(...)` for the same arguments and anything
        that constructor refuses raises ValueError here too (tests/test_contracts.py compares them). It is ~10x
        cheaper; the difference: `value` and `anomaly_score` must be numbers, `time` a datetime (no strings).
        """
        device, asset, time = _trusted_subject(device, asset, time)
        if quantity.__class__ is not Quantity:
            quantity = Quantity(quantity)
        if value.__class__ is not float:
            value = _trusted_number(value, "value")
        if not -math.inf < value < math.inf:
            raise ValueError(f"value must be a finite number, got {value!r}")
        if anomaly_score.__class__ is not float:
            anomaly_score = _trusted_number(anomaly_score, "anomaly_score")
        if not 0.0 <= anomaly_score < math.inf:
            raise ValueError(f"anomaly_score must be a finite number >= 0, got {anomaly_score!r}")
        if flags:
            flags = cls._flags_are_names(tuple(flags))
        elif flags != ():
            flags = ()
        return _assemble(cls, device, asset, quantity, value, time, anomaly_score, flags)

    @classmethod
    def from_trusted_values(
        cls, device: str, asset: str, time: datetime, values: Iterable[tuple[Quantity, float]]
    ) -> list[Reading]:
        """`from_trusted` for the (quantity, value) pairs of one uplink: device, asset and time are checked once.

        The readings are assembled here, not through `_assemble`: this loop is a decoder's hot path, where a call per
        reading is a fifth of the reading's cost.
        """
        readings: list[Reading] = []
        append = readings.append
        quantity_type, inf, new, set_dict = Quantity, math.inf, _new_object, _set_dict
        copy = None
        for quantity, value in values:
            if copy is None:  # at the first pair: no pairs, no readings, nothing to refuse (as the validated model)
                copy = _fields_of(device, asset, time)
            # type(x), not x.__class__: the interpreter has a fast path for type() of one argument
            if type(quantity) is not quantity_type:
                quantity = quantity_type(quantity)
            if type(value) is not float:
                value = _trusted_number(value, "value")
            if not -inf < value < inf:
                raise ValueError(f"value must be a finite number, got {value!r}")
            fields = copy()
            fields["quantity"] = quantity
            fields["value"] = value
            reading = new(cls)
            set_dict(reading, fields)  # pydantic's other slots stay empty: see Reading.__getattr__
            append(reading)
        return readings

    @classmethod
    def from_checked_values(
        cls, device: str, asset: str, time: datetime, quantities: Sequence[Quantity], values: Sequence[float]
    ) -> list[Reading]:
        """`from_trusted_values` for pairs whose producer guarantees Reading's rules for them: every quantity a
        Quantity member, every value a finite float (a compiled decoder: decoders.decoded.Measurements). Device,
        asset and time are checked as there; the pairs are not checked again."""
        if not values:
            return []
        set_dict, copy = _set_dict, _fields_of(device, asset, time)
        readings: list[Reading] = list(map(_new_object, repeat(cls, len(values))))  # all at once, without a call each
        for reading, quantity, value in zip(readings, quantities, values, strict=True):
            fields = copy()
            fields["quantity"] = quantity
            fields["value"] = value
            set_dict(reading, fields)
        return readings

    if not TYPE_CHECKING:  # as in BaseModel: type checkers keep flagging unknown attributes

        def __getattr__(self, name: str) -> Any:
            """What pydantic's bookkeeping slots hold for a reading the fast constructors built.

            They fill only `__dict__` and leave `__pydantic_fields_set__`, `__pydantic_extra__` and
            `__pydantic_private__` empty (filling them was 40 % of a reading's cost on a decoder's hot path); Python
            asks `__getattr__` after an empty slot raised, and this answers what the validated constructor puts there:
            every field set, no extra, no private values. Any other name goes to pydantic's own `__getattr__`.
            """
            try:
                return _EMPTY_SLOTS[name]
            except KeyError:
                return super().__getattr__(name)


def readings_from_checked_columns(
    devices: Sequence[str],
    assets: Sequence[str],
    quantities: Sequence[Quantity],
    values: Sequence[float],
    times: Sequence[datetime],
    anomaly_scores: Sequence[float],
    flags: Sequence[tuple[str, ...]],
) -> list[Reading]:
    """Readings assembled from columns that the caller has checked entry by entry against Reading's rules
    (normalised EUI-64 texts, asset ids of 1..64 characters, Quantity members, finite floats, scores >= 0, UTC
    datetimes, sorted unique flag names) — the wire format checks whole columns at once and builds here. Equal to
    `Reading(...)` for the same values (tests/test_wire.py compares them)."""
    return [
        _assemble(Reading, device, asset, quantity, value, time, score, reading_flags)
        for device, asset, quantity, value, time, score, reading_flags in zip(
            devices, assets, quantities, values, times, anomaly_scores, flags, strict=True
        )
    ]


def _trusted_subject(device: str, asset: str, time: datetime) -> tuple[str, str, datetime]:
    """Reading's rules for device, asset and time, cheaply: a device EUI-64 is checked once per process and
    remembered, a time in UTC passes as it is."""
    if device.__class__ is not str or device not in _CHECKED_DEVICES:
        if not isinstance(device, str):
            raise ValueError(f"device must be an EUI-64 text, got {device!r}")
        device = _normalise_eui(device)
        if len(_CHECKED_DEVICES) >= _MAX_CHECKED_DEVICES:
            _CHECKED_DEVICES.clear()  # a gateway has hundreds of devices; the bound only guards the memory
        _CHECKED_DEVICES.add(device)
    if asset.__class__ is not str or not 0 < len(asset) <= 64:
        raise ValueError(f"asset must be a text of 1..64 characters, got {asset!r}")
    zone = getattr(time, "tzinfo", None)
    if zone is not UTC:
        if not isinstance(time, datetime) or zone is None:
            raise ValueError(f"time must be a datetime with a time zone (UTC), got {time!r}")
        time = time.astimezone(UTC)
    return device, asset, time


def _fields_of(device: str, asset: str, time: datetime) -> Callable[[], dict[str, Any]]:
    """Device, asset and time checked (`_trusted_subject`), and what makes each reading's fields of one uplink: a
    copy of these, its quantity and value set after (cheaper than a dict display per reading)."""
    device, asset, time = _trusted_subject(device, asset, time)
    return {
        "device": device,
        "asset": asset,
        "quantity": None,
        "value": None,
        "time": time,
        "anomaly_score": 0.0,
        "flags": (),
    }.copy


def _trusted_number(value: object, name: str) -> float:
    if not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


# The fast constructors fill the one slot of pydantic's constructor that matters, `__dict__`, through its descriptor
# (the cheapest way); Reading.__getattr__ answers for the other three.
_new_object = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
# Every fast-built reading shares one "fields set" (all fields): pydantic copies it before it changes one (model_copy).
_ALL_FIELDS_SET = set(Reading.model_fields)
_EMPTY_SLOTS: dict[str, Any] = {
    "__pydantic_fields_set__": _ALL_FIELDS_SET,
    "__pydantic_extra__": None,
    "__pydantic_private__": None,
}


def _assemble(
    model: type[Reading],
    device: str,
    asset: str,
    quantity: Quantity,
    value: float,
    time: datetime,
    anomaly_score: float,
    flags: tuple[str, ...],
) -> Reading:
    """A Reading from fields already checked against its rules: `__dict__` filled as pydantic fills it."""
    reading = _new_object(model)
    _set_dict(
        reading,
        {
            "device": device,
            "asset": asset,
            "quantity": quantity,
            "value": value,
            "time": time,
            "anomaly_score": anomaly_score,
            "flags": flags,
        },
    )
    return reading


_CHECKED_DEVICES: set[str] = set()
_MAX_CHECKED_DEVICES = 100_000


class GatewayStatus(_Contract):
    """What a gateway reports about itself with every batch."""

    buffered: int = Field(ge=0)
    oldest_unsynced_s: FiniteFloat = Field(ge=0.0)
    dropped: dict[str, int] = Field(default_factory=dict)
    model_version: str | None = None


class AssetKind(StrEnum):
    BIN = "bin"
    TREE = "tree"
    GREEN_SPACE = "green_space"
    WEATHER_STATION = "weather_station"


class Asset(_Contract):
    """A thing in a town that a sensor watches and the Bauhof serves."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: AssetKind
    municipality: str = Field(min_length=1, max_length=64)
    village: str = Field(min_length=1, max_length=64)
    latitude: FiniteFloat = Field(ge=-90, le=90)
    longitude: FiniteFloat = Field(ge=-180, le=180)
    # bins
    capacity_l: int | None = Field(default=None, gt=0)
    waste_type: str | None = Field(default=None, max_length=32, description="residual, paper, organic, glass")
    sensor_to_bottom_m: FiniteFloat | None = Field(default=None, gt=0, description="ultrasonic: empty distance")
    sensor_to_full_m: FiniteFloat | None = Field(default=None, ge=0, description="ultrasonic: full distance")
    # trees and green spaces
    species: str | None = Field(default=None, max_length=64)
    planting_year: int | None = Field(default=None, ge=1800, le=2200)


class Device(_Contract):
    """A sensor: which payload format it speaks (model id as in the TTN device repository) and what it watches."""

    dev_eui: Eui64
    model_id: str = Field(min_length=3, max_length=96, pattern=r"^[a-z0-9\-]+/[a-z0-9\-]+(@[a-z0-9\-.]+)?$")
    asset: str = Field(min_length=1, max_length=64)
    report_interval_s: int = Field(gt=0, le=7 * 86400)


class Depot(_Contract):
    """A town's works yard (Bauhof), where routes start and end."""

    municipality: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    latitude: FiniteFloat = Field(ge=-90, le=90)
    longitude: FiniteFloat = Field(ge=-180, le=180)


MAX_BATCH_READINGS = 20_000


class Batch(_Contract):
    """What a gateway sends the cloud: buffer entries first_seq..last_seq and the readings they hold.

    The cloud acknowledges last_seq once the readings are durable; a replay of the same range is harmless.
    """

    version: int = CONTRACT_VERSION
    gateway_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    first_seq: int = Field(ge=1)
    last_seq: int = Field(ge=1)
    sent_at: UtcDatetime
    readings: tuple[Reading, ...] = Field(default=(), max_length=MAX_BATCH_READINGS)
    status: GatewayStatus | None = None

    @model_validator(mode="after")
    def _range_is_ordered(self) -> Batch:
        if self.last_seq < self.first_seq:
            raise ValueError(f"last_seq {self.last_seq} is before first_seq {self.first_seq}")
        if self.version != CONTRACT_VERSION:
            raise ValueError(f"batch version {self.version} is not supported (expected {CONTRACT_VERSION})")
        return self


class TaskKind(StrEnum):
    COLLECT = "collect"
    WATER = "water"
    MAINTAIN = "maintain"
    INSPECT = "inspect"


class TaskState(StrEnum):
    PLANNED = "planned"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PLANNED: frozenset({TaskState.ASSIGNED, TaskState.CANCELLED}),
    TaskState.ASSIGNED: frozenset({TaskState.PLANNED, TaskState.IN_PROGRESS, TaskState.SKIPPED, TaskState.CANCELLED}),
    TaskState.IN_PROGRESS: frozenset({TaskState.DONE, TaskState.SKIPPED}),
    TaskState.DONE: frozenset(),
    TaskState.SKIPPED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


class InvalidTransitionError(ValueError):
    """A task was asked to move along an edge its state machine does not have."""


class Task(_Contract):
    """A piece of work for the Bauhof, with the data that caused it."""

    id: str = Field(min_length=1, max_length=64)
    kind: TaskKind
    asset: str = Field(min_length=1, max_length=64)
    municipality: str = Field(min_length=1, max_length=64)
    due_from: UtcDatetime
    due_until: UtcDatetime
    priority: int = Field(ge=0, le=100, description="100 is most urgent")
    reason: str = Field(min_length=1, max_length=500, description="why the task exists, for people")
    evidence: dict[str, float | str] = Field(default_factory=dict, description="the data behind the reason")
    state: TaskState = TaskState.PLANNED
    skip_reason: str | None = None
    route_id: str | None = None
    crew: str | None = None

    @model_validator(mode="after")
    def _window_and_skip_reason(self) -> Task:
        if self.due_until < self.due_from:
            raise ValueError("due_until is before due_from")
        if (self.state is TaskState.SKIPPED) != (self.skip_reason is not None):
            raise ValueError("a skipped task needs a skip_reason, and only a skipped task has one")
        return self

    def transition(self, to: TaskState, skip_reason: str | None = None) -> Task:
        """The task in state `to`; raises InvalidTransitionError for an edge the state machine lacks."""
        if to not in TASK_TRANSITIONS[self.state]:
            raise InvalidTransitionError(f"task {self.id}: cannot go from {self.state} to {to}")
        if to is TaskState.SKIPPED and not skip_reason:
            raise InvalidTransitionError(f"task {self.id}: skipping needs a reason")
        return self.model_copy(update={"state": to, "skip_reason": skip_reason if to is TaskState.SKIPPED else None})


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Delivery(_Contract):
    channel: str = Field(min_length=1, max_length=64)
    at: UtcDatetime
    ok: bool
    detail: str = Field(default="", max_length=500)


class Alert(_Contract):
    """One open condition, however often it was seen."""

    id: str = Field(min_length=1, max_length=64)
    rule: str = Field(min_length=1, max_length=64)
    severity: Severity
    subject: str = Field(min_length=1, max_length=200)
    municipality: str = Field(min_length=1, max_length=64)
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    count: int = Field(default=1, ge=1)
    state: AlertState = AlertState.OPEN
    deliveries: tuple[Delivery, ...] = ()

    @model_validator(mode="after")
    def _seen_in_order(self) -> Alert:
        if self.last_seen < self.first_seen:
            raise ValueError("last_seen is before first_seen")
        return self


def utc_now() -> datetime:
    return datetime.now(UTC)
