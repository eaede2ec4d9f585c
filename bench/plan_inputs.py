"""Reading the plan's inputs from the series store: 1,500 bins × 14 days of hourly fill ratios and a station's
14 days at 20-minute reports (510,048 points), the bins and station of tests/test_plan_inputs.py scaled up.

Run: `.venv/bin/python bench/plan_inputs.py [--influx] [--repeat 3]` (about a minute; `--influx` also against a
throwaway influxd started as tests/conftest.py does, v1 API). Each store is read `--repeat` times two ways through
`cloud.scheduler.inputs.read_plan_inputs`: as planned (one `query_many` read for all bins) and the baseline, the
store wrapped so that every asset is one `query` whose points become arrays (what the planner did before). Printed:
best wall and CPU seconds of each; the last line is one JSON object with, per store, `<store>_s` and
`<store>_baseline_s` (best wall) and `<store>_cpu_s`, `<store>_baseline_cpu_s` (this process's CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.scheduler.inputs import read_plan_inputs
from cloud.store.series import SeriesArrays, SeriesPoint, SeriesStore
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Asset, AssetKind, Quantity, Reading
from tests.test_plan_inputs import DAY, PLAN_TIME, STATION, TOWN, station_readings

BINS = 1_500
DAYS = 14


def assets() -> list[Asset]:
    bins = [
        Asset(
            id=f"bin-{index:04d}",
            kind=AssetKind.BIN,
            municipality=TOWN,
            village="Fischborn",
            latitude=50.30 + index * 1e-4,
            longitude=9.29,
            capacity_l=240,
        )
        for index in range(BINS)
    ]
    station = Asset(
        id=STATION,
        kind=AssetKind.WEATHER_STATION,
        municipality=TOWN,
        village="Fischborn",
        latitude=50.35,
        longitude=9.3,
    )
    return [*bins, station]


def readings() -> list[Reading]:
    points: list[Reading] = []
    for index in range(BINS):
        device = f"a84041{index:010x}"
        rate = 0.03 + (index % 17) * 0.01
        for hour in range(DAYS * 24, 0, -1):
            value = (0.6 - rate * hour / 24.0) % 0.9 + 0.02  # a sawtooth: emptied when it reaches ~92 %
            moment = PLAN_TIME - timedelta(hours=hour)
            points.append(
                Reading(
                    device=device,
                    asset=f"bin-{index:04d}",
                    quantity=Quantity.FILL_RATIO,
                    value=round(value, 4),
                    time=moment,
                )
            )
    return points + station_readings(DAYS, rain_mm_per_day=0.0)  # the station of tests/test_plan_inputs.py


class OneQueryPerAsset:
    """The baseline: a store whose bulk read is one `query` per asset, its points turned into arrays."""

    def __init__(self, inner: SeriesStore) -> None:
        self.inner = inner

    def query(self, *args: object, **kwargs: object) -> list[SeriesPoint]:
        return self.inner.query(*args, **kwargs)  # type: ignore[arg-type]

    def query_many(
        self, assets: Sequence[str], quantity: Quantity, start: datetime, end: datetime
    ) -> dict[str, SeriesArrays]:
        grouped = {}
        for asset in dict.fromkeys(assets):
            points = self.inner.query(asset, quantity, start, end)
            if points:
                grouped[asset] = SeriesArrays(
                    np.array([point.time.timestamp() for point in points]), np.array([point.value for point in points])
                )
        return grouped


def best_of(repeat: int, read: Callable[[], object]) -> tuple[float, float, object]:
    best_wall, best_cpu, result = math.inf, math.inf, None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = read()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def measure(name: str, store: SeriesStore, repeat: int, figures: dict[str, float]) -> None:
    world = assets()
    bulk_wall, bulk_cpu, bulk = best_of(repeat, lambda: read_plan_inputs(store, DAY, world))
    base_wall, base_cpu, base = best_of(repeat, lambda: read_plan_inputs(OneQueryPerAsset(store), DAY, world))
    assert sorted(bulk.bin_history) == sorted(base.bin_history), "the two reads disagree"  # type: ignore[attr-defined]
    print(
        f"{name}: bins with a forecast history {len(bulk.bin_history)} of {BINS}; "  # type: ignore[attr-defined]
        f"one read {bulk_wall:.2f} s wall / {bulk_cpu:.2f} s CPU; "
        f"baseline one query per asset {base_wall:.2f} s wall / {base_cpu:.2f} s CPU (best of {repeat})"
    )
    figures |= {
        f"{name}_s": round(bulk_wall, 3),
        f"{name}_baseline_s": round(base_wall, 3),
        f"{name}_cpu_s": round(bulk_cpu, 3),
        f"{name}_baseline_cpu_s": round(base_cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--influx", action="store_true", help="also against a throwaway influxd (v1 API)")
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    points = readings()
    print(f"{len(points)} points; load average {os.getloadavg()[0]:.1f}")
    figures: dict[str, float] = {"points": len(points)}
    with tempfile.TemporaryDirectory(prefix="flurfunk-plan-inputs-") as directory:
        sqlite = SqliteSeriesStore(Path(directory) / "series.sqlite")
        sqlite.write(points)
        measure("sqlite", sqlite, arguments.repeat, figures)
        sqlite.close()
    if arguments.influx:
        from cloud.store.influx_v1 import InfluxV1SeriesStore
        from tests.conftest import start_influxd

        server = start_influxd()
        try:
            with InfluxV1SeriesStore(server.url, "plan_inputs") as influx:
                for start in range(0, len(points), 50_000):
                    influx.write(points[start : start + 50_000])
                measure("influx_v1", influx, arguments.repeat, figures)
        finally:
            server.remove()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
