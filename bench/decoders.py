"""Benchmark: µs per uplink payload to Readings, native decoder vs JS codec (compiled once) vs a fresh JS context per
call (as ChirpStack runs codecs), on the same payloads of every model that has a test codec.

Run: .venv/bin/python bench/decoders.py [--payloads 2000] [--fresh 200]
Targets: native <= 10 µs, JS runtime <= 100 µs. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import decoders  # noqa: E402
from decoders.jsruntime import JsCodec, load_reading_map  # noqa: E402
from flurfunk.contracts import Quantity  # noqa: E402

CODECS = ROOT / "tests" / "codecs"
DEVICE, ASSET = "a840410000000001", "bench-asset"
WHEN = datetime(2026, 7, 6, 8, 0, tzinfo=UTC)

# Values a real device reports; the native encoder turns them into the bytes the device would send.
PLAUSIBLE = {
    Quantity.DISTANCE_M: (0.2, 4.0),
    Quantity.BATTERY_V: (2.8, 3.6),
    Quantity.BATTERY_PCT: (10.0, 100.0),
    Quantity.SOIL_VWC: (0.05, 0.5),
    Quantity.SOIL_TEMPERATURE_C: (-5.0, 30.0),
    Quantity.SOIL_EC_US_CM: (50.0, 2000.0),
    Quantity.SOLAR_RADIATION_W_M2: (0.0, 1000.0),
    Quantity.RAIN_MM: (0.0, 10.0),
    Quantity.WIND_SPEED_MS: (0.0, 20.0),
    Quantity.WIND_DIRECTION_DEG: (0.0, 359.0),
    Quantity.AIR_TEMPERATURE_C: (-10.0, 35.0),
    Quantity.PRESSURE_HPA: (950.0, 1040.0),
    Quantity.HUMIDITY_PCT: (20.0, 100.0),
    Quantity.DEVICE_TEMPERATURE_C: (-10.0, 40.0),
    Quantity.TILT: (0.0, 0.0),
}


def models_with_codecs() -> dict[str, Path]:
    found = {}
    for mapping in sorted(CODECS.glob("*.toml")):
        model_id = load_reading_map(mapping).model
        if model_id in decoders.model_ids() and mapping.with_suffix(".js").exists():
            found[model_id] = mapping.with_suffix(".js")
    return found


def payloads(model_id: str, codec: JsCodec, count: int, rng: random.Random) -> list[tuple[int, bytes]]:
    made = []
    quantities = [rule.quantity for rule in codec.reading_map.rules]  # type: ignore[union-attr]
    while len(made) < count:
        values = {q: rng.uniform(*PLAUSIBLE[q]) for q in quantities if q in PLAUSIBLE}
        made.append(decoders.encode_quantities(model_id, values))
    return made


def per_call_us(work: Callable[[int, bytes], object], cases: list[tuple[int, bytes]], rounds: int = 5) -> float:
    """The best of `rounds` runs over all cases, in CPU µs per case of this process (the best run has the least noise;
    CPU time, not wall time, so that other work on the machine does not count)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for f_port, payload in cases:
            work(f_port, payload)
        best = min(best, time.process_time() - started)
    return best / len(cases) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payloads", type=int, default=2000, help="payloads per model")
    parser.add_argument("--fresh", type=int, default=200, help="payloads per model for the fresh-context path")
    options = parser.parse_args()
    rng = random.Random(7)
    rows = []
    for model_id, script in models_with_codecs().items():
        source = script.read_text(encoding="utf-8")
        reading_map = load_reading_map(script.with_suffix(".toml"))
        codec = JsCodec(source, name=script.name, reading_map=reading_map)
        cases = payloads(model_id, codec, options.payloads, rng)

        def native(f_port: int, payload: bytes, model_id: str = model_id) -> object:
            return decoders.decode(model_id, f_port, payload).readings(DEVICE, ASSET, WHEN)

        def compiled(f_port: int, payload: bytes, codec: JsCodec = codec) -> object:
            return codec.decode_uplink(f_port, payload, received_at=WHEN).readings(DEVICE, ASSET, WHEN)

        def fresh(f_port: int, payload: bytes, source: str = source, codec: JsCodec = codec) -> object:
            codec = JsCodec(source, name=codec.name, reading_map=codec.reading_map)
            return codec.decode_uplink(f_port, payload, received_at=WHEN).readings(DEVICE, ASSET, WHEN)

        def fields_only(f_port: int, payload: bytes, model_id: str = model_id) -> object:
            return decoders.decode(model_id, f_port, payload)

        rows.append(
            {
                "model": model_id,
                "bytes": statistics.mean(len(payload) for _, payload in cases),
                "native_us": per_call_us(native, cases),
                "native_decode_only_us": per_call_us(fields_only, cases),
                "js_us": per_call_us(compiled, cases),
                "js_fresh_us": per_call_us(fresh, cases[: options.fresh], rounds=3),
            }
        )
    print(f"{'model':28} {'bytes':>5} {'native µs':>10} {'(decode)':>9} {'JS µs':>8} {'JS fresh µs':>12}")
    for row in rows:
        print(
            f"{row['model']:28} {row['bytes']:5.0f} {row['native_us']:10.1f} {row['native_decode_only_us']:9.1f} "
            f"{row['js_us']:8.1f} {row['js_fresh_us']:12.1f}"
        )
    summary = {
        key: round(statistics.mean(row[key] for row in rows), 1)
        for key in ("native_us", "native_decode_only_us", "js_us", "js_fresh_us")
    }
    print(
        f"mean over {len(rows)} models: native {summary['native_us']} µs (target <= 10), "
        f"JS compiled once {summary['js_us']} µs (target <= 100), "
        f"fresh JS context per call {summary['js_fresh_us']} µs (baseline, as ChirpStack runs codecs)"
    )
    print(json.dumps({**summary, "models": [row["model"] for row in rows]}))


if __name__ == "__main__":
    main()
