"""Planning time and km of a day of the six towns, with the shipped fleets and calendars and without.

Run: `taskset -c 1 .venv/bin/python bench/fleet_plan.py` (about half a minute). The simulated world (edge/sim, seed 1)
gets random fills (seeded) every weekday of the week of Ascension 2026 (Thursday 14 May is a holiday in Hesse), and
once a world scaled to ~1,500 bins has every bin due (the heaviest case). Its last line is one JSON object with the
keys `plain_s_per_day`, `fleet_s_per_day`, `full_day_stops`, `full_day_fleet_s`, `km_plain`, `km_fleet`,
`full_day_km`.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.scheduler import LatestValue, PlanSettings, plan_day, work_window
from cloud.scheduler.fleet import load_town_planning
from edge.sim import build_world
from flurfunk.contracts import AssetKind, Quantity

FULL_DAY_SCALE = 3.5  # 424 bins at scale 1
WEEK = [date(2026, 5, 11) + timedelta(days=offset) for offset in range(5)]


def latest_values(world: object, day: date, rng: random.Random, low: float, high: float) -> dict:
    moment = work_window(day)[0] - timedelta(minutes=30)
    values = {}
    for asset in world.assets:  # type: ignore[attr-defined]
        if asset.kind is AssetKind.BIN:
            values[asset.id] = {Quantity.FILL_RATIO: LatestValue(rng.uniform(low, high), moment)}
        elif asset.kind in (AssetKind.TREE, AssetKind.GREEN_SPACE):
            values[asset.id] = {Quantity.SOIL_VWC: LatestValue(rng.uniform(0.05, 0.3), moment)}
    return values


def main() -> None:
    world = build_world(1)
    planning = load_town_planning()
    settings = PlanSettings()
    rng = random.Random(7)
    totals = {"plain": [0.0, 0.0], "fleet": [0.0, 0.0]}
    print("day         plain s  plain km  fleet s  fleet km  routes  reloads  unserved")
    for day in WEEK:
        latest = latest_values(world, day, rng, 0.2, 1.05)
        started = time.perf_counter()
        plain = plan_day(day, world.depots, world.assets, latest, settings)
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        fleet = plan_day(
            day, world.depots, world.assets, latest, settings, fleet=planning.fleet, calendar=planning.calendar
        )
        fleet_s = time.perf_counter() - started
        plain_km = sum(route.km for route in plain.routes)
        fleet_km = sum(route.km for route in fleet.routes)
        reloads = sum(len(route.reloads) for route in fleet.routes)
        unserved = sum("Route" in reason for _, reason in fleet.skipped)
        totals["plain"][0] += plain_s
        totals["plain"][1] += plain_km
        totals["fleet"][0] += fleet_s
        totals["fleet"][1] += fleet_km
        print(
            f"{day} {day:%a} {plain_s:6.2f} {plain_km:9.1f} {fleet_s:8.2f} {fleet_km:9.1f} {len(fleet.routes):7d}"
            f" {reloads:8d} {unserved:9d}"
        )
    # Every bin due at once, in a world scaled to ~1,500 bins: the heaviest day (issue 6: 1,500 stops in <= 30 s).
    full_day = WEEK[0]
    big = build_world(1, scale=FULL_DAY_SCALE)
    latest = latest_values(big, full_day, rng, 0.95, 1.0)
    started = time.perf_counter()
    full = plan_day(
        full_day, big.depots, big.assets, latest, settings, fleet=planning.fleet, calendar=planning.calendar
    )
    full_s = time.perf_counter() - started
    stops = sum(len(route.stops) for route in full.routes)
    late = sum(1 for route in full.routes if route.late_s > 0)
    reloads = sum(len(route.reloads) for route in full.routes)
    full_km = sum(route.km for route in full.routes)
    print(
        f"every bin due: {stops} stops on {len(full.routes)} routes, {full_km:.1f} km, in {full_s:.2f} s,"
        f" {reloads} reloads, {late} late"
    )
    days = len(WEEK)
    print(
        json.dumps(
            {
                "plain_s_per_day": round(totals["plain"][0] / days, 3),
                "fleet_s_per_day": round(totals["fleet"][0] / days, 3),
                "full_day_stops": stops,
                "full_day_fleet_s": round(full_s, 3),
                "km_plain": round(totals["plain"][1], 1),
                "km_fleet": round(totals["fleet"][1], 1),
                "full_day_km": round(full_km, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
