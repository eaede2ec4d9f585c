"""Gateway bench: sustained uplinks/s into the durable buffer on one core, peak RSS, disk bytes per uplink, and
backhaul bytes per reading versus the same data as ChirpStack JSON events.

Run: `.venv/bin/python bench/gateway.py [--uplinks 20000]`. The intake here is ChirpStack JSON events parsed by the
MQTT source's parser (the UDP/GWMP source of issue 4 part A is used instead once `gateway.sources.semtech_udp`
offers a datagram parser). The baseline printed beside the figure is the same pipeline committing one uplink per
transaction (what a naive daemon does). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import decoders
from flurfunk.contracts import Asset, AssetKind, Batch, Device, Quantity
from flurfunk.wire import encode_batch
from gateway.buffer import DurableBuffer, all_readings
from gateway.pipeline import DeviceBinding, Pipeline
from gateway.sources.mqtt import parse_chirpstack_up

MODEL = "milesight-iot/em310-udl"
DEVICE_COUNT = 500
COMMIT_GROUP = 200  # what the service's intake gathers per commit under load


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def bindings() -> dict[str, DeviceBinding]:
    result = {}
    for index in range(DEVICE_COUNT):
        asset = Asset(
            id=f"bin-{index}",
            kind=AssetKind.BIN,
            municipality="Bad Orb",
            village="Bad Orb",
            latitude=50.2,
            longitude=9.35,
            sensor_to_bottom_m=1.5,
            sensor_to_full_m=0.2,
        )
        device = Device(dev_eui=f"24e124713b{index:06x}", model_id=MODEL, asset=asset.id, report_interval_s=600)
        result[device.dev_eui] = DeviceBinding(device=device, asset=asset)
    return result


def chirpstack_events(count: int, devices: list[str]) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(hours=2)
    events = []
    for index in range(count):
        f_port, payload = decoders.encode_quantities(
            MODEL, {Quantity.DISTANCE_M: 0.3 + (index % 100) / 100, Quantity.BATTERY_PCT: 90}
        )
        events.append(
            json.dumps(
                {
                    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
                    "time": (start + timedelta(milliseconds=index)).isoformat(),
                    "deviceInfo": {
                        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
                        "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
                        "deviceProfileName": "EM310-UDL",
                        "deviceName": f"bin-{index % DEVICE_COUNT}",
                        "devEui": devices[index % len(devices)],
                    },
                    "devAddr": "01fb0a52",
                    "dr": 3,
                    "fCnt": index // len(devices),
                    "fPort": f_port,
                    "data": base64.b64encode(payload).decode(),
                    "rxInfo": [{"gatewayId": "0016c001ff10a235", "uplinkId": 4217, "rssi": -104, "snr": -3.5}],
                    "txInfo": {
                        "frequency": 868300000,
                        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 9}},
                    },
                }
            ).encode()
        )
    return events


def run(events: list[bytes], directory: Path, group: int) -> tuple[float, int, Pipeline, DurableBuffer]:
    buffer = DurableBuffer(directory / f"buffer-{group}.sqlite", quota_bytes=2**34)
    pipeline = Pipeline("gw-bench", bindings(), buffer)
    written_before = write_bytes()
    started = time.perf_counter()
    for offset in range(0, len(events), group):
        uplinks = [parse_chirpstack_up(body) for body in events[offset : offset + group]]
        pipeline.handle_many(uplinks)
    elapsed = time.perf_counter() - started
    return len(events) / elapsed, write_bytes() - written_before, pipeline, buffer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uplinks", type=int, default=20_000)
    parser.add_argument("--baseline-uplinks", type=int, default=1_000)
    options = parser.parse_args()
    devices = list(bindings())
    events = chirpstack_events(options.uplinks, devices)
    with tempfile.TemporaryDirectory(prefix="flurfunk-bench-gw-", dir=Path.home()) as scratch:
        directory = Path(scratch)
        rate, disk_bytes, _, buffer = run(events, directory, COMMIT_GROUP)
        baseline_rate, baseline_disk, _, baseline_buffer = run(events[: options.baseline_uplinks], directory, 1)
        baseline_buffer.close()
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
        json_bytes = sum(len(body) for body in events[: len(entries)])
        buffer.close()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    disk_per_uplink = disk_bytes / options.uplinks
    ratio = backhaul / json_bytes
    print("intake: ChirpStack JSON events → parse → dedup/decode/check → durable buffer (WAL, FULL), one core")
    print(f"  {rate:,.0f} uplinks/s in groups of {COMMIT_GROUP} (target >= 2,000)")
    print(
        f"  baseline, one commit per uplink: {baseline_rate:,.0f} uplinks/s, "
        f"{baseline_disk / options.baseline_uplinks:,.0f} disk bytes per uplink"
    )
    print(f"  disk written: {disk_per_uplink:,.0f} bytes per uplink (from /proc/self/io write_bytes)")
    print(f"  peak RSS: {peak_rss_mb:.1f} MB (target <= 120)")
    print(
        f"  backhaul: {backhaul:,} bytes CBOR+zlib for {len(readings):,} readings of {len(entries):,} uplinks "
        f"({backhaul / len(readings):.1f} B/reading) vs {json_bytes:,} bytes as ChirpStack JSON "
        f"({json_bytes / len(readings):.1f} B/reading): ratio {ratio:.3f} (target <= 0.1)"
    )
    print(
        json.dumps(
            {
                "uplinks_per_s": round(rate, 1),
                "baseline_uplinks_per_s": round(baseline_rate, 1),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "disk_bytes_per_uplink": round(disk_per_uplink, 1),
                "backhaul_ratio_vs_json": round(ratio, 4),
                "intake": "chirpstack_json",
            }
        )
    )


if __name__ == "__main__":
    main()
