"""The cloud's settings in one place, read from the environment (prefix `FLURFUNK_CLOUD_`) or given in code."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
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
    # alerts (cloud/alerts; README "Alerts")
    alerts_enabled: bool = Field(default=False, description="run the alert loop (rules and deliveries) in the app")
    alerts_interval_s: float = Field(default=60.0, gt=0, description="seconds between alert rounds")
    alerts_config_dir: Path | None = Field(default=None, description="<town-slug>.toml files; default rules otherwise")
    alerts_mqtt_host: str | None = Field(default=None, description="broker for the crews' alert topics; None: off")
    alerts_mqtt_port: int = Field(default=1883, gt=0, lt=65536)
    alerts_mqtt_username: str | None = None
    alerts_mqtt_password: str | None = None
    alerts_mqtt_topic_prefix: str = Field(default="flurfunk", description="<prefix>/<town-slug>/crew/<crew>/alerts")
    alerts_smtp_host: str | None = Field(default=None, description="SMTP server for alert e-mail; None: off")
    alerts_smtp_port: int = Field(default=25, gt=0, lt=65536)
    alerts_smtp_sender: str = "flurfunk@localhost"
    alerts_smtp_username: str | None = None
    alerts_smtp_password: str | None = None
    alerts_smtp_starttls: bool = False
    scheduler_enabled: bool = Field(
        default=False,
        description="run the daily plan and intraday replans in this process (APScheduler); one replica only",
    )
    plan_time: str = Field(
        default="05:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="daily plan, Europe/Berlin, HH:MM"
    )
    plan_times: dict[str, str] = Field(
        default_factory=dict, description="municipality -> HH:MM, overriding plan_time for that town"
    )
    replan_every_minutes: int = Field(
        default=120, ge=0, le=24 * 60, description="intraday replans during the working day (06-15); 0: none"
    )
    scheduler_lock: Literal["auto", "none"] = Field(
        default="auto", description="auto: on PostgreSQL only the holder of an advisory lock runs the jobs"
    )
    cost_centres: dict[str, str] = Field(
        default_factory=dict, description='cost centre per "Town/kind", "kind" or "Town" for the CSV work orders'
    )
    town_planning_file: Path | None = Field(
        default=Path(__file__).parent / "scheduler" / "towns.toml",
        description="the towns' fleets and calendars (TOML, README 'Plan a day'); default: the file shipped for the "
        "six towns; empty: plan with one unlimited vehicle per town and kind and no holidays",
    )

    @field_validator("town_planning_file", mode="before")
    @classmethod
    def _empty_planning_file_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    tile_url: str = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        max_length=500,
        description="map tiles for the crew page; empty: no tiles (the route still shows)",
    )

    @model_validator(mode="after")
    def _default_urls_under_data_dir(self) -> CloudSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'operational.sqlite'}"
        if not self.series_url:
            self.series_url = f"sqlite:///{self.data_dir / 'series.sqlite'}"
        for gateway_id, token in self.gateway_tokens.items():
            if len(token) < 16:
                raise ValueError(f"gateway {gateway_id}: token is shorter than 16 characters")
        for town, moment in self.plan_times.items():
            if len(moment) != 5 or moment[2] != ":" or not (moment[:2] + moment[3:]).isdigit():
                raise ValueError(f"plan_times[{town!r}]: {moment!r} is not HH:MM")
            if int(moment[:2]) > 23 or int(moment[3:]) > 59:
                raise ValueError(f"plan_times[{town!r}]: {moment!r} is not a time of day")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("admin_token is shorter than 16 characters")
        return self
