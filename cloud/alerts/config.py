"""Alert rules, crews, on-call rosters and quiet hours per municipality: one TOML file per town, or the defaults.

A file `<slug>.toml` in `alerts_config_dir` (slug as in URLs: `birstein`, `bad-orb`) replaces the defaults of that
town; towns without a file get `default_config(town)`. The format is documented in the README ("Alerts").
"""

from __future__ import annotations

import os
import tomllib
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flurfunk.contracts import MUNICIPALITIES, AssetKind, Quantity, Severity

MAX_CONFIG_BYTES = 256 * 1024
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertConfigError(ValueError):
    """An alert configuration file cannot be used; the message names the file and the field."""


class RuleKind(StrEnum):
    THRESHOLD = "threshold"  # a quantity above/below a limit, with a separate limit to clear (hysteresis)
    RATE = "rate"  # a quantity changing faster than a limit per hour
    FLAG = "flag"  # a flag the gateway's anomaly check set on the newest reading (sensor_fault)
    SILENCE = "silence"  # a device silent for `factor` times its report interval
    OVERFLOW = "overflow"  # a bin predicted to overflow before its next planned collection
    GATEWAY_OFFLINE = "gateway_offline"  # no batch from a gateway for `after_s`
    GATEWAY_BUFFER = "gateway_buffer"  # a gateway's buffer filling: entries or age of the oldest unsynced one


class GroupBy(StrEnum):
    ASSET = "asset"  # one alert per asset (or device, gateway)
    VILLAGE = "village"  # one alert per village: ten bins in one village is one message
    MUNICIPALITY = "municipality"  # one alert per town (weather)


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rule(_Config):
    """One condition worth a crew's attention. Which fields matter depends on `kind` (README: "Alerts")."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")
    kind: RuleKind
    severity: Severity = Severity.WARNING
    crew: str = Field(min_length=1, max_length=64)
    text: str = Field(default="", max_length=64, description="flurfunk.i18n key; default alert.<kind>")
    group_by: GroupBy = GroupBy.VILLAGE
    asset_kinds: tuple[AssetKind, ...] = ()  # empty: every kind
    max_tree_age_years: int | None = Field(default=None, ge=0, description="young trees only (planting_year)")
    # threshold / rate
    quantity: Quantity | None = None
    above: float | None = None
    clear_below: float | None = None
    below: float | None = None
    clear_above: float | None = None
    max_change_per_h: float | None = Field(default=None, gt=0)
    # flag
    flag: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,39}$")
    # silence
    factor: float = Field(default=3.0, gt=1)
    # overflow: without a planned collection, warn when the overflow is nearer than this
    horizon_s: int = Field(default=24 * 3600, gt=0)
    # gateways
    after_s: int = Field(default=30 * 60, gt=0)
    buffered_above: int | None = Field(default=None, ge=0)
    oldest_unsynced_above_s: float | None = Field(default=None, ge=0)
    # notification policy
    cooldown_s: int = Field(
        default=6 * 3600, ge=0, description="a re-trip within this time of the last message is silent"
    )
    escalate_after_s: int = Field(default=2 * 3600, gt=0, description="unacknowledged this long: the next on-call")

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Rule:
        kind = self.kind
        if kind is RuleKind.THRESHOLD:
            if self.quantity is None or (self.above is None) == (self.below is None):
                raise ValueError(f"rule {self.id}: a threshold needs quantity and exactly one of above/below")
            if self.above is not None and self.clear_below is not None and self.clear_below > self.above:
                raise ValueError(f"rule {self.id}: clear_below must not be above `above` (hysteresis)")
            if self.below is not None and self.clear_above is not None and self.clear_above < self.below:
                raise ValueError(f"rule {self.id}: clear_above must not be below `below` (hysteresis)")
        if kind is RuleKind.RATE and (self.quantity is None or self.max_change_per_h is None):
            raise ValueError(f"rule {self.id}: a rate rule needs quantity and max_change_per_h")
        if kind is RuleKind.FLAG and self.flag is None:
            raise ValueError(f"rule {self.id}: a flag rule needs flag")
        if kind is RuleKind.GATEWAY_BUFFER and self.buffered_above is None and self.oldest_unsynced_above_s is None:
            raise ValueError(f"rule {self.id}: a gateway_buffer rule needs buffered_above or oldest_unsynced_above_s")
        return self

    @property
    def text_key(self) -> str:
        return self.text or f"alert.{self.kind.value}"

    def trips(self, value: float) -> bool:
        """Beyond the limit: a condition starts."""
        return (self.above is not None and value > self.above) or (self.below is not None and value < self.below)

    def holds(self, value: float) -> bool:
        """Not yet back past the clearing limit: an active condition stays (hysteresis)."""
        if self.above is not None:
            return value > (self.clear_below if self.clear_below is not None else self.above)
        if self.below is not None:
            return value < (self.clear_above if self.clear_above is not None else self.below)
        return False

    @property
    def limit(self) -> float | None:
        return self.above if self.above is not None else self.below


class OnCall(_Config):
    """A person on the roster; the first is called first, the next when nobody acknowledges in time."""

    name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)
    username: str | None = Field(default=None, max_length=64)


class Webhook(_Config):
    url: str = Field(pattern=r"^https?://", max_length=500)
    secret: str | None = Field(default=None, min_length=16, max_length=200)
    secret_env: str | None = Field(default=None, max_length=100, description="environment variable holding it")

    @model_validator(mode="after")
    def _one_secret(self) -> Webhook:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError(f"webhook {self.url}: give exactly one of secret and secret_env")
        return self

    def signing_key(self) -> bytes:
        secret = self.secret if self.secret is not None else os.environ.get(self.secret_env or "", "")
        if len(secret) < 16:
            raise AlertConfigError(f"webhook {self.url}: secret missing or shorter than 16 characters")
        return secret.encode()


class Crew(_Config):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    members: tuple[str, ...] = Field(default=(), description="usernames of the crew role who see these alerts")
    on_call: tuple[OnCall, ...] = ()
    mqtt: bool = True
    webhooks: tuple[Webhook, ...] = ()


class QuietHours(_Config):
    """Local times between which only `min_severity` and above go out at once; the rest waits for the end."""

    start: time
    end: time
    min_severity: Severity = Severity.CRITICAL

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_time(cls, value: object) -> object:
        return time.fromisoformat(value) if isinstance(value, str) else value


class MunicipalityAlerts(_Config):
    municipality: str
    language: Literal["de", "en"] = "de"
    timezone: str = "Europe/Berlin"
    quiet_hours: QuietHours | None = None
    crews: tuple[Crew, ...]
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _references(self) -> MunicipalityAlerts:
        crews = {crew.name for crew in self.crews}
        if len(crews) != len(self.crews):
            raise ValueError("crew names must be unique")
        ids = [rule.id for rule in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError("rule ids must be unique")
        for rule in self.rules:
            if rule.crew not in crews:
                raise ValueError(f"rule {rule.id}: no crew {rule.crew!r} (crews: {sorted(crews)})")
        return self

    def crew(self, name: str) -> Crew | None:
        return next((crew for crew in self.crews if crew.name == name), None)

    def crews_of(self, username: str) -> set[str]:
        return {crew.name for crew in self.crews if username in crew.members}


def municipality_slug(name: str) -> str:
    """The town's id in URLs and MQTT topics, as the initial migration seeds it: `Bad Orb` -> `bad-orb`."""
    folded = name.lower()
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        folded = folded.replace(umlaut, plain)
    return "-".join("".join(c if c.isalnum() else " " for c in folded).split())


def default_config(municipality: str) -> MunicipalityAlerts:
    """What a town gets without a file: three crews, the rules of the README, no quiet hours, no roster."""
    rules = [
        Rule(id="young-tree-dry", kind=RuleKind.THRESHOLD, crew="gruen", quantity=Quantity.SOIL_TENSION_KPA,
             asset_kinds=(AssetKind.TREE,), max_tree_age_years=5, above=80, clear_below=50, text="alert.tree_dry"),
        Rule(id="bin-full", kind=RuleKind.THRESHOLD, crew="abfall", quantity=Quantity.FILL_RATIO,
             asset_kinds=(AssetKind.BIN,), above=0.95, clear_below=0.5, severity=Severity.INFO, text="alert.bin_full"),
        Rule(id="bin-overflow", kind=RuleKind.OVERFLOW, crew="abfall", asset_kinds=(AssetKind.BIN,)),
        Rule(id="frost", kind=RuleKind.THRESHOLD, crew="gruen", quantity=Quantity.AIR_TEMPERATURE_C,
             asset_kinds=(AssetKind.WEATHER_STATION,), below=0.0, clear_above=2.0, group_by=GroupBy.MUNICIPALITY,
             text="alert.frost"),
        Rule(id="storm", kind=RuleKind.THRESHOLD, crew="gruen", quantity=Quantity.WIND_SPEED_MS,
             asset_kinds=(AssetKind.WEATHER_STATION,), above=17.2, clear_below=10.8, group_by=GroupBy.MUNICIPALITY,
             severity=Severity.CRITICAL, text="alert.storm"),
        Rule(id="battery-drop", kind=RuleKind.RATE, crew="technik", quantity=Quantity.BATTERY_V,
             max_change_per_h=0.2, severity=Severity.INFO),
        Rule(id="sensor-fault", kind=RuleKind.FLAG, crew="technik", flag="sensor_fault", severity=Severity.INFO),
        Rule(id="device-silent", kind=RuleKind.SILENCE, crew="technik", severity=Severity.INFO),
        Rule(id="battery-low", kind=RuleKind.THRESHOLD, crew="technik", quantity=Quantity.BATTERY_V, below=3.3,
             clear_above=3.5, severity=Severity.INFO, text="alert.battery_low"),
        Rule(id="gateway-offline", kind=RuleKind.GATEWAY_OFFLINE, crew="technik", after_s=30 * 60,
             group_by=GroupBy.ASSET, severity=Severity.CRITICAL, escalate_after_s=3600),
        Rule(id="gateway-buffer", kind=RuleKind.GATEWAY_BUFFER, crew="technik", buffered_above=50_000,
             oldest_unsynced_above_s=3 * 3600, group_by=GroupBy.ASSET),
    ]  # fmt: skip
    crews = [Crew(name="gruen"), Crew(name="abfall"), Crew(name="technik")]
    return MunicipalityAlerts(municipality=municipality, crews=tuple(crews), rules=tuple(rules))


def parse_config(text: str, source: str = "<text>") -> MunicipalityAlerts:
    """One town's alert configuration from TOML; AlertConfigError names the source and the field."""
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise AlertConfigError(f"{source}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise AlertConfigError(f"{source}: not TOML: {error}") from error
    try:
        config = MunicipalityAlerts.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise AlertConfigError(f"{source}: {where}: {first['msg']}") from error
    if config.municipality not in MUNICIPALITIES:
        raise AlertConfigError(f"{source}: municipality: unknown town {config.municipality!r}")
    return config


def load_configs(directory: Path | None) -> dict[str, MunicipalityAlerts]:
    """Every town's configuration: `<slug>.toml` from `directory` where present, the defaults elsewhere."""
    configs = {town: default_config(town) for town in MUNICIPALITIES}
    if directory is None:
        return configs
    slugs = {municipality_slug(town): town for town in MUNICIPALITIES}
    for path in sorted(directory.glob("*.toml")):
        if path.stem not in slugs:
            raise AlertConfigError(f"{path}: file name must be a town's slug ({', '.join(sorted(slugs))})")
        config = parse_config(path.read_text(encoding="utf-8"), str(path))
        if config.municipality != slugs[path.stem]:
            raise AlertConfigError(f"{path}: names {config.municipality!r}, but the file is {slugs[path.stem]!r}'s")
        configs[config.municipality] = config
    return configs
