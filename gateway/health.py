"""The gateway's local health: counters and gauges, Prometheus text for `/metrics`, JSON for `/healthz`.

A tiny asyncio HTTP server (GET only, small requests, localhost by default) so the Pi needs no web framework.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flurfunk.contracts import utc_now
from flurfunk.i18n import Language, text
from gateway.buffer import BufferStats

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8 * 1024
REQUEST_TIMEOUT_S = 5.0
# Health says "degraded" when the oldest unsynced reading has waited this long (the backhaul is likely down).
STALE_SYNC_S = 3600.0
# ... and when a packet forwarder it heard before is silent this long (its `stat` comes every 30 s by default).
SILENT_FORWARDER_S = 300.0


@dataclass
class GatewayMetrics:
    """What the service counts while it runs; the buffer's gauges are read fresh at each snapshot."""

    gateway_id: str
    started_at: float = field(default_factory=time.time)
    received: Counter[str] = field(default_factory=Counter)  # by source
    decoded: int = 0  # uplinks that became readings in the buffer
    duplicates: int = 0
    readings_buffered: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # by reason, sources' refusals included
    sync_outcomes: Counter[str] = field(default_factory=Counter)
    readings_synced: int = 0
    last_ack_at: float | None = None
    last_sync_problem: str = ""
    sources_connected: dict[str, bool] = field(default_factory=dict)
    # The Semtech UDP source's counters and forwarders as plain data (see `semtech_udp_view`), refreshed by the
    # service on its event loop, so the snapshot (built in a worker thread) never reads the source's live state.
    semtech_udp: dict[str, Any] | None = None
    stopping: bool = False
    fatal: str = ""

    def snapshot(self, stats: BufferStats | None, now: datetime | None = None) -> dict[str, Any]:
        """Everything `/healthz`, `/metrics` and `flurfunk gateway status` show, as plain JSON-ready data."""
        now = now or utc_now()
        wall = now.timestamp()
        oldest_age = stats.oldest_unsynced_age_s(now) if stats else 0.0
        # Sync lag: how long the cloud has not acknowledged anything while something waits (0 when all is synced).
        waiting = bool(stats and stats.entries)
        since = self.last_ack_at if self.last_ack_at is not None else self.started_at
        sync_lag = max(0.0, wall - since) if waiting else 0.0
        problems = []
        if self.fatal:
            problems.append("fatal")
        if self.sync_outcomes.get("unauthorized") and self.last_sync_problem.startswith("unauthorized"):
            problems.append("token_refused")
        if stats and stats.bytes >= 0.9 * stats.quota_bytes:
            problems.append("buffer_nearly_full")
        if self.dropped.get("buffer_full"):
            problems.append("buffer_full")
        if oldest_age > STALE_SYNC_S:
            problems.append("sync_stale")
        for name, connected in sorted(self.sources_connected.items()):
            if not connected:
                problems.append(f"source_disconnected:{name}")
        received = dict(self.received)
        dropped = Counter(self.dropped)
        udp = self._semtech_udp_snapshot(wall)
        if udp is not None:
            received["semtech_udp"] = udp["rxpk"]
            dropped.update(udp["dropped"])  # the source's refusals by reason (bad datagrams, MIC, FCnt, ...)
            problems += [f"forwarder_silent:{f['gateway_eui']}" for f in udp["forwarders"] if f["silent"]]
        return {
            "gateway_id": self.gateway_id,
            "status": "failed" if self.fatal else ("degraded" if problems else "ok"),
            "problems": problems,
            "fatal": self.fatal,
            "uptime_s": round(max(0.0, wall - self.started_at), 1),
            "received": received,
            "decoded": self.decoded,
            "duplicates": self.duplicates,
            "readings_buffered_total": self.readings_buffered,
            "dropped": dict(dropped),
            "buffer": {
                "entries": stats.entries if stats else 0,
                "readings": stats.readings if stats else 0,
                "bytes": stats.bytes if stats else 0,
                "quota_bytes": stats.quota_bytes if stats else 0,
                "quarantined": stats.quarantined if stats else 0,
            },
            "oldest_unsynced_s": round(oldest_age, 3),
            "sync_lag_s": round(sync_lag, 3),
            "sync": dict(self.sync_outcomes),
            "readings_synced": self.readings_synced,
            "last_ack_age_s": round(wall - self.last_ack_at, 1) if self.last_ack_at is not None else None,
            "last_sync_problem": self.last_sync_problem,
            "sources": dict(self.sources_connected),
            **({"semtech_udp": udp} if udp is not None else {}),
        }

    def _semtech_udp_snapshot(self, wall: float) -> dict[str, Any] | None:
        if self.semtech_udp is None:
            return None
        view = dict(self.semtech_udp)
        forwarders = []
        for forwarder in view.get("forwarders", []):
            entry = dict(forwarder)
            for name in ("last_push", "last_pull", "stat"):
                at = entry.pop(f"{name}_at", None)
                entry[f"{name}_age_s"] = round(max(0.0, wall - at), 1) if at is not None else None
            heard = [age for age in (entry["last_push_age_s"], entry["last_pull_age_s"]) if age is not None]
            entry["silent"] = bool(heard) and min(heard) > SILENT_FORWARDER_S
            forwarders.append(entry)
        view["forwarders"] = forwarders
        return view


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(snapshot: dict[str, Any]) -> str:
    """The snapshot in the Prometheus text exposition format (version 0.0.4)."""
    gateway = _label(snapshot["gateway_id"])
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP flurfunk_gateway_{name} {help_text}")
        lines.append(f"# TYPE flurfunk_gateway_{name} {kind}")
        for labels, value in samples:
            all_labels = {"gateway": gateway, **{k: _label(v) for k, v in labels.items()}}
            rendered = ",".join(f'{k}="{v}"' for k, v in all_labels.items())
            lines.append(f"flurfunk_gateway_{name}{{{rendered}}} {float(value)!r}")

    metric(
        "uplinks_received_total",
        "counter",
        "Uplinks (or LNS events) received, by source.",
        [({"source": source}, count) for source, count in sorted(snapshot["received"].items())],
    )
    metric(
        "uplinks_decoded_total", "counter", "Uplinks decoded into readings in the buffer.", [({}, snapshot["decoded"])]
    )
    metric("uplinks_duplicate_total", "counter", "Uplinks heard more than once.", [({}, snapshot["duplicates"])])
    metric(
        "uplinks_dropped_total",
        "counter",
        "Uplinks or events dropped, by reason.",
        [({"reason": reason}, count) for reason, count in sorted(snapshot["dropped"].items())],
    )
    metric(
        "readings_buffered_total",
        "counter",
        "Readings written to the buffer.",
        [({}, snapshot["readings_buffered_total"])],
    )
    metric("buffered_readings", "gauge", "Readings waiting for the cloud.", [({}, snapshot["buffer"]["readings"])])
    metric("buffered_entries", "gauge", "Buffer entries waiting for the cloud.", [({}, snapshot["buffer"]["entries"])])
    metric(
        "buffer_bytes",
        "gauge",
        "Bytes held in the buffer (counted against the quota).",
        [({}, snapshot["buffer"]["bytes"])],
    )
    metric("buffer_quota_bytes", "gauge", "The buffer's disk quota.", [({}, snapshot["buffer"]["quota_bytes"])])
    metric(
        "quarantined_entries",
        "gauge",
        "Entries the cloud refused, kept for a person.",
        [({}, snapshot["buffer"]["quarantined"])],
    )
    metric(
        "oldest_unsynced_seconds",
        "gauge",
        "Age of the oldest reading not yet in the cloud.",
        [({}, snapshot["oldest_unsynced_s"])],
    )
    metric(
        "sync_lag_seconds",
        "gauge",
        "Seconds without a cloud acknowledgement while data waits.",
        [({}, snapshot["sync_lag_s"])],
    )
    metric(
        "sync_attempts_total",
        "counter",
        "Sync attempts, by outcome.",
        [({"outcome": outcome}, count) for outcome, count in sorted(snapshot["sync"].items())],
    )
    metric("readings_synced_total", "counter", "Readings the cloud acknowledged.", [({}, snapshot["readings_synced"])])
    metric(
        "source_connected",
        "gauge",
        "1 while a source is connected to its broker or socket.",
        [({"source": name}, 1.0 if up else 0.0) for name, up in sorted(snapshot["sources"].items())],
    )
    udp = snapshot.get("semtech_udp")
    if udp is not None:
        _semtech_udp_metrics(udp, metric)
    metric("healthy", "gauge", "1 when the status is ok.", [({}, 1.0 if snapshot["status"] == "ok" else 0.0)])
    return "\n".join(lines) + "\n"


_FORWARDER_STAT_GAUGES = (
    ("rx_received", "forwarder_rx_packets", "Packets the concentrator received in its last stat interval (rxnb)."),
    ("rx_crc_ok", "forwarder_rx_crc_ok_packets", "Packets with a good CRC in its last stat interval (rxok)."),
    ("rx_forwarded", "forwarder_rx_forwarded_packets", "Packets it forwarded in its last stat interval (rxfw)."),
    ("ack_ratio_pct", "forwarder_ack_ratio_percent", "Share of its PUSH_DATA acknowledged, as it reports (ackr)."),
    ("downlinks_received", "forwarder_downlinks_received", "Downlinks it received in its last stat interval (dwnb)."),
    ("packets_emitted", "forwarder_packets_emitted", "Packets it emitted in its last stat interval (txnb)."),
)


def _semtech_udp_metrics(
    udp: dict[str, Any], metric: Callable[[str, str, str, list[tuple[dict[str, str], float]]], None]
) -> None:
    metric(
        "semtech_udp_datagrams_total",
        "counter",
        "GWMP datagrams from packet forwarders, by type.",
        [({"type": kind}, udp[kind]) for kind in ("push_data", "pull_data", "tx_ack")],
    )
    metric("semtech_udp_rxpk_total", "counter", "Radio packets (rxpk) received.", [({}, udp["rxpk"])])
    metric("semtech_udp_uplinks_total", "counter", "Uplinks opened and made durable.", [({}, udp["uplinks"])])
    metric(
        "semtech_udp_push_acks_total",
        "counter",
        "PUSH_ACKs sent (each after the data was durable).",
        [({}, udp["push_acks"])],
    )
    metric(
        "semtech_udp_forwarded_upstream_total",
        "counter",
        "Datagrams relayed to upstream network servers.",
        [({}, udp["forwarded_upstream"])],
    )
    metric(
        "semtech_udp_relayed_to_forwarder_total",
        "counter",
        "Upstream replies (PULL_ACK, PULL_RESP) relayed to forwarders.",
        [({}, udp["relayed_to_forwarder"])],
    )
    metric("semtech_udp_queued_datagrams", "gauge", "PUSH_DATA waiting to be stored.", [({}, udp["queued"])])
    metric(
        "semtech_udp_ignored_total",
        "counter",
        "Frames that are fine but carry no uplink (joins, repeats, MAC only), by reason.",
        [({"reason": reason}, count) for reason, count in sorted(udp["ignored"].items())],
    )
    forwarders = udp["forwarders"]
    metric(
        "forwarder_last_seen_seconds",
        "gauge",
        "Seconds since a packet forwarder was last heard, by gateway EUI.",
        [
            (
                {"forwarder": f["gateway_eui"]},
                min(a for a in (f["last_push_age_s"], f["last_pull_age_s"]) if a is not None),
            )
            for f in forwarders
            if f["last_push_age_s"] is not None or f["last_pull_age_s"] is not None
        ],
    )
    for key, name, help_text in _FORWARDER_STAT_GAUGES:
        samples = [
            ({"forwarder": f["gateway_eui"]}, f["stat"][key])
            for f in forwarders
            if f.get("stat") and f["stat"].get(key) is not None
        ]
        metric(name, "gauge", help_text, samples)


class HealthServer:
    """Serves `GET /healthz` (JSON; 503 when the service failed) and `GET /metrics` (Prometheus text)."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], host: str, port: int) -> None:
        self._snapshot = snapshot
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=MAX_REQUEST_BYTES)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("health endpoint on http://%s:%d/healthz", self.host, self.port, extra={"event": "health_listening"})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            target = rest.split(" ", 1)[0].split("?", 1)[0]
            status, content_type, body = await asyncio.to_thread(self._respond, method, target)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, ValueError):
            status, content_type, body = 400, "text/plain; charset=utf-8", b"bad request\n"
        try:
            reason = {
                200: "OK",
                400: "Bad Request",
                404: "Not Found",
                405: "Method Not Allowed",
                503: "Service Unavailable",
            }
            writer.write(
                f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _respond(self, method: str, target: str) -> tuple[int, str, bytes]:
        if method != "GET":
            return 405, "text/plain; charset=utf-8", b"only GET\n"
        if target in ("/healthz", "/status"):
            snapshot = self._snapshot()
            status = 503 if snapshot["status"] == "failed" else 200
            return status, "application/json", json.dumps(snapshot, ensure_ascii=False).encode()
        if target == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", prometheus_text(self._snapshot()).encode()
        return 404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n"


def format_status(snapshot: dict[str, Any], language: Language = "de") -> str:
    """The snapshot as a few plain lines for the technician (German by default)."""

    def counts(values: dict[str, Any]) -> str:
        if not values:
            return text("gateway.status.none", language)
        return ", ".join(f"{name} {count}" for name, count in sorted(values.items()))

    buffer = snapshot.get("buffer", {})
    lines = [
        text(
            "gateway.status.title",
            language,
            gateway=snapshot.get("gateway_id", "?"),
            status=text(f"gateway.status.{snapshot.get('status', 'failed')}", language),
        ),
        text("gateway.status.uptime", language, hours=float(snapshot.get("uptime_s", 0)) / 3600),
        text("gateway.status.received", language, counts=counts(snapshot.get("received", {}))),
        text(
            "gateway.status.decoded",
            language,
            decoded=snapshot.get("decoded", 0),
            readings=snapshot.get("readings_buffered_total", 0),
            duplicates=snapshot.get("duplicates", 0),
        ),
        text("gateway.status.dropped", language, counts=counts(snapshot.get("dropped", {}))),
        text(
            "gateway.status.buffer",
            language,
            readings=buffer.get("readings", 0),
            used_mb=buffer.get("bytes", 0) / 1024 / 1024,
            quota_mb=buffer.get("quota_bytes", 0) / 1024 / 1024,
            quarantined=buffer.get("quarantined", 0),
        ),
        text(
            "gateway.status.sync",
            language,
            oldest_s=float(snapshot.get("oldest_unsynced_s", 0)),
            lag_s=float(snapshot.get("sync_lag_s", 0)),
            synced=snapshot.get("readings_synced", 0),
        ),
    ]
    sources = snapshot.get("sources", {})
    if sources:
        states = ", ".join(
            f"{name} {text('gateway.status.connected' if up else 'gateway.status.disconnected', language)}"
            for name, up in sorted(sources.items())
        )
        lines.append(text("gateway.status.sources", language, sources=states))
    udp = snapshot.get("semtech_udp")
    if udp is not None:
        lines.append(
            text(
                "gateway.status.semtech_udp",
                language,
                listening=udp.get("listening", "?"),
                rxpk=udp.get("rxpk", 0),
                uplinks=udp.get("uplinks", 0),
                push_acks=udp.get("push_acks", 0),
                upstream=udp.get("forwarded_upstream", 0),
            )
        )
        for forwarder in udp.get("forwarders", []):
            stat = forwarder.get("stat") or {}
            ages = [a for a in (forwarder.get("last_push_age_s"), forwarder.get("last_pull_age_s")) if a is not None]
            lines.append(
                text(
                    "gateway.status.forwarder",
                    language,
                    eui=forwarder.get("gateway_eui", "?"),
                    age_s=min(ages) if ages else float("nan"),
                    rxnb=stat.get("rx_received", "?"),
                    rxok=stat.get("rx_crc_ok", "?"),
                    ackr=stat.get("ack_ratio_pct", "?"),
                )
            )
    model = snapshot.get("anomaly_model")
    if model is not None:
        source = text(f"gateway.status.model_source.{model.get('source', 'shipped')}", language)
        lines.append(text("gateway.status.anomaly_model", language, version=model.get("version", "?"), source=source))
        if model.get("problem"):
            lines.append("! " + text("gateway.status.model_problem", language, detail=model["problem"]))
    if snapshot.get("last_sync_problem"):
        lines.append(text("gateway.status.last_problem", language, problem=snapshot["last_sync_problem"]))
    for problem in snapshot.get("problems", []):
        name, _, detail = problem.partition(":")
        key = f"gateway.status.problem.{name}"
        if name == "fatal":
            detail = snapshot.get("fatal", "")
        try:
            lines.append("! " + text(key, language, detail=detail))
        except KeyError:
            lines.append(f"! {problem}")
    return "\n".join(lines)
