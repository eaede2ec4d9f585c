"""The cloud's settings in one place, read from the environment (prefix `FLURFUNK_CLOUD_`) or given in code."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flurfunk.wire import MAX_COMPRESSED_BYTES


class CloudSettings(BaseSettings):
    """How the cloud app stores data and whom it lets in.

    Tokens are secrets: the app keeps only SHA-256 hashes of gateway tokens in its database and never logs them.
    """

    model_config = SettingsConfigDict(env_prefix="FLURFUNK_CLOUD_", extra="forbid")

    data_dir: Path = Field(default=Path("var/cloud"), description="where the default SQLite files live")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty = SQLite file in data_dir")
    series_url: str = Field(
        default="",
        description="sqlite:///PATH, influx-v1://host:port/db, influx-v2://host:port?org=…&bucket=…; empty: SQLite",
    )
    gateway_tokens: dict[str, str] = Field(default_factory=dict, description="gateway id -> bearer token")
    admin_token: str | None = Field(
        default=None,
        description="bootstrap key: a district admin for all towns (create the first accounts with it); None: off",
    )
    open_read: bool = Field(default=False, description="when True, GET feed endpoints need no token (local demo)")
    session_ttl_hours: float = Field(default=12.0, gt=0, le=24 * 90, description="how long a login token lives")
    device_key: str | None = Field(
        default=None, description="base64 of 32 bytes: the AES-GCM master key for device keys at rest"
    )
    device_key_file: Path | None = Field(
        default=None, description="file holding that key; default <data_dir>/device-keys.key, created if missing"
    )
    auto_migrate: bool = Field(
        default=True, description="create_app upgrades the schema; False: refuse to start unless it is at head"
    )
    max_batch_bytes: int = Field(default=MAX_COMPRESSED_BYTES, gt=0, description="largest compressed batch")
    series_token: str | None = Field(
        default=None, description="API token for an influx-v2:// series_url (InfluxDB 2.x/3.x); never logged"
    )
    ingest_rate_per_s: float = Field(
        default=10.0, gt=0, description="batches per second a gateway may post, sustained (token bucket)"
    )
    ingest_burst: int = Field(default=60, ge=1, description="batches a gateway may post at once before 429s")
    language: Literal["de", "en"] = "de"

    @model_validator(mode="after")
    def _default_urls_under_data_dir(self) -> CloudSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'operational.sqlite'}"
        if not self.series_url:
            self.series_url = f"sqlite:///{self.data_dir / 'series.sqlite'}"
        for gateway_id, token in self.gateway_tokens.items():
            if len(token) < 16:
                raise ValueError(f"gateway {gateway_id}: token is shorter than 16 characters")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("admin_token is shorter than 16 characters")
        return self
