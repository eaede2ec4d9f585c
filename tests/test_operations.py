"""The planner with fill histories and the water balance, and the calibrated bin usage of the simulated towns."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from cloud.scheduler.fill import BinHistory
from cloud.scheduler.planning import PlanSettings, SchedulerError, plan_day
from cloud.scheduler.water import DailyWeather, TownWeather, WateringInput, WateringSite, young_tree_site
from edge.sim.world import BIN_SITE_SHARES, bin_usage, build_world, fill_events
from flurfunk.contracts import Asset, AssetKind, Depot, TaskKind

TOWN = "Wächtersbach"
DEPOT = Depot(name="Bauhof", municipality=TOWN, latitude=50.255, longitude=9.29)
MONDAY = date(2026, 7, 13)
PLAN_TIME = datetime(2026, 7, 13, 4, 0, tzinfo=UTC)  # 06:00 CEST
DAILY_ROUNDS = PlanSettings(collection_weekdays=(0, 1, 2, 3, 4))


def a_bin(asset_id: str, east_m: float = 0.0) -> Asset:
    return Asset(
        id=asset_id,
        kind=AssetKind.BIN,
        municipality=TOWN,
        village="Wächtersbach",
        latitude=50.26,
        longitude=9.30 + east_m / 71_000.0,
        capacity_l=240,
        waste_type="residual",
    )


def history(asset_id: str, level_now: float, rate_per_day: float, days: int = 14) -> BinHistory:
    hours = np.arange(days * 24)
    times = PLAN_TIME.timestamp() - (hours[::-1] + 1) * 3600.0
    fills = level_now - rate_per_day * (hours[::-1] + 1) / 24.0
    fills = np.where(fills < 0, fills % 0.9, fills)  # emptied whenever it would have passed 90 %
    return BinHistory(asset_id, times, fills + np.random.default_rng(1).normal(0.0, 0.005, hours.size))


def test_a_bin_that_will_overflow_before_the_next_run_goes_and_a_slow_one_waits() -> None:
    bins = [a_bin("fast"), a_bin("slow", 300)]
    histories = {"fast": history("fast", 0.55, 0.3), "slow": history("slow", 0.55, 0.03)}
    plan = plan_day(MONDAY, [DEPOT], bins, {}, DAILY_ROUNDS, bin_history=histories)
    collect = {task.asset: task for task in plan.tasks if task.kind is TaskKind.COLLECT}
    assert set(collect) == {"fast"}
    assert collect["fast"].evidence["fill_ratio_next_run"] >= 1.0
    assert "voraussichtlich" in collect["fast"].reason
    assert plan.routes and plan.routes[0].stops == ["fast"]


def test_an_optional_bin_rides_along_when_near_and_full_enough_but_not_when_far() -> None:
    bins = [a_bin("must"), a_bin("near", 50), a_bin("far", 20_000)]
    histories = {
        "must": history("must", 0.8, 0.3),
        "near": history("near", 0.7, 0.05),
        "far": history("far", 0.7, 0.05),
    }
    plan = plan_day(MONDAY, [DEPOT], bins, {}, DAILY_ROUNDS, bin_history=histories)
    collected = {task.asset for task in plan.tasks if task.kind is TaskKind.COLLECT}
    assert collected == {"must", "near"}
    near = next(task for task in plan.tasks if task.asset == "near")
    assert near.evidence["detour_km"] < 0.2


def test_off_round_days_wait_for_the_last_possible_working_day() -> None:
    bins = [a_bin("b")]
    # Rounds on Mondays only; it is Tuesday, the bin reaches 100 % in about three days: not yet.
    tuesday = MONDAY + timedelta(days=1)
    hist = history("b", 0.6, 0.13)
    shifted = BinHistory("b", hist.times_s + 86400.0, hist.fill_ratio)
    weekly = PlanSettings(collection_weekdays=(0,))
    assert not plan_day(tuesday, [DEPOT], bins, {}, weekly, bin_history={"b": shifted}).tasks
    nearly = history("b", 0.85, 0.13)
    shifted = BinHistory("b", nearly.times_s + 86400.0, nearly.fill_ratio)
    tasks = plan_day(tuesday, [DEPOT], bins, {}, weekly, bin_history={"b": shifted}).tasks
    assert [task.kind for task in tasks] == [TaskKind.COLLECT]


def test_stale_fill_history_is_skipped_with_a_reason() -> None:
    old = history("b", 0.95, 0.2)
    stale = BinHistory("b", old.times_s - 2 * 86400.0, old.fill_ratio)
    plan = plan_day(MONDAY, [DEPOT], [a_bin("b")], {}, DAILY_ROUNDS, bin_history={"b": stale})
    assert not plan.tasks and plan.skipped and plan.skipped[0][0] == "b"


def test_the_water_balance_makes_watering_tasks_with_litres_and_young_trees_first() -> None:
    place = {"kind": AssetKind.TREE, "municipality": TOWN, "village": "Aufenau", "longitude": 9.3}
    young = Asset(id="t-young", latitude=50.26, planting_year=2024, **place)
    old = Asset(id="t-old", latitude=50.261, planting_year=1970, **place)
    new = Asset(id="t-new", latitude=50.262, planting_year=MONDAY.year, **place)
    sites = [
        WateringSite(asset="t-young", municipality=TOWN, soil="loam", planting_year=2024),
        WateringSite(asset="t-old", municipality=TOWN, soil="loam", planting_year=1970),
        young_tree_site("t-new", TOWN, "loam", planting_year=MONDAY.year, season_year=MONDAY.year),
    ]
    dry_week = [
        DailyWeather(MONDAY - timedelta(days=k), temperature_max_c=30.0, temperature_min_c=16.0, rain_mm=0.0)
        for k in range(7, 0, -1)
    ]
    watering = WateringInput(sites=sites, weather={TOWN: TownWeather(50.26, 150.0, dry_week)})
    plan = plan_day(MONDAY, [DEPOT], [young, old, new], {}, DAILY_ROUNDS, watering=watering)
    water = {task.asset: task for task in plan.tasks if task.kind is TaskKind.WATER}
    assert set(water) == {"t-young", "t-old", "t-new"}
    # The first-summer root ball first, then the other young trees, then the old ones.
    assert water["t-new"].priority > water["t-young"].priority > water["t-old"].priority
    assert water["t-young"].evidence["litres"] > 0
    assert "l gießen" in water["t-young"].reason
    assert len([route for route in plan.routes if route.kind is TaskKind.WATER]) == 1


def test_forecast_settings_are_checked() -> None:
    with pytest.raises(SchedulerError, match="forecast_may_fill"):
        PlanSettings(forecast_may_fill=0.9, forecast_must_fill=0.8)


def test_calibrated_bin_usage_is_seeded_and_spans_the_site_kinds() -> None:
    world = build_world(seed=5, scale=2.0)
    usage = bin_usage(world)
    again = bin_usage(build_world(seed=5, scale=2.0))
    assert usage.sites == again.sites and np.array_equal(usage.daily_rate, again.daily_rate)
    assert set(usage.sites) == set(BIN_SITE_SHARES)
    days_to_full = 1.0 / usage.daily_rate
    # Weekly emptying finds the median bin about half full: the median bin takes about two weeks to fill.
    assert 10.0 < float(np.median(days_to_full)) < 20.0
    bus_stops = usage.daily_rate[np.array(usage.sites) == "bus_stop"]
    edges = usage.daily_rate[np.array(usage.sites) == "village_edge"]
    assert np.median(bus_stops) > 2 * np.median(edges)
    events = fill_events(world, 56)
    assert events == fill_events(build_world(seed=5, scale=2.0), 56)
    assert 6 <= len(events) <= 30 and all(1 <= event.days <= 3 for event in events)


def test_routes_can_be_ordered_by_pyvrp_and_are_no_longer_than_two_opt() -> None:
    bins = [a_bin(f"b-{k}", east_m=float(k * 137 % 900)) for k in range(8)]
    histories = {b.id: history(b.id, 0.9, 0.2) for b in bins}
    quick = plan_day(MONDAY, [DEPOT], bins, {}, DAILY_ROUNDS, bin_history=histories)
    vrp_settings = PlanSettings(collection_weekdays=(0, 1, 2, 3, 4), vrp_time_limit_s=2.0, vrp_max_iterations=500)
    vrp = plan_day(MONDAY, [DEPOT], bins, {}, vrp_settings, bin_history=histories)
    assert sorted(vrp.routes[0].stops) == sorted(quick.routes[0].stops) == sorted(b.id for b in bins)
    assert vrp.routes[0].km <= quick.routes[0].km + 0.01
