"""Edge anomaly bench: µs per reading on the gateway's scoring path (shipped bundle, LiteRT and numpy; one uplink
per call, and 64 uplinks per call as the pipeline scores what one handle_many call holds) against the rules-only
path in the same run, model size, and held-out F1 per fault type (final verdicts, LOOK_AHEAD readings later, a gap
in a noise burst up to BURST_GAP more; and the verdicts given on arrival). "Per reading" counts every reading of the
uplinks (battery, humidity, ... too); the readings the network scores are about a quarter of them, and their cost is
printed too.

    taskset -c 1 .venv/bin/python bench/anomaly.py [--bundle DIR] [--days 7] [--scale 0.3] [--seed 1001] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cloud.anomaly.data import simulate_records
from cloud.anomaly.train import evaluate
from edge.anomaly import AnomalyScorer, load_bundle, shipped_bundle_path
from edge.anomaly.features import FAMILY_OF_QUANTITY
from edge.anomaly.runtime import litert_interpreter_class
from flurfunk.contracts import Reading


def _uplink_readings(records) -> list[list[Reading]]:
    groups = []
    for record in records:
        time_ = datetime.fromtimestamp(record.time_s, UTC)
        groups.append(
            [Reading(device=record.dev_eui, asset=record.asset, quantity=q, value=v, time=time_)
             for q, v in record.values.items()]
        )  # fmt: skip
    return groups


def _us_per_reading(
    make: Callable[[], AnomalyScorer], groups: list[list[Reading]], batch: int, rounds: int
) -> tuple[float, float]:
    """Scoring every uplink as the gateway does (score, then take the revisions), `batch` uplinks per call, with a
    fresh scorer per round: µs per reading of wall-clock and of this process's CPU time, each the fastest round.
    On a shared machine the wall clock also counts the time other processes held the core; CPU time does not."""
    readings = sum(len(group) for group in groups)
    wall, cpu = math.inf, math.inf
    for _ in range(rounds):
        scorer = make()
        started, started_cpu = time.perf_counter(), time.process_time()
        if batch == 1:
            for group in groups:
                scorer.score(group)
                scorer.take_revisions()
        else:
            for start in range(0, len(groups), batch):
                scorer.score_many(groups[start : start + batch])
                scorer.take_revisions()
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    return wall / readings * 1e6, cpu / readings * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1001)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bundle_path = args.bundle or shipped_bundle_path()
    if bundle_path is None:
        raise SystemExit("no bundle: pass --bundle or ship one in edge/anomaly/models/")
    bundle = load_bundle(bundle_path)
    records = sorted(
        simulate_records(args.seed, args.days, args.scale, start=datetime(2026, 8, 3, tzinfo=UTC)),
        key=lambda r: (r.time_s, r.dev_eui),
    )
    groups = _uplink_readings(records)
    n_readings = sum(len(g) for g in groups)
    n_scored = sum(1 for g in groups for r in g if r.quantity in FAMILY_OF_QUANTITY)
    has_litert = litert_interpreter_class() is not None
    gateway_backend = "litert" if has_litert else "numpy"
    load_before = os.getloadavg()
    paths: dict[str, tuple[Callable[[], AnomalyScorer], int]] = {
        "rules only": (lambda: AnomalyScorer(None), 1),
        "numpy": (lambda: AnomalyScorer(bundle, backend="numpy"), 1),
    }
    if has_litert:
        paths["LiteRT"] = (lambda: AnomalyScorer(bundle, backend="litert"), 1)
    paths[f"{gateway_backend}, 64 uplinks per call"] = (lambda: AnomalyScorer(bundle, backend=gateway_backend), 64)
    timings = {name: _us_per_reading(make, groups, batch, args.rounds) for name, (make, batch) in paths.items()}
    load_after = os.getloadavg()
    model_bytes = sum(p.stat().st_size for p in bundle_path.glob("*.tflite"))
    evaluation, _ = evaluate(AnomalyScorer(bundle, backend="numpy"), records)
    on_arrival, _ = evaluate(AnomalyScorer(bundle, backend="numpy"), records, late=False)
    print(f"bundle {bundle.version} ({bundle_path}); {len(groups)} uplinks, {n_readings} readings "
          f"({n_scored} for the network), {args.days} days")  # fmt: skip
    print(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after the timing; "
          f"fastest of {args.rounds} rounds")  # fmt: skip
    for name, (wall, cpu) in timings.items():
        print(f"{name:28}: {wall:7.1f} µs per reading wall-clock, {cpu:7.1f} CPU")
    gateway_wall, gateway_cpu = timings["LiteRT" if has_litert else "numpy"]
    print(f"{gateway_backend}, one uplink per call, per reading the network scores: "
          f"{gateway_wall * n_readings / n_scored:7.1f} µs wall-clock, "
          f"{gateway_cpu * n_readings / n_scored:7.1f} CPU")  # fmt: skip
    print(f"model files (.tflite): {model_bytes} bytes (target <= 100 KB)")
    for fault, m in sorted(evaluation.per_type.items()):
        arrival = on_arrival.per_type[fault]["f1"]
        print(f"{fault:15} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} n={m['support']:.0f}"
              f"   (on arrival F1 {arrival:.3f})")  # fmt: skip
    print(f"clean readings flagged: {evaluation.clean_flag_rate:.3%} of {evaluation.clean_readings} "
          f"(on arrival {on_arrival.clean_flag_rate:.3%})")  # fmt: skip
    batched_wall, batched_cpu = timings[f"{gateway_backend}, 64 uplinks per call"]
    print(json.dumps({
        "f1_min": round(evaluation.f1_min, 4),
        "clean_flag_rate": round(evaluation.clean_flag_rate, 5),
        "us_per_reading": round(gateway_wall, 2),
        "us_per_reading_cpu": round(gateway_cpu, 2),
        "us_per_reading_numpy": round(timings["numpy"][0], 2),
        "us_per_reading_batched": round(batched_wall, 2),
        "us_per_reading_batched_cpu": round(batched_cpu, 2),
        "us_per_reading_rules_only": round(timings["rules only"][0], 2),
        "f1_min_on_arrival": round(on_arrival.f1_min, 4),
        "load_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "model_bytes": model_bytes,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
