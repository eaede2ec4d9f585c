"""Anomaly bundles shipped to gateways: a real gateway process fetches what the real cloud (its own process) assigns,
runs it, reports it, keeps it across a restart with the cloud down, refuses a corrupted download while the old
bundle keeps running; and the gateway's bundle store survives a crash at any step of an install."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest

import decoders
from flurfunk.bundle_archive import pack_bundle, sha256_hex
from flurfunk.contracts import Quantity
from gateway.anomaly_bundles import BundleRefusedError, BundleSource, BundleStore, initial_model
from gateway.config import parse_config
from tests.anomaly_bundle_helpers import packed_test_bundle, write_test_bundle
from tests.conftest import MqttBroker
from tests.processes import GATEWAY_ID, MODEL, Cloud, Gateway, event_time, wait_until, write_gateway_config

ADMIN_TOKEN = "bundle-test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEVICES = [f"24e124713b23{index:04x}" for index in range(4)]
FETCH_LINE = '"GET /api/v1/gateway/anomaly-bundle HTTP/1.1"'


# -- helpers -------------------------------------------------------------------------------------------------------


def start_gateway(directory: Path, cloud: Cloud, mosquitto: MqttBroker) -> Gateway:
    topic = f"{mosquitto.topic_prefix}application/+/device/+/event/up"
    gateway = write_gateway_config(
        directory, cloud.url, devices=DEVICES, chirpstack=(mosquitto.host, mosquitto.port, topic)
    )
    with open(gateway.config_path, "a", encoding="utf-8") as config:
        config.write('[anomaly]\ncheck_interval_s = 0.3\nbackend = "numpy"\n')
    gateway.start()
    gateway.wait_connected()
    return gateway


def model_of(gateway: Gateway) -> dict[str, object]:
    try:
        return dict(gateway.status()["anomaly_model"])  # type: ignore[arg-type]
    except (httpx.TransportError, ValueError, KeyError):
        return {}


def publish_uplinks(mosquitto: MqttBroker, first: int, count: int) -> None:
    """ChirpStack v4 uplink events for the gateway's bins, as an LNS publishes them (QoS 1)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"lns-{uuid.uuid4().hex[:8]}")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        for index in range(first, first + count):
            dev_eui = DEVICES[index % len(DEVICES)]
            f_port, payload = decoders.encode_quantities(MODEL, {Quantity.DISTANCE_M: 0.8, Quantity.BATTERY_PCT: 90})
            body = {
                "time": event_time(index).isoformat(),
                "deviceInfo": {"devEui": dev_eui},
                "fCnt": index,
                "fPort": f_port,
                "data": base64.b64encode(payload).decode(),
                "rxInfo": [{"gatewayId": "0016c001ff10a235", "rssi": -100, "snr": 2.5}],
            }
            topic = f"{mosquitto.topic_prefix}application/app/device/{dev_eui}/event/up"
            client.publish(topic, json.dumps(body), qos=1).wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


def rollout_line(cloud: Cloud) -> dict[str, object]:
    lines = httpx.get(f"{cloud.url}/api/v1/anomaly-rollout", headers=ADMIN, timeout=5).json()
    return next((line for line in lines if line["gateway_id"] == GATEWAY_ID), {})


def fetches(cloud: Cloud, status_code: int) -> int:
    """How often the gateway asked for its bundle and got `status_code` (uvicorn's access log)."""
    log = (cloud.data_dir / "cloud.log").read_text(errors="replace")
    return sum(1 for line in log.splitlines() if FETCH_LINE in line and f" {status_code} " in line)


def publish(cloud: Cloud, archive: bytes) -> dict[str, object]:
    response = httpx.post(f"{cloud.url}/api/v1/anomaly-bundles", content=archive, headers=ADMIN, timeout=30)
    assert response.status_code == 201, response.text
    return dict(response.json())


def assign(cloud: Cloud, version: str) -> None:
    url = f"{cloud.url}/api/v1/gateways/{GATEWAY_ID}/anomaly-bundle"
    response = httpx.put(url, json={"version": version}, headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture
def admin_cloud(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    monkeypatch.setenv("FLURFUNK_CLOUD_ADMIN_TOKEN", ADMIN_TOKEN)  # the cloud process inherits it
    cloud.start()
    return cloud


# -- over real HTTP, real processes --------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_published_bundle_is_fetched_run_reported_and_kept_across_a_restart(
    mosquitto: MqttBroker, admin_cloud: Cloud, gateway_dir: Path, tmp_path: Path
) -> None:
    cloud = admin_cloud
    gateway = start_gateway(gateway_dir, cloud, mosquitto)
    try:
        before = model_of(gateway)
        assert before["source"] == "shipped" and before["version"] != "field-2"
        wait_until(lambda: fetches(cloud, 204) >= 1, 20, "the gateway to ask for its bundle (none assigned yet)")

        # The technician's way: the CLI packs the folder, uploads it and assigns it to this gateway.
        folder = write_test_bundle(tmp_path / "field-2", "field-2", seed=2)
        published = subprocess.run(
            [sys.executable, "-m", "flurfunk.cli", "cloud", "publish-anomaly", str(folder), "--url", cloud.url,
             "--assign-gateway", GATEWAY_ID],
            env={**os.environ, "FLURFUNK_API_TOKEN": ADMIN_TOKEN}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        assert f"sha256 {sha256_hex(pack_bundle(folder))}" in published.stdout
        assert f"assigned to gateway {GATEWAY_ID}" in published.stdout

        wait_until(lambda: model_of(gateway).get("version") == "field-2", 30, "the gateway to run field-2")
        running = model_of(gateway)
        assert running["source"] == "cloud" and running["sha256"] == sha256_hex(pack_bundle(folder))
        assert running["problem"] == ""
        # The version travels with the next batch: the cloud shows what the gateway runs.
        publish_uplinks(mosquitto, 0, 8)
        wait_until(lambda: rollout_line(cloud).get("running_version") == "field-2", 30, "the report of field-2")
        assert rollout_line(cloud)["in_step"] is True
        # Unchanged afterwards: asked again and again, downloaded once.
        asked = fetches(cloud, 304)
        wait_until(lambda: fetches(cloud, 304) >= asked + 3, 20, "three more checks")
        assert fetches(cloud, 200) == 1
        assert len(gateway.log_events("bundle_installed")) == 1
        assert gateway.stop() == 0

        # Restart with the cloud down: the last good bundle comes from the state dir.
        cloud.stop()
        gateway.start()
        wait_until(lambda: model_of(gateway).get("version") == "field-2", 60, "the restarted gateway to run field-2")
        assert model_of(gateway)["source"] == "cloud"
        wait_until(lambda: "unavailable" in str(model_of(gateway).get("problem")), 20, "the failed check to show")
        assert model_of(gateway)["version"] == "field-2"
        assert gateway.stop() == 0
    finally:
        gateway.stop()


@pytest.mark.integration
def test_a_corrupted_bundle_is_refused_and_the_running_one_stays(
    mosquitto: MqttBroker, admin_cloud: Cloud, gateway_dir: Path, tmp_path: Path
) -> None:
    cloud = admin_cloud
    publish(cloud, packed_test_bundle(tmp_path / "good-1", "good-1", seed=1))
    assign(cloud, "good-1")
    # A traversal archive is refused at upload, naming the reason, and nothing is stored.
    hostile = httpx.post(f"{cloud.url}/api/v1/anomaly-bundles", content=traversal_archive(), headers=ADMIN)
    assert hostile.status_code == 422 and "path traversal" in hostile.json()["detail"]
    versions = [b["version"] for b in httpx.get(f"{cloud.url}/api/v1/anomaly-bundles", headers=ADMIN).json()]
    assert versions == ["good-1"]

    gateway = start_gateway(gateway_dir, cloud, mosquitto)
    try:
        wait_until(lambda: model_of(gateway).get("version") == "good-1", 30, "the gateway to run good-1")
        # bad-2 is a good bundle whose stored bytes then rot in the cloud's database: its sha256 no longer fits.
        bad = publish(cloud, packed_test_bundle(tmp_path / "bad-2", "bad-2", seed=2))
        with sqlite3.connect(cloud.data_dir / "operational.sqlite", timeout=10) as db:
            (archive,) = db.execute("SELECT archive FROM anomaly_bundles WHERE version = 'bad-2'").fetchone()
            rotten = bytes(archive[:100]) + bytes(b ^ 0xFF for b in archive[100:110]) + bytes(archive[110:])
            db.execute("UPDATE anomaly_bundles SET archive = ? WHERE version = 'bad-2'", (rotten,))
        assign(cloud, "bad-2")

        wait_until(lambda: gateway.log_events("bundle_refused"), 30, "the gateway to refuse bad-2")
        wait_until(lambda: "checksum" in str(model_of(gateway).get("problem")), 10, "the refusal in the status")
        assert model_of(gateway)["version"] == "good-1"
        assert f"sha256 {bad['sha256']}" in str(model_of(gateway)["problem"])
        # The refused bundle is not downloaded again and again: its sha256 goes into If-None-Match.
        asked = fetches(cloud, 304)
        wait_until(lambda: fetches(cloud, 304) >= asked + 3, 20, "three more checks")
        assert fetches(cloud, 200) == 2  # good-1 once, bad-2 once
        assert model_of(gateway)["version"] == "good-1"
        publish_uplinks(mosquitto, 100, 8)
        wait_until(lambda: rollout_line(cloud).get("running_version") == "good-1", 30, "the report of good-1")
        line = rollout_line(cloud)
        assert line["assigned_version"] == "bad-2" and line["in_step"] is False  # the admin sees it did not take

        # A sound bundle afterwards is taken.
        publish(cloud, packed_test_bundle(tmp_path / "good-3", "good-3", seed=3))
        assign(cloud, "good-3")
        wait_until(lambda: model_of(gateway).get("version") == "good-3", 30, "the gateway to run good-3")
        assert model_of(gateway)["problem"] == ""
        assert gateway.stop() == 0
    finally:
        gateway.stop()


def traversal_archive() -> bytes:
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name in ("bundle.json", "../../../../tmp/flurfunk-evil"):
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"{}"))
    return raw.getvalue()


# -- the gateway's bundle store --------------------------------------------------------------------------------------


def test_install_checks_the_checksum_the_archive_and_the_bundle_and_keeps_the_current_one(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "state", backend="numpy")
    first = packed_test_bundle(tmp_path / "b1", "v-1")
    installed = store.install(first, sha256_hex(first))
    assert installed.scorer.model_version == "v-1" and store.current_sha256() == sha256_hex(first)

    second = packed_test_bundle(tmp_path / "b2", "v-2", seed=2)
    with pytest.raises(BundleRefusedError, match="checksum mismatch"):
        store.install(second, sha256_hex(first))
    folder = write_test_bundle(tmp_path / "b3", "v-3")
    (folder / "soil.npz").write_bytes(b"not weights")
    unloadable = pack_bundle(folder)
    with pytest.raises(BundleRefusedError, match=r"does not load.*soil\.npz"):
        store.install(unloadable, sha256_hex(unloadable))
    with pytest.raises(BundleRefusedError, match="path traversal"):
        store.install(traversal_archive(), sha256_hex(traversal_archive()))
    assert store.current_sha256() == sha256_hex(first)
    loaded = store.load_current()
    assert loaded is not None and loaded.scorer.model_version == "v-1"
    assert sorted(p.name for p in (tmp_path / "state" / "versions").iterdir()) == [sha256_hex(first)]
    assert not list((tmp_path / "state").glob(".incoming-*"))


_CRASH = """
import os, sys
from pathlib import Path
from gateway.anomaly_bundles import BundleStore
from flurfunk.bundle_archive import sha256_hex
state, archive_path, step = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
real = getattr(os, step)
def crash(*args, **kwargs):
    os._exit(9)  # like kill -9 or power loss at this instant: no cleanup runs
setattr(os, step, crash)
archive = archive_path.read_bytes()
BundleStore(state, backend="numpy").install(archive, sha256_hex(archive))
"""


@pytest.mark.parametrize("step", ["fsync", "rename", "replace"])  # while unpacking, before the move, before the switch
def test_a_crash_at_any_step_of_an_install_leaves_the_last_good_bundle(tmp_path: Path, step: str) -> None:
    state = tmp_path / "anomaly-bundles"  # where a gateway with its buffer in tmp_path keeps them
    first = packed_test_bundle(tmp_path / "b1", "v-1")
    BundleStore(state, backend="numpy").install(first, sha256_hex(first))
    second = tmp_path / "second.tar.gz"
    second.write_bytes(packed_test_bundle(tmp_path / "b2", "v-2", seed=2))
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASH, str(state), str(second), step], capture_output=True, timeout=120
    )
    assert crashed.returncode == 9, crashed.stderr.decode()

    config = gateway_config(tmp_path, tmp_path / "buffer.sqlite")
    assert config.anomaly_state_dir == state
    model, problem = initial_model(config)
    assert (model.scorer.model_version, model.source, problem) == ("v-1", BundleSource.CLOUD, "")
    assert not list(state.glob(".incoming-*"))  # the half-done install was cleared away at start
    # and the next install of the same bundle works
    archive = second.read_bytes()
    assert BundleStore(state, backend="numpy").install(archive, sha256_hex(archive)).scorer.model_version == "v-2"


def gateway_config(tmp_path: Path, buffer: Path, **anomaly: object) -> object:
    document = {
        "gateway": {"id": "gw-unit"},
        "cloud": {"url": "http://127.0.0.1:9", "token_env": "UNUSED_TOKEN"},
        "buffer": {"path": str(buffer)},
        "anomaly": {"backend": "numpy", **anomaly},
    }
    return parse_config(document, tmp_path / "gateway.toml")


def test_a_local_bundle_overrides_and_a_broken_one_falls_back_with_a_problem(tmp_path: Path) -> None:
    local = write_test_bundle(tmp_path / "local", "local-7", seed=7)
    config = gateway_config(tmp_path, tmp_path / "buffer.sqlite", bundle="local")
    assert config.anomaly.bundle == local and not config.anomaly.fetches  # relative to the config file
    model, problem = initial_model(config)
    assert (model.scorer.model_version, model.source, problem) == ("local-7", BundleSource.LOCAL, "")

    (local / "bundle.json").write_text("{")
    model, problem = initial_model(config)
    assert model.source is BundleSource.SHIPPED and "anomaly.bundle" in problem and "not JSON" in problem
    with pytest.raises(Exception, match="not both"):
        gateway_config(tmp_path, tmp_path / "buffer.sqlite", bundle="local", fetch=True)


def test_without_a_fetched_bundle_the_shipped_one_runs(tmp_path: Path) -> None:
    config = gateway_config(tmp_path, tmp_path / "buffer.sqlite")
    assert config.anomaly.fetches
    model, problem = initial_model(config)
    assert model.source is BundleSource.SHIPPED and problem == "" and model.sha256 is None
    assert (tmp_path / "anomaly-bundles" / "versions").is_dir()
