"""Ingest throughput: readings/s through the cloud's HTTP API into a real influxd, against raw line protocol.

Run: `.venv/bin/python bench/ingest.py [--readings 200000] [--gateways 2]`. Starts its own influxd (Debian package
`influxdb`) and the cloud (`flurfunk cloud serve`, uvicorn) as separate processes on free ports. The batches are
CBOR as the gateway's SyncClient sends them (5,000 readings each), encoded before the clock starts; the baseline
posts the same points as plain line protocol (10,000 lines per request) straight to the same influxd.
Rounds alternate baseline and API run (new points each round) and the medians are reported, so a burst of load
from other processes skews one round, not the figure; the CPU seconds the cloud and influxd spend per batch are
reported too, as they depend far less on other load than the rates do.
The last line printed is one JSON object with `readings_per_s`, `raw_points_per_s` and `ratio_to_raw`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from cloud.store.influx_v1 import line  # the same line format the store writes
from flurfunk.contracts import Batch, Quantity, Reading
from flurfunk.wire import MEDIA_TYPE, encode_batch

READINGS_PER_BATCH = 5_000
RAW_LINES_PER_REQUEST = 10_000
TARGET_RATIO = 0.25
T0 = datetime(2026, 5, 4, tzinfo=UTC)
QUANTITIES = (Quantity.FILL_RATIO, Quantity.BATTERY_V, Quantity.SOIL_TENSION_KPA, Quantity.AIR_TEMPERATURE_C)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until(url: str, expected: int, process: subprocess.Popen[bytes], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == expected:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer {url} within {timeout_s} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def influxd(directory: Path) -> Iterator[Server]:
    binary = shutil.which("influxd") or SystemExit("influxd is not installed (apt-get install influxdb)")
    port, rpc_port = _free_port(), _free_port()
    config = directory / "influxd.conf"
    config.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc_port}"\n'
        f'[meta]\n  dir = "{directory / "meta"}"\n  logging-enabled = false\n'
        f'[data]\n  dir = "{directory / "data"}"\n  wal-dir = "{directory / "wal"}"\n  query-log-enabled = false\n'
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        '[monitor]\n  store-enabled = false\n[logging]\n  level = "warn"\n'
    )
    with open(directory / "influxd.log", "wb") as log:
        process = subprocess.Popen([str(binary), "-config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until(f"{url}/ping", 204, process, "influxd")
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def cloud(directory: Path, influx_url: str, tokens: dict[str, str]) -> Iterator[Server]:
    port = _free_port()
    environment = {
        **os.environ,
        "FLURFUNK_CLOUD_DATA_DIR": str(directory / "cloud"),
        "FLURFUNK_CLOUD_SERIES_URL": influx_url.replace("http://", "influx-v1://") + "/flurfunk_api",
        "FLURFUNK_CLOUD_GATEWAY_TOKENS": json.dumps(tokens),
        "FLURFUNK_CLOUD_INGEST_RATE_PER_S": "1000",
        "FLURFUNK_CLOUD_INGEST_BURST": "1000",
    }
    command = [sys.executable, "-m", "flurfunk.cli", "cloud", "serve", "--port", str(port)]
    with open(directory / "cloud.log", "wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until(f"{url}/healthz", 200, process, "flurfunk cloud serve")
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)


def make_readings(gateway: int, count: int, start: datetime = T0) -> list[Reading]:
    """Like a town's sensors: 1,000 assets per gateway, a reading per asset and quantity every 15 minutes."""
    readings = []
    for index in range(count):
        asset = index % 1_000
        step = index // 1_000
        readings.append(
            Reading(
                device=f"{gateway:04x}{asset:012x}",
                asset=f"bin-gw{gateway}-{asset:04d}",
                quantity=QUANTITIES[asset % len(QUANTITIES)],
                value=(asset * 7 + step) % 100 / 100,
                time=start + timedelta(minutes=15 * step),
                anomaly_score=0.01,
            )
        )
    return readings


@dataclass(frozen=True)
class Workload:
    """One round's points: CBOR batches per gateway for the API, the same points as line protocol for the baseline."""

    bodies: dict[str, list[bytes]]
    lines: list[str]


def make_workload(tokens: dict[str, str], per_gateway: int, round_index: int) -> Workload:
    start = T0 - timedelta(days=400 * round_index)  # new points each round; the past, as the cloud refuses the future
    readings = {gateway_id: make_readings(index, per_gateway, start) for index, gateway_id in enumerate(tokens)}
    first_seq = round_index * per_gateway
    bodies = {
        gateway_id: [
            encode_batch(
                Batch(
                    gateway_id=gateway_id,
                    first_seq=first_seq + offset + 1,
                    last_seq=first_seq + offset + len(gateway_readings[offset : offset + READINGS_PER_BATCH]),
                    sent_at=start,
                    readings=tuple(gateway_readings[offset : offset + READINGS_PER_BATCH]),
                )
            )
            for offset in range(0, len(gateway_readings), READINGS_PER_BATCH)
        ]
        for gateway_id, gateway_readings in readings.items()
    }
    lines = [line(reading) for gateway_readings in readings.values() for reading in gateway_readings]
    return Workload(bodies, lines)


def api_run(url: str, tokens: dict[str, str], bodies: dict[str, list[bytes]]) -> float:
    """Seconds to post every gateway's batches, one thread per gateway as gateways run side by side."""

    def post_all(gateway_id: str) -> int:
        headers = {"Authorization": f"Bearer {tokens[gateway_id]}", "Content-Type": MEDIA_TYPE}
        stored = 0
        with httpx.Client(base_url=url, timeout=120) as client:
            for body in bodies[gateway_id]:
                response = client.post("/api/v1/ingest/batches", content=body, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"ingest answered {response.status_code}: {response.text[:300]}")
                stored += response.json()["stored"]
        return stored

    started = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        list(pool.map(post_all, bodies))
    return time.perf_counter() - started


def raw_run(influx_url: str, database: str, lines: list[str]) -> float:
    with httpx.Client(timeout=120) as client:
        client.post(f"{influx_url}/query", data={"q": f'CREATE DATABASE "{database}"'}).raise_for_status()  # idempotent
        bodies = [
            ("\n".join(lines[start : start + RAW_LINES_PER_REQUEST]) + "\n").encode()
            for start in range(0, len(lines), RAW_LINES_PER_REQUEST)
        ]
        started = time.perf_counter()
        params = {"db": database, "precision": "u"}
        for body in bodies:
            client.post(f"{influx_url}/write", params=params, content=body).raise_for_status()
        return time.perf_counter() - started


def breakdown(directory: Path, influx_url: str, body: bytes) -> dict[str, float]:
    """Milliseconds per batch for each step of the ingest, in this process, one batch after the other."""
    from cloud.store.influx_v1 import InfluxV1SeriesStore
    from cloud.store.operational import OperationalStore
    from flurfunk.contracts import utc_now
    from flurfunk.wire import decode_batch

    operational = OperationalStore.from_url(f"sqlite:///{directory / 'breakdown.sqlite'}")
    operational.create_schema()
    steps = {"decode_batch": 0.0, "line_protocol": 0.0, "series_write": 0.0, "record_batch": 0.0}
    rounds = 5
    gc.freeze()  # as the cloud does after start-up (cloud.api.ingest), else this process's big heap skews the figures
    with InfluxV1SeriesStore(influx_url, "flurfunk_breakdown") as series:
        for _round in range(rounds):
            started = time.perf_counter()
            batch = decode_batch(body)
            decoded = time.perf_counter()
            [line(reading) for reading in batch.readings]
            built = time.perf_counter()
            series.write(batch.readings)  # builds the lines again, then gzip and HTTP
            written = time.perf_counter()
            operational.record_batch(batch, received_at=utc_now())
            recorded = time.perf_counter()
            steps["decode_batch"] += decoded - started
            steps["line_protocol"] += built - decoded
            steps["series_write"] += written - built
            steps["record_batch"] += recorded - written
    operational.engine.dispose()
    gc.unfreeze()
    return {name: round(seconds / rounds * 1000, 1) for name, seconds in steps.items()}


def count_points(influx_url: str, database: str) -> int:
    answer = httpx.get(
        f"{influx_url}/query", params={"db": database, "q": "SELECT count(value) FROM /.*/"}, timeout=60
    ).json()
    return sum(series["values"][0][1] for series in answer["results"][0].get("series", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000, help="readings per round (all gateways)")
    parser.add_argument("--gateways", type=int, default=2, help="gateways posting side by side")
    parser.add_argument("--rounds", type=int, default=3, help="baseline + API runs, alternating; medians reported")
    options = parser.parse_args()

    per_gateway = options.readings // options.gateways
    total = per_gateway * options.gateways
    tokens = {f"gw-bench-{index}": secrets.token_urlsafe(24) for index in range(options.gateways)}
    api_rates, raw_rates, ratios = [], [], []
    cpu = {"cloud_api": 0.0, "influxd_api": 0.0, "influxd_raw": 0.0}

    with tempfile.TemporaryDirectory(prefix="flurfunk-bench-ingest-") as scratch:
        directory = Path(scratch)
        with influxd(directory) as influx, cloud(directory, influx.url, tokens) as api:
            for round_index in range(options.rounds):
                workload = make_workload(tokens, per_gateway, round_index)
                influx_before = cpu_seconds(influx.pid)
                raw_s = raw_run(influx.url, "flurfunk_raw", workload.lines)
                influx_between, cloud_before = cpu_seconds(influx.pid), cpu_seconds(api.pid)
                api_s = api_run(api.url, tokens, workload.bodies)
                cpu["cloud_api"] += cpu_seconds(api.pid) - cloud_before
                cpu["influxd_api"] += cpu_seconds(influx.pid) - influx_between
                cpu["influxd_raw"] += influx_between - influx_before
                api_rates.append(total / api_s)
                raw_rates.append(total / raw_s)
                ratios.append(api_rates[-1] / raw_rates[-1])
                print(
                    f"round {round_index + 1}: API {api_rates[-1]:,.0f} readings/s, raw {raw_rates[-1]:,.0f} points/s, "
                    f"ratio {ratios[-1]:.3f}, load average {os.getloadavg()[0]:.1f}"
                )
                del workload
            stored_api, stored_raw = count_points(influx.url, "flurfunk_api"), count_points(influx.url, "flurfunk_raw")
            first_body = make_workload(tokens, READINGS_PER_BATCH * options.gateways, options.rounds).bodies
            steps = breakdown(directory, influx.url, next(iter(first_body.values()))[0])
    expected = total * options.rounds
    if stored_api != expected or stored_raw != expected:
        raise SystemExit(f"points stored: api {stored_api}, raw {stored_raw}, expected {expected} each")

    batches = expected / READINGS_PER_BATCH
    cpu_ms_per_batch = {name: round(seconds / batches * 1000, 1) for name, seconds in cpu.items()}
    readings_per_s, raw_points_per_s = statistics.median(api_rates), statistics.median(raw_rates)
    ratio = statistics.median(ratios)
    print(
        f"readings: {total:,} per round, {options.rounds} rounds, from {options.gateways} gateways in batches of "
        f"{READINGS_PER_BATCH:,} (CBOR, zlib)"
    )
    print(f"through the API into influxd (median): {readings_per_s:,.0f} readings/s")
    print(f"baseline, raw line protocol (median):  {raw_points_per_s:,.0f} points/s")
    print(
        "CPU ms per 5,000 readings: cloud {cloud_api}, influxd behind the API {influxd_api}, influxd raw "
        "{influxd_raw}".format(**cpu_ms_per_batch)
    )
    print("where a batch's time goes (ms, one thread): " + ", ".join(f"{k} {v}" for k, v in steps.items()))
    verdict = "meets" if ratio >= TARGET_RATIO else "below"
    print(f"ratio to raw (median of rounds): {ratio:.3f} ({verdict} the target of {TARGET_RATIO})")
    print(
        json.dumps(
            {
                "readings_per_s": round(readings_per_s),
                "raw_points_per_s": round(raw_points_per_s),
                "ratio_to_raw": round(ratio, 3),
                "round_ratios": [round(r, 3) for r in ratios],
                "readings": total,
                "rounds": options.rounds,
                "gateways": options.gateways,
                "target_ratio": TARGET_RATIO,
                "load_average": round(os.getloadavg()[0], 1),
                "cpu_ms_per_batch": cpu_ms_per_batch,
                "ms_per_batch": steps,
            }
        )
    )


if __name__ == "__main__":
    main()
