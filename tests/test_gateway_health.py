"""Gateway health: the Semtech UDP source's counters and forwarders in /healthz, /metrics and the status text; the
`[sources.semtech_udp]` configuration with its session bundle (mode 0600)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flurfunk.contracts import Device
from gateway.config import GatewayConfigError, load_config, parse_config
from gateway.health import GatewayMetrics, format_status, prometheus_text
from gateway.lorawan import FrameOpener, SessionStore, write_sessions
from gateway.simulator import ForwarderSimulator, simulated_sessions
from gateway.sources.semtech_udp import SemtechUdpConfig, SemtechUdpSource, semtech_udp_view

NOW = datetime(2026, 7, 6, 12, 0, tzinfo=UTC)
EUI = "b827ebfffe6a1f0c"


def udp_view(last_push_at: float, stat: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "datagrams": 12,
        "push_data": 10,
        "pull_data": 2,
        "tx_ack": 0,
        "rxpk": 40,
        "uplinks": 37,
        "push_acks": 10,
        "pull_acks": 2,
        "forwarded_upstream": 12,
        "relayed_to_forwarder": 0,
        "upstream_push_acks_dropped": 0,
        "queued": 0,
        "dropped": {"mic_mismatch": 2, "bad_json": 1},
        "ignored": {"not_data_uplink": 1},
        "listening": "127.0.0.1:1700",
        "forwarders": [
            {
                "gateway_eui": EUI,
                "push_data": 10,
                "rxpk": 40,
                "last_push_at": last_push_at,
                "last_pull_at": None,
                "stat_at": last_push_at,
                "stat": stat,
            }
        ],
    }


def test_udp_refusals_join_the_dropped_counts_and_forwarder_stats_become_gauges() -> None:
    metrics = GatewayMetrics(gateway_id="gw-1", started_at=NOW.timestamp() - 60)
    metrics.dropped["unknown_device"] = 1
    metrics.semtech_udp = udp_view(NOW.timestamp() - 5, {"rx_received": 41, "rx_crc_ok": 40, "ack_ratio_pct": 100.0})
    snapshot = metrics.snapshot(None, now=NOW)
    assert snapshot["dropped"] == {"unknown_device": 1, "mic_mismatch": 2, "bad_json": 1}
    assert snapshot["received"] == {"semtech_udp": 40}
    assert snapshot["status"] == "ok"
    assert snapshot["semtech_udp"]["forwarders"][0]["last_push_age_s"] == 5.0
    text = prometheus_text(snapshot)
    assert 'flurfunk_gateway_uplinks_dropped_total{gateway="gw-1",reason="mic_mismatch"} 2.0' in text
    assert f'flurfunk_gateway_forwarder_rx_packets{{gateway="gw-1",forwarder="{EUI}"}} 41.0' in text
    assert f'flurfunk_gateway_forwarder_last_seen_seconds{{gateway="gw-1",forwarder="{EUI}"}} 5.0' in text
    assert 'flurfunk_gateway_semtech_udp_datagrams_total{gateway="gw-1",type="push_data"} 10.0' in text
    status = format_status(snapshot, "de")
    assert "Paketweiterleiter (UDP 127.0.0.1:1700): 40 Funkpakete" in status
    assert f"Weiterleiter {EUI}: zuletzt vor 5 s gehört, letzte Statistik: 41 empfangen" in status


def test_a_forwarder_silent_for_five_minutes_degrades_the_status() -> None:
    metrics = GatewayMetrics(gateway_id="gw-1", started_at=NOW.timestamp() - 3600)
    metrics.semtech_udp = udp_view(NOW.timestamp() - 301)
    snapshot = metrics.snapshot(None, now=NOW)
    assert snapshot["status"] == "degraded" and snapshot["problems"] == [f"forwarder_silent:{EUI}"]
    assert f"Paketweiterleiter {EUI} meldet sich seit über 5 Minuten nicht" in format_status(snapshot, "de")
    assert f"Packet forwarder {EUI} has been silent" in format_status(snapshot, "en")


def test_the_view_of_a_running_source_is_plain_data(tmp_path: Path) -> None:
    async def main() -> dict[str, object]:
        with SessionStore(tmp_path / "sessions.sqlite", []) as store:

            async def nothing(uplinks: object) -> None:
                return None

            config = SemtechUdpConfig(host="127.0.0.1", port=0)
            async with (
                SemtechUdpSource(config, FrameOpener(store), nothing) as source,
                ForwarderSimulator(source.address, EUI, {}) as forwarder,
            ):
                assert await forwarder.send_stat(rxnb=7, rxok=6)
                return semtech_udp_view(source)

    view = asyncio.run(main())
    assert view["push_data"] == 1 and view["push_acks"] == 1
    (forwarder,) = view["forwarders"]  # type: ignore[misc]
    assert forwarder["gateway_eui"] == EUI and forwarder["stat"] == {
        "time": forwarder["stat"]["time"],
        "rx_received": 7,
        "rx_crc_ok": 6,
        "rx_forwarded": 0,
        "ack_ratio_pct": 100.0,
    }
    assert isinstance(forwarder["last_push_at"], float)


def config_document(sessions: str | None) -> dict[str, object]:
    udp: dict[str, object] = {"bind": "127.0.0.1:1700", "upstreams": ["127.0.0.1:1701"]}
    if sessions is not None:
        udp["sessions"] = sessions
    return {
        "gateway": {"id": "gw-1"},
        "cloud": {"url": "http://127.0.0.1:8000", "token_env": "FLURFUNK_TOKEN"},
        "buffer": {"path": "data/buffer.sqlite"},
        "sources": {"semtech_udp": udp},
    }


def test_session_bundle_path_is_relative_to_the_config_and_must_be_0600(tmp_path: Path) -> None:
    device = Device(dev_eui="24e124713b220000", model_id="milesight-iot/em310-udl", asset="bin-0", report_interval_s=60)
    write_sessions(tmp_path / "sessions.json", simulated_sessions([device], seed=1).values())
    config = parse_config(config_document("sessions.json"), tmp_path / "gateway.toml")
    assert config.sources.semtech_udp is not None
    assert config.sources.semtech_udp.sessions == tmp_path / "sessions.json"
    assert [s.dev_eui for s in config.device_sessions()] == [device.dev_eui]
    assert config.frame_counter_path == tmp_path / "data" / "sessions.sqlite"  # beside the buffer

    (tmp_path / "sessions.json").chmod(0o640)
    with pytest.raises(GatewayConfigError, match=r"sources\.semtech_udp\.sessions: .*chmod 600"):
        config.device_sessions()


def test_without_a_session_bundle_the_source_only_relays(tmp_path: Path) -> None:
    config = parse_config(config_document(None), tmp_path / "gateway.toml")
    assert config.device_sessions() == []


def test_the_status_names_the_anomaly_model_and_a_refused_assignment() -> None:
    snapshot = GatewayMetrics(gateway_id="gw-1", started_at=NOW.timestamp() - 60).snapshot(None, now=NOW)
    snapshot["anomaly_model"] = {"version": "sim3-s1-d16", "source": "cloud", "sha256": "ab", "problem": None}
    assert "Anomaliemodell: sim3-s1-d16 (von der Cloud zugewiesen)" in format_status(snapshot, "de")
    assert "Anomaly model: sim3-s1-d16 (assigned by the cloud)" in format_status(snapshot, "en")
    snapshot["anomaly_model"]["problem"] = "sha256 mismatch"
    assert "! Zugewiesenes Anomaliemodell abgelehnt: sha256 mismatch" in format_status(snapshot, "de")


def test_the_example_configuration_loads_and_its_commented_anomaly_section_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "deploy" / "gateway" / "gateway.example.toml"
    assert load_config(example).anomaly.fetches
    uncommented = example.read_text(encoding="utf-8").replace("# [anomaly]", "[anomaly]")
    uncommented = uncommented.replace('# bundle = "/var', 'bundle = "/var').replace("# backend", "backend")
    copy = tmp_path / "gateway.toml"
    copy.write_text(uncommented, encoding="utf-8")
    section = load_config(copy).anomaly
    assert section.bundle == Path("/var/lib/flurfunk/anomaly/local-bundle") and not section.fetches
