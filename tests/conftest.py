"""Fixtures for tests against the real services: a throwaway influxd, the local Mosquitto and PostgreSQL.

Tests that use them are marked `integration` automatically; `scripts/setup --services` installs and starts them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

# The cloud app and the gateway service as real processes: the `cloud` and `gateway_dir` fixtures live there.
pytest_plugins = ["tests.processes"]

INFLUXD_START_TIMEOUT_S = 30.0
MQTT_HOST = os.environ.get("FLURFUNK_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("FLURFUNK_TEST_MQTT_PORT", "1883"))
# The maintenance database to connect to when creating and dropping the per-session test database.
POSTGRES_ADMIN_URL = os.environ.get("FLURFUNK_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

_SERVICE_FIXTURES = frozenset(
    {"influxd", "influxd_factory", "influxd_with_auth", "mosquitto", "postgres_url", "victoria_metrics"}
)
_SETUP_HINT = "run `scripts/setup --services` (installs and starts influxdb, mosquitto, postgresql)"


def shared_data(name: str) -> Path:
    """A reference file from `shared/data` (vendor vectors and the like): beside the repository, as CI lays it out,
    or where FLURFUNK_SHARED_DATA points; fails the test loudly when neither has it, never skips."""
    beside_repo = Path(__file__).resolve().parents[2] / "shared" / "data"
    directory = beside_repo if beside_repo.is_dir() else Path(os.environ.get("FLURFUNK_SHARED_DATA", beside_repo))
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} not found in {directory} (set FLURFUNK_SHARED_DATA to shared/data)")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class InfluxdServer:
    """A running influxd with its own data directory; `url` is its HTTP API."""

    port: int
    rpc_port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "influxd.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server (idempotent); its data directory stays until `remove`."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def remove(self) -> None:
        self.resume()
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self) -> None:
        """Start the stopped server again on the same ports with the same data, and wait until it answers."""
        self.stop()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.process.args[0], "-config", str(self.directory / "influxd.conf")],  # type: ignore[index]
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if not _wait_for_ping(self):
            pytest.fail(f"influxd did not come back after a restart; log:\n{self.log_tail()}", pytrace=False)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it accepts connections but answers nothing, like an overloaded one."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)


def _wait_for_ping(server: InfluxdServer) -> bool:
    deadline = time.monotonic() + INFLUXD_START_TIMEOUT_S
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            if httpx.get(f"{server.url}/ping", timeout=1.0).status_code == 204:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def _influxd_config(directory: Path, port: int, rpc_port: int, auth_enabled: bool = False) -> str:
    return f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{directory / "meta"}"
  logging-enabled = false

[data]
  dir = "{directory / "data"}"
  wal-dir = "{directory / "wal"}"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  auth-enabled = {"true" if auth_enabled else "false"}

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
"""


def start_influxd(auth_enabled: bool = False) -> InfluxdServer:
    """Start a fresh influxd on free ports and wait until it answers /ping (with `auth_enabled`, HTTP needs users)."""
    binary = shutil.which("influxd")
    if binary is None:
        pytest.fail(f"influxd is not installed (Debian package `influxdb`); {_SETUP_HINT}", pytrace=False)
    last_problem = ""
    # A free port may be taken between probing and binding; a few attempts make that race harmless.
    for _attempt in range(3):
        directory = Path(tempfile.mkdtemp(prefix="flurfunk-influxd-"))
        port, rpc_port = free_port(), free_port()
        config = directory / "influxd.conf"
        config.write_text(_influxd_config(directory, port, rpc_port, auth_enabled))
        with open(directory / "influxd.log", "wb") as log:
            process = subprocess.Popen(
                [binary, "-config", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        server = InfluxdServer(port=port, rpc_port=rpc_port, directory=directory, process=process)
        deadline = time.monotonic() + INFLUXD_START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{server.url}/ping", timeout=1.0).status_code == 204:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        last_problem = (
            f"exited with code {process.returncode}"
            if process.poll() is not None
            else f"did not answer /ping within {INFLUXD_START_TIMEOUT_S:.0f} s"
        )
        last_problem += f"; log:\n{server.log_tail()}"
        server.remove()
    pytest.fail(f"influxd could not be started: {last_problem}", pytrace=False)


@pytest.fixture(scope="session")
def influxd() -> Iterator[InfluxdServer]:
    """One influxd for the whole session (tests use their own database names to stay apart)."""
    server = start_influxd()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def influxd_factory() -> Iterator[Callable[[], InfluxdServer]]:
    """Start extra influxd servers that a test may stop or break; all are removed after the test."""
    started: list[InfluxdServer] = []

    def start() -> InfluxdServer:
        server = start_influxd()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.remove()


INFLUXD_ADMIN = ("flurfunk_admin", "admin-password-0123")


@pytest.fixture(scope="session")
def influxd_with_auth() -> Iterator[InfluxdServer]:
    """An influxd with `auth-enabled = true` and one admin user, `INFLUXD_ADMIN` (user, password)."""
    server = start_influxd(auth_enabled=True)
    try:
        user, password = INFLUXD_ADMIN
        # With no user yet, influxd allows exactly this statement without credentials.
        httpx.post(
            f"{server.url}/query", data={"q": f"CREATE USER {user} WITH PASSWORD '{password}' WITH ALL PRIVILEGES"}
        ).raise_for_status()
        yield server
    finally:
        server.remove()


@dataclass
class VictoriaMetricsServer:
    """A running victoria-metrics (single node) with its own data directory; `url` is its HTTP API."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def victoria_metrics() -> Iterator[VictoriaMetricsServer]:
    """A throwaway victoria-metrics (Debian package `victoria-metrics`): a real server for the InfluxDB v2 write API."""
    binary = shutil.which("victoria-metrics") or shutil.which("victoria-metrics-prod")
    if binary is None:
        pytest.fail(f"victoria-metrics is not installed (Debian package `victoria-metrics`); {_SETUP_HINT}", False)
    directory = Path(tempfile.mkdtemp(prefix="flurfunk-victoria-"))
    port = free_port()
    with open(directory / "victoria-metrics.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"-storageDataPath={directory / 'data'}",
                f"-httpListenAddr=127.0.0.1:{port}",
                "-retentionPeriod=100y",  # the default (1 month) silently drops test points from past years
                "-dedup.minScrapeInterval=1ms",  # one sample per series and time, as InfluxDB's point identity
                "-loggerLevel=WARN",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = VictoriaMetricsServer(port=port, directory=directory, process=process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (directory / "victoria-metrics.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"victoria-metrics did not start; log:\n{log_text}", pytrace=False)
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def serve_app() -> Iterator[Callable[[object], str]]:
    """Serve an ASGI app with uvicorn on a free localhost port (in a thread); returns its base URL."""
    import uvicorn

    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(app: object) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start", pytrace=False)
            time.sleep(0.02)
        running.append((server, thread))
        return f"http://127.0.0.1:{port}"

    try:
        yield serve
    finally:
        for server, thread in running:
            server.should_exit = True
            thread.join(timeout=15)


@dataclass(frozen=True)
class MqttBroker:
    """Where the test broker listens, and a topic prefix that no other test uses."""

    host: str
    port: int
    topic_prefix: str


def _reachable(host: str, port: int, timeout_s: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def _mosquitto_reachable() -> None:
    if not _reachable(MQTT_HOST, MQTT_PORT):
        pytest.fail(f"no MQTT broker listens on {MQTT_HOST}:{MQTT_PORT}; {_SETUP_HINT}", pytrace=False)


@pytest.fixture
def mosquitto(_mosquitto_reachable: None) -> MqttBroker:
    """The local Mosquitto, with a per-test topic prefix like `flurfunk-test/<uuid>/`."""
    return MqttBroker(host=MQTT_HOST, port=MQTT_PORT, topic_prefix=f"flurfunk-test/{uuid.uuid4().hex}/")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, as a SQLAlchemy URL; dropped afterwards."""
    import psycopg
    from psycopg import sql

    database = f"flurfunk_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"cannot connect to PostgreSQL at {POSTGRES_ADMIN_URL}: {error}; {_SETUP_HINT}", pytrace=False)
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    admin_info = psycopg.conninfo.conninfo_to_dict(POSTGRES_ADMIN_URL)
    user = admin_info.get("user", "postgres")
    host = admin_info.get("host", "127.0.0.1")
    port = admin_info.get("port", "5432")
    password = f":{quote(admin_info['password'], safe='')}" if admin_info.get("password") else ""
    try:
        yield f"postgresql+psycopg://{quote(user, safe='')}{password}@{host}:{port}/{database}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            # FORCE ends connections a test's engine may still hold open (PostgreSQL 13+).
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
