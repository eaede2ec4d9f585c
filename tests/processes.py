"""The cloud app and the gateway service as real processes, for the integration tests that run them.

Registered as a pytest plugin in tests/conftest.py, so `cloud` and `gateway_dir` are fixtures for every module;
the classes and helpers are imported from here.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.simulator import simulated_bin_assets
from tests.conftest import free_port

__all__ = [
    "BASE_TIME",
    "GATEWAY_ID",
    "MODEL",
    "TOKEN",
    "Cloud",
    "Gateway",
    "cloud",
    "distance_of",
    "event_time",
    "gateway_dir",
    "wait_until",
    "write_gateway_config",
]

GATEWAY_ID = "gw-test"
TOKEN = "gateway-token-0123456789abcdef"
MODEL = "milesight-iot/em310-udl"
PYTHON = sys.executable


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


# -- the cloud in its own process --------------------------------------------------------------------------------


@dataclass
class Cloud:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "FLURFUNK_CLOUD_DATA_DIR": str(self.data_dir),
            "FLURFUNK_CLOUD_GATEWAY_TOKENS": json.dumps({GATEWAY_ID: TOKEN}),
        }
        log = open(self.data_dir / "cloud.log", "ab")  # noqa: SIM115 - the child keeps writing to it
        self.process = subprocess.Popen(
            [PYTHON, "-m", "flurfunk.cli", "cloud", "serve", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, (self.data_dir / "cloud.log").read_text()
            try:
                httpx.get(self.url + "/api/v1/meta", timeout=0.5)
                return True
            except httpx.TransportError:
                return False

        wait_until(answers, 30, "the cloud app to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def points(self, quantity: str = "distance_m") -> list[tuple[str, int, float]]:
        path = self.data_dir / "series.sqlite"
        if not path.exists():
            return []
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            try:
                rows = db.execute(
                    "SELECT device, time_us, value FROM points WHERE quantity = ?", (quantity,)
                ).fetchall()
            except sqlite3.OperationalError:
                return []
        return [(str(device), int(time_us), float(value)) for device, time_us, value in rows]


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    """A cloud app on a free port with its data in `tmp_path/cloud`; the test starts it, teardown stops it."""
    directory = tmp_path / "cloud"
    directory.mkdir()
    server = Cloud(port=free_port(), data_dir=directory)
    try:
        yield server
    finally:
        server.stop()


# -- the gateway process -----------------------------------------------------------------------------------------


@dataclass
class Gateway:
    config_path: Path
    health_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        self.process = subprocess.Popen(
            [PYTHON, "-m", "flurfunk.cli", "gateway", "run", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def status(self) -> dict[str, object]:
        return dict(httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2).json())

    def wait_connected(self, timeout_s: float = 60) -> None:
        def connected() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                sources = self.status()["sources"]
            except (httpx.TransportError, ValueError):
                return False
            return bool(sources) and all(sources.values())  # type: ignore[union-attr]

        wait_until(connected, timeout_s, "the gateway's sources to connect")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def log_events(self, event: str) -> list[dict[str, object]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == event:
                    lines.append(record)
        return lines


def write_gateway_config(
    directory: Path,
    cloud_url: str,
    *,
    devices: list[str],
    chirpstack: tuple[str, int, str] | None = None,
    tts: tuple[str, int, str] | None = None,
    semtech_udp: tuple[int, tuple[int, ...], Path] | None = None,
    sync_interval_s: float = 0.5,
) -> Gateway:
    """A gateway for `devices` (bins); `semtech_udp` is (listen port, upstream ports, session bundle file)."""
    (directory / "token").write_text(TOKEN)
    (directory / "token").chmod(0o600)
    assets = simulated_bin_assets(len(devices))
    devices = [
        {"dev_eui": dev_eui, "model_id": MODEL, "asset": f"bin-{index}", "report_interval_s": 600}
        for index, dev_eui in enumerate(devices)
    ]
    (directory / "bundle.json").write_text(json.dumps({"assets": assets, "devices": devices}))
    health_port = free_port()
    lines = [
        "[gateway]",
        f'id = "{GATEWAY_ID}"',
        "[cloud]",
        f'url = "{cloud_url}"',
        'token_file = "token"',
        f"sync_interval_s = {sync_interval_s}",
        "backoff_base_s = 0.2",
        "backoff_cap_s = 1.0",
        "[buffer]",
        'path = "buffer.sqlite"',
        "quota_mb = 64",
        "[health]",
        f'bind = "127.0.0.1:{health_port}"',
        "[devices]",
        'bundle = "bundle.json"',
    ]
    client_suffix = uuid.uuid4().hex[:8]
    for name, where in (("chirpstack", chirpstack), ("tts", tts)):
        if where is not None:
            host, port, topic = where
            lines += [
                f"[sources.{name}]",
                f'host = "{host}"',
                f"port = {port}",
                f'topic = "{topic}"',
                f'client_id = "gw-test-{name}-{client_suffix}"',
                "backoff_base_s = 0.1",
                "backoff_cap_s = 0.5",
            ]
    if semtech_udp is not None:
        port, upstream_ports, sessions = semtech_udp
        upstreams = ", ".join(f'"127.0.0.1:{upstream}"' for upstream in upstream_ports)
        lines += [
            "[sources.semtech_udp]",
            f'bind = "127.0.0.1:{port}"',
            f"upstreams = [{upstreams}]",
            f'sessions = "{sessions}"',
        ]
    config_path = directory / "gateway.toml"
    config_path.write_text("\n".join(lines) + "\n")
    return Gateway(config_path=config_path, health_port=health_port, log_path=directory / "gateway.log")


@pytest.fixture
def gateway_dir(tmp_path: Path) -> Path:
    """An empty directory for a gateway's config, token, bundle, buffer and log (see `write_gateway_config`)."""
    directory = tmp_path / "gateway"
    directory.mkdir()
    return directory


# -- what the sensors measure and when ---------------------------------------------------------------------------

BASE_TIME = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


def distance_of(index: int) -> float:
    return round(0.3 + (index % 100) / 100, 2)


def event_time(index: int) -> datetime:
    return BASE_TIME + timedelta(milliseconds=index)
