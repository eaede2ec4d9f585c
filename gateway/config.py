"""The gateway's configuration file (TOML): who it is, where the cloud and the buffer are, which sources run.

`load_config(path)` reads and checks it; every error names the file and the key (`GatewayConfigError`). Secrets
(the cloud token, MQTT passwords) never sit in the file itself: they come from files of mode 0600 or from
environment variables, and no model here shows them in its repr.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flurfunk.contracts import Asset, Device
from gateway.errors import GatewayError
from gateway.lorawan.errors import KeyFileModeError, SessionConfigError
from gateway.lorawan.session import DeviceSession, load_sessions
from gateway.pipeline import DeviceBinding

MAX_CONFIG_BYTES = 1024 * 1024
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_SECRET_BYTES = 4096
DEFAULT_HEALTH_BIND = "127.0.0.1:9470"


class GatewayConfigError(GatewayError):
    """The configuration cannot be used; the message names the file and the key."""

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        super().__init__(f"{path}: {key}: {reason}" if key else f"{path}: {reason}")
        self.path = Path(path)
        self.key = key
        self.reason = reason


def _host_port(value: str, key: str) -> str:
    host, separator, port = value.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


def split_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GatewaySection(_Section):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")


class SecretRef(_Section):
    """A secret from a file (mode 0600, owner only) or an environment variable; never the secret itself."""

    file: Path | None = None
    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    def read(self, config_path: Path, key: str) -> str | None:
        if self.file is not None:
            path = self.file
            try:
                mode = path.stat().st_mode
            except OSError as error:
                raise GatewayConfigError(config_path, key, f"cannot read {path}: {error.strerror}") from error
            if stat.S_IMODE(mode) & 0o077:
                raise GatewayConfigError(
                    config_path, key, f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
                )
            raw = path.read_bytes()[: MAX_SECRET_BYTES + 1]
            if len(raw) > MAX_SECRET_BYTES:
                raise GatewayConfigError(config_path, key, f"{path} is longer than {MAX_SECRET_BYTES} bytes")
            value = raw.decode("utf-8", errors="replace").strip()
        elif self.env is not None:
            value = os.environ.get(self.env, "").strip()
            if not value:
                raise GatewayConfigError(config_path, key, f"environment variable {self.env} is not set")
        else:
            return None
        if not value:
            raise GatewayConfigError(config_path, key, "the secret is empty")
        return value


class CloudSection(_Section):
    url: str = Field(pattern=r"^https?://[^\s]+$")
    token_file: Path | None = None
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    sync_interval_s: float = Field(default=10.0, gt=0, le=3600)
    max_readings_per_batch: int = Field(default=5000, ge=1, le=20_000)
    backoff_base_s: float = Field(default=1.0, gt=0, le=60)
    backoff_cap_s: float = Field(default=300.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _one_token_source(self) -> CloudSection:
        if (self.token_file is None) == (self.token_env is None):
            raise ValueError("give exactly one of token_file (mode 0600) or token_env")
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must not be smaller than backoff_base_s")
        return self


class BufferSection(_Section):
    path: Path
    quota_mb: float = Field(default=512.0, gt=0, le=1_000_000)

    @property
    def quota_bytes(self) -> int:
        return int(self.quota_mb * 1024 * 1024)


class HealthSection(_Section):
    bind: str = DEFAULT_HEALTH_BIND

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        return _host_port(value, "bind")


class DevicesSection(_Section):
    bundle: Path | None = None  # JSON: {"assets": [...], "devices": [...], ...}
    assets: tuple[Asset, ...] = ()
    devices: tuple[Device, ...] = ()


class AnomalySection(_Section):
    """Which edge anomaly model bundle runs: a local folder (overrides all), else the one the cloud assigns (kept in
    the state dir across restarts), else the bundle shipped with the software."""

    bundle: Path | None = None  # a bundle folder on this Pi, e.g. for a gateway without backhaul
    # Ask the cloud for the assigned bundle; default: yes, unless a local bundle is given.
    fetch: bool | None = None
    check_interval_s: float = Field(default=900.0, ge=0.1, le=86_400)
    backend: Literal["auto", "numpy", "litert"] = "auto"

    @model_validator(mode="after")
    def _one_source(self) -> AnomalySection:
        if self.bundle is not None and self.fetch:
            raise ValueError("a local bundle overrides the cloud's: give bundle or fetch = true, not both")
        return self

    @property
    def fetches(self) -> bool:
        return self.fetch if self.fetch is not None else self.bundle is None


class SemtechUdpSection(_Section):
    bind: str = "0.0.0.0:1700"
    upstreams: tuple[str, ...] = ()
    # The device sessions (DevAddr, NwkSKey, AppSKey) as the cloud exports them: mode 0600, or the service refuses
    # to start. Without it the source only relays to the upstreams and decodes nothing.
    sessions: Path | None = None
    max_batch_datagrams: int = Field(default=256, ge=1, le=4096)
    max_queued_datagrams: int = Field(default=2000, ge=1, le=100_000)

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        return _host_port(value, "bind")

    @field_validator("upstreams")
    @classmethod
    def _upstreams(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_host_port(value, "upstreams") for value in values)


class MqttSection(_Section):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    topic: str = Field(default="", max_length=256)
    client_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.\-]*$")
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    tls: bool = False
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    backoff_base_s: float = Field(default=0.5, gt=0, le=60)
    backoff_cap_s: float = Field(default=30.0, gt=0, le=3600)


class SourcesSection(_Section):
    semtech_udp: SemtechUdpSection | None = None
    chirpstack: MqttSection | None = None
    tts: MqttSection | None = None


class GatewayConfig(_Section):
    """The whole file; `path` is where it came from (relative paths in it are relative to its folder)."""

    path: Path
    gateway: GatewaySection
    cloud: CloudSection
    buffer: BufferSection
    health: HealthSection = HealthSection()
    devices: DevicesSection = DevicesSection()
    sources: SourcesSection = SourcesSection()
    anomaly: AnomalySection = AnomalySection()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def cloud_token(self) -> str:
        """The gateway's bearer token for the cloud (from the 0600 file or the environment)."""
        token = SecretRef(file=self.cloud.token_file, env=self.cloud.token_env).read(self.path, "cloud.token_file")
        assert token is not None  # the model requires one source
        if any(character.isspace() for character in token):
            raise GatewayConfigError(self.path, "cloud.token_file", "the token contains whitespace")
        return token

    def mqtt_password(self, name: Literal["chirpstack", "tts"]) -> str | None:
        section = getattr(self.sources, name)
        if section is None:
            return None
        secret = SecretRef(file=section.password_file, env=section.password_env)
        return secret.read(self.path, f"sources.{name}.password_file")

    def device_sessions(self) -> list[DeviceSession]:
        """The LoRaWAN sessions of `[sources.semtech_udp] sessions` (none when not given); keys never in errors."""
        section = self.sources.semtech_udp
        if section is None or section.sessions is None:
            return []
        try:
            return load_sessions(section.sessions)
        except (SessionConfigError, KeyFileModeError) as error:
            raise GatewayConfigError(self.path, "sources.semtech_udp.sessions", str(error)) from error

    @property
    def frame_counter_path(self) -> Path:
        """Where the last accepted frame counters live: beside the buffer, on the same durable disk."""
        return self.buffer.path.parent / "sessions.sqlite"

    @property
    def anomaly_state_dir(self) -> Path:
        """Where bundles fetched from the cloud are kept: beside the buffer, on the same durable disk."""
        return self.buffer.path.parent / "anomaly-bundles"

    def device_bindings(self) -> dict[str, DeviceBinding]:
        """The sensors this gateway serves, from the bundle file and the inline lists."""
        assets = {asset.id: asset for asset in self.devices.assets}
        devices = list(self.devices.devices)
        if self.devices.bundle is not None:
            bundle_assets, bundle_devices = load_bundle(self.devices.bundle, self.path)
            assets.update({asset.id: asset for asset in bundle_assets})
            devices.extend(bundle_devices)
        bindings: dict[str, DeviceBinding] = {}
        for device in devices:
            asset = assets.get(device.asset)
            if asset is None:
                raise GatewayConfigError(
                    self.path, "devices", f"device {device.dev_eui} watches unknown asset {device.asset!r}"
                )
            bindings[device.dev_eui] = DeviceBinding(device=device, asset=asset)
        return bindings


def load_bundle(path: Path, config_path: Path) -> tuple[list[Asset], list[Device]]:
    """Assets and devices from a bundle JSON (the cloud's export); other keys (e.g. sessions) are left to others."""
    key = "devices.bundle"
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as error:
        raise GatewayConfigError(config_path, key, f"cannot read {path}: {error.strerror}") from error
    if len(raw) > MAX_BUNDLE_BYTES:
        raise GatewayConfigError(config_path, key, f"{path} is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise GatewayConfigError(config_path, key, f"{path} is not JSON ({error})") from error
    if not isinstance(document, dict):
        raise GatewayConfigError(config_path, key, f"{path} is not a JSON object")
    assets, devices = [], []
    for name, model, target in (("assets", Asset, assets), ("devices", Device, devices)):
        items = document.get(name, [])
        if not isinstance(items, list):
            raise GatewayConfigError(config_path, key, f"{path}: {name} is not a list")
        for index, item in enumerate(items):
            try:
                target.append(model.model_validate(item))
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise GatewayConfigError(
                    config_path, key, f"{path}: {name}[{index}].{where}: {first['msg']}"
                ) from error
    return assets, devices


def _resolve_paths(document: dict[str, Any], base: Path) -> None:
    """Relative paths in the file are relative to the file's folder, not to wherever the service started."""
    for section, name in (
        ("cloud", "token_file"),
        ("buffer", "path"),
        ("devices", "bundle"),
        ("anomaly", "bundle"),
    ):
        value = document.get(section, {}).get(name) if isinstance(document.get(section), dict) else None
        if isinstance(value, str) and not Path(value).is_absolute():
            document[section][name] = str(base / value)
    sources = document.get("sources")
    if isinstance(sources, dict):
        for name, key in (("chirpstack", "password_file"), ("tts", "password_file"), ("semtech_udp", "sessions")):
            section = sources.get(name)
            value = section.get(key) if isinstance(section, dict) else None
            if isinstance(value, str) and not Path(value).is_absolute():
                section[key] = str(base / value)


def parse_config(document: Mapping[str, Any], path: Path) -> GatewayConfig:
    """Check a parsed TOML document; raises GatewayConfigError naming the key."""
    document = json.loads(json.dumps(document, default=str))  # a private deep copy we may rewrite
    _resolve_paths(document, path.parent)
    try:
        return GatewayConfig.model_validate({**document, "path": path})
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise GatewayConfigError(path, key, first["msg"]) from error


def load_config(path: Path | str) -> GatewayConfig:
    """Read and check the gateway's TOML configuration file."""
    path = Path(path).resolve()
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise GatewayConfigError(path, "", f"cannot read the configuration file: {error.strerror}") from error
    if len(raw) > MAX_CONFIG_BYTES:
        raise GatewayConfigError(path, "", f"larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise GatewayConfigError(path, "", f"not valid TOML ({error})") from error
    return parse_config(document, path)
