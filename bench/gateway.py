"""Gateway bench: sustained uplinks/s from Semtech UDP into the durable buffer with the gateway on one core, its peak
RSS, disk bytes written per uplink, and backhaul bytes per reading versus the same data as ChirpStack JSON events.

Run: `.venv/bin/python bench/gateway.py [--uplinks 20000]`. The gateway is the real `flurfunk gateway run` (Semtech
UDP source, frame opening, intake, pipeline, buffer) in its own process, pinned to CPU 0; the forwarder simulator
runs in a separate process pinned to CPU 1 and sends pre-encrypted PUSH_DATA (8 rxpk each) in a sliding window,
resending what is not acked, like a forwarder would. The rate is uplinks acked per second as the forwarder sees it
(an ack means durable). The baseline in the same run: the same path with one rxpk per datagram and one datagram
per commit (what a naive ack-after-durable daemon does). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import decoders
from flurfunk.contracts import Batch, Device, Quantity, Uplink
from flurfunk.wire import encode_batch
from gateway.buffer import DurableBuffer, all_readings
from gateway.lorawan import write_sessions
from gateway.lorawan.gwmp import push_data
from gateway.simulator import simulated_bin_assets, simulated_sessions
from gateway.simulator.forwarder import encrypt_uplink, rxpk_of

MODEL = "milesight-iot/em310-udl"
DEVICE_COUNT = 1_000  # more than the 512 uplinks in flight: no device twice in the window, FCnt order is kept
FORWARDER_EUI = "b827ebfffe6a1f0c"
SEED = 11
GATEWAY_CPU, FORWARDER_CPU = 0, 1
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def devices() -> list[Device]:
    return [
        Device(dev_eui=f"24e124713b{index:06x}", model_id=MODEL, asset=f"bin-{index}", report_interval_s=600)
        for index in range(DEVICE_COUNT)
    ]


def uplinks(count: int) -> list[Uplink]:
    """Deterministic: the same in the forwarder process and here (for the JSON comparison)."""
    dev_euis = [device.dev_eui for device in devices()]
    result = []
    for index in range(count):
        f_port, payload = decoders.encode_quantities(
            MODEL, {Quantity.DISTANCE_M: round(0.3 + (index % 100) / 100, 2), Quantity.BATTERY_PCT: 90}
        )
        result.append(
            Uplink(
                dev_eui=dev_euis[index % DEVICE_COUNT],
                f_port=f_port,
                f_cnt=index // DEVICE_COUNT,
                payload=payload,
                received_at=START + timedelta(milliseconds=index),
                source="simulator",
            )
        )
    return result


def chirpstack_event(uplink: Uplink, index: int) -> bytes:
    """The ChirpStack v4 `event/up` JSON an LNS integration would publish for this uplink."""
    return json.dumps(
        {
            "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
            "time": uplink.received_at.isoformat(),
            "deviceInfo": {
                "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
                "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
                "deviceProfileName": "EM310-UDL",
                "deviceName": f"bin-{index % DEVICE_COUNT}",
                "devEui": uplink.dev_eui,
            },
            "devAddr": "01fb0a52",
            "dr": 3,
            "fCnt": uplink.f_cnt,
            "fPort": uplink.f_port,
            "data": base64.b64encode(uplink.payload).decode(),
            "rxInfo": [{"gatewayId": FORWARDER_EUI, "uplinkId": 4217, "rssi": -104, "snr": -3.5}],
            "txInfo": {"frequency": 868300000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 9}}},
        }
    ).encode()


# -- the forwarder process -----------------------------------------------------------------------------------------


class _Sender(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[None]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 4 and data[3] == 0x01:  # PUSH_ACK
            future = self.waiting.get(data[1] << 8 | data[2])
            if future is not None and not future.done():
                future.set_result(None)

    def error_received(self, exc: Exception) -> None:
        pass


async def _forward(port: int, count: int, per_datagram: int, window: int) -> dict[str, Any]:
    sessions = simulated_sessions(devices(), seed=SEED)
    load = uplinks(count)
    datagrams = []
    tmst = 0
    for offset in range(0, count, per_datagram):
        packets = []
        for uplink in load[offset : offset + per_datagram]:
            tmst += 1000
            packets.append(rxpk_of(uplink, encrypt_uplink(sessions[uplink.dev_eui], uplink), tmst))
        token = len(datagrams) % 0x10000
        datagrams.append((token, push_data(token, FORWARDER_EUI, {"rxpk": packets}), len(packets)))
    loop = asyncio.get_running_loop()
    _, sender = await loop.create_datagram_endpoint(_Sender, remote_addr=("127.0.0.1", port))
    gate = asyncio.Semaphore(window)
    retries = 0

    async def push(token: int, datagram: bytes) -> None:
        nonlocal retries
        async with gate:
            future = loop.create_future()
            sender.waiting[token] = future
            for attempt in range(100):
                assert sender.transport is not None
                sender.transport.sendto(datagram)
                try:
                    await asyncio.wait_for(asyncio.shield(future), 5.0)
                    break
                except TimeoutError:
                    retries += attempt == 0
            del sender.waiting[token]

    started = time.perf_counter()
    await asyncio.gather(*(push(token, datagram) for token, datagram, _ in datagrams))
    elapsed = time.perf_counter() - started
    return {"uplinks": count, "datagrams": len(datagrams), "seconds": elapsed, "retried_datagrams": retries}


def forwarder_main(port: int, count: int, per_datagram: int, window: int) -> None:
    os.sched_setaffinity(0, {FORWARDER_CPU})
    print(json.dumps(asyncio.run(_forward(port, count, per_datagram, window))), flush=True)


# -- the gateway process and the orchestration ---------------------------------------------------------------------


def proc_io_write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_gateway_config(directory: Path, port: int, health_port: int, max_batch_datagrams: int) -> Path:
    directory.mkdir(parents=True)
    (directory / "token").write_text("bench-token")
    (directory / "token").chmod(0o600)
    write_sessions(directory / "sessions.json", simulated_sessions(devices(), seed=SEED).values())
    assets = simulated_bin_assets(DEVICE_COUNT)
    bundle = {"assets": assets, "devices": [device.model_dump(mode="json") for device in devices()]}
    (directory / "devices.json").write_text(json.dumps(bundle))
    # Nobody listens at the cloud URL: the sync loop tries once a batch has gathered, then backs off for minutes.
    (directory / "gateway.toml").write_text(
        f"""log_level = "warning"
[gateway]
id = "gw-bench"
[cloud]
url = "http://127.0.0.1:9"
token_file = "token"
sync_interval_s = 3600
backoff_base_s = 60
backoff_cap_s = 600
[buffer]
path = "buffer.sqlite"
quota_mb = 4096
[health]
bind = "127.0.0.1:{health_port}"
[devices]
bundle = "devices.json"
[sources.semtech_udp]
bind = "127.0.0.1:{port}"
sessions = "sessions.json"
max_batch_datagrams = {max_batch_datagrams}
max_queued_datagrams = 4000
"""
    )
    return directory / "gateway.toml"


def health(health_port: int) -> dict[str, Any]:
    import httpx

    return dict(httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=5).json())


def run_gateway(
    directory: Path, count: int, per_datagram: int, window: int, max_batch_datagrams: int
) -> dict[str, Any]:
    """Start `flurfunk gateway run` on CPU 0, let the forwarder process (CPU 1) push `count` uplinks, measure."""
    import httpx

    port, health_port = free_udp_port(), free_udp_port()
    config = write_gateway_config(directory, port, health_port, max_batch_datagrams)
    log = open(directory / "gateway.log", "wb")  # noqa: SIM115 - the child writes to it until it ends
    gateway = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(GATEWAY_CPU),
            sys.executable,
            "-m",
            "flurfunk.cli",
            "gateway",
            "run",
            "--config",
            str(config),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert gateway.poll() is None, (directory / "gateway.log").read_text()[-2000:]
            try:
                if health(health_port)["sources"].get("semtech_udp"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        written_before, cpu_before = proc_io_write_bytes(gateway.pid), proc_cpu_s(gateway.pid)
        forwarder = subprocess.run(
            [sys.executable, __file__, "--forwarder", f"{port},{count},{per_datagram},{window}"],
            capture_output=True,
            check=True,
        )
        result: dict[str, Any] = json.loads(forwarder.stdout.decode().strip().splitlines()[-1])
        result["disk_bytes"] = proc_io_write_bytes(gateway.pid) - written_before
        result["cpu_s"] = proc_cpu_s(gateway.pid) - cpu_before
        result["peak_rss_mb"] = proc_peak_rss_mb(gateway.pid)
        status = health(health_port)
        result["decoded"] = status["decoded"]
        result["dropped"] = status["dropped"]
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=60)
        log.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uplinks", type=int, default=20_000)
    parser.add_argument("--baseline-uplinks", type=int, default=1_000)
    parser.add_argument("--window", type=int, default=64, help="PUSH_DATA in flight at once")
    parser.add_argument("--forwarder", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.forwarder:
        port, count, per_datagram, window = (int(part) for part in options.forwarder.split(","))
        forwarder_main(port, count, per_datagram, window)
        return
    os.sched_setaffinity(0, {FORWARDER_CPU})  # this process only waits; CPU 0 is the gateway's alone
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="flurfunk-bench-gw-", dir=Path.home()) as scratch:
        directory = Path(scratch)
        main_run = run_gateway(directory / "main", options.uplinks, 8, options.window, 256)
        peak_rss_mb = main_run["peak_rss_mb"]
        baseline = run_gateway(directory / "baseline", options.baseline_uplinks, 1, 1, 1)
        with DurableBuffer(directory / "main" / "buffer.sqlite", quota_bytes=2**34) as buffer:
            entries = buffer.pending(20_000)
        readings = all_readings(entries)
        batch = Batch(
            gateway_id="gw-bench",
            first_seq=entries[0].seq,
            last_seq=entries[-1].seq,
            sent_at=datetime.now(UTC),
            readings=tuple(readings),
        )
        backhaul = len(encode_batch(batch))
        json_bytes = sum(len(chirpstack_event(u, i)) for i, u in enumerate(uplinks(len(entries))))
    rate = main_run["uplinks"] / main_run["seconds"]
    baseline_rate = baseline["uplinks"] / baseline["seconds"]
    disk_per_uplink = main_run["disk_bytes"] / main_run["uplinks"]
    ratio = backhaul / json_bytes
    assert main_run["decoded"] == options.uplinks, main_run
    cpu_rate = main_run["uplinks"] / main_run["cpu_s"]
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
    print(
        "intake: forwarder process (CPU 1) → GWMP PUSH_DATA over UDP → gateway process (CPU 0): open frames "
        "(MIC, FCnt, decrypt) → dedup/decode/check → durable buffer (WAL, FULL) → PUSH_ACK"
    )
    print(
        f"  {rate:,.0f} uplinks/s acked, {main_run['uplinks']:,} uplinks in {main_run['datagrams']:,} datagrams of 8 "
        f"rxpk, {options.window} in flight, {main_run['retried_datagrams']} resent (target >= 2,000)"
    )
    print(
        f"  gateway CPU: {main_run['cpu_s']:.1f} s for {main_run['uplinks']:,} uplinks = {cpu_rate:,.0f} uplinks per "
        "CPU-second (the rate on a core of its own; the figure above shares CPU 0 with whatever else runs)"
    )
    print(
        f"  baseline, one rxpk per datagram and one commit per datagram: {baseline_rate:,.0f} uplinks/s, "
        f"{baseline['disk_bytes'] / baseline['uplinks']:,.0f} disk bytes per uplink"
    )
    print(f"  disk written: {disk_per_uplink:,.0f} bytes per uplink (gateway process, /proc/PID/io write_bytes)")
    print(f"  peak RSS of the gateway process: {peak_rss_mb:.1f} MB (VmHWM; target <= 120)")
    print(
        f"  backhaul: {backhaul:,} bytes CBOR+zlib for {len(readings):,} readings of {len(entries):,} uplinks "
        f"({backhaul / len(readings):.1f} B/reading) vs {json_bytes:,} bytes as ChirpStack JSON "
        f"({json_bytes / len(readings):.1f} B/reading): ratio {ratio:.3f} (target <= 0.1)"
    )
    print(
        json.dumps(
            {
                "uplinks_per_s": round(rate, 1),
                "uplinks_per_cpu_s": round(cpu_rate, 1),
                "baseline_uplinks_per_s": round(baseline_rate, 1),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "disk_bytes_per_uplink": round(disk_per_uplink, 1),
                "backhaul_ratio_vs_json": round(ratio, 4),
                "intake": "semtech_udp",
                "load_average_1m": round(load[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
