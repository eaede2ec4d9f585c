"""The first planner: tasks from thresholds, skipped readings, deterministic ids, routes and the fixed baseline."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.scheduler import (
    EARTH_RADIUS_KM,
    MAX_ROUTE_STOPS,
    DayPlan,
    LatestValue,
    MissingDepotError,
    PlanSettings,
    RouteInputError,
    SchedulerError,
    build_route,
    fixed_schedule_km,
    haversine_km,
    plan_day,
    route_km,
    task_id,
    watering_litres,
    work_window,
)
from cloud.scheduler.geo import distance_matrix_km
from cloud.scheduler.routing import nearest_neighbour, tour_km, two_opt
from cloud.scheduler.water import DailyWeather, TownWeather, WateringInput, WateringSite
from flurfunk.contracts import Asset, AssetKind, Depot, Quantity, TaskKind

DAY = date(2026, 7, 14)
FRESH = datetime(2026, 7, 14, 3, 30, tzinfo=UTC)  # 05:30 in Berlin, half an hour before work starts
TOWN = "Bad Orb"
DEPOT = Depot(municipality=TOWN, name="Bauhof Bad Orb", latitude=50.2270, longitude=9.3480)
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180


def make_asset(
    asset_id: str,
    kind: AssetKind = AssetKind.BIN,
    latitude: float = 50.2300,
    longitude: float = 9.3500,
    municipality: str = TOWN,
    planting_year: int | None = None,
) -> Asset:
    return Asset(
        id=asset_id,
        kind=kind,
        municipality=municipality,
        village=municipality,
        latitude=latitude,
        longitude=longitude,
        planting_year=planting_year,
    )


# Most tests pin the thresholds of a town whose round runs every day, so the rules read plainly.
DAILY = PlanSettings(collection_weekdays=tuple(range(7)), collect_threshold=0.8, collect_opportunistic=0.6)


def plan_daily(*args: object, **kwargs: object) -> DayPlan:
    if len(args) < 5 and "settings" not in kwargs:
        kwargs["settings"] = DAILY
    return plan_day(*args, **kwargs)


def fresh(value: float, *flags: str) -> LatestValue:
    return LatestValue(value=value, time=FRESH, flags=flags)


def kinds_by_asset(plan: DayPlan) -> set[tuple[str, TaskKind]]:
    return {(task.asset, task.kind) for task in plan.tasks}


# --- thresholds -----------------------------------------------------------------------------------------------


def test_thresholds_produce_exactly_the_expected_tasks() -> None:
    assets = [
        make_asset("bin-full", latitude=50.2400),
        make_asset("bin-at-threshold", latitude=50.2410),
        make_asset("bin-below-opportunistic", latitude=50.2420),
        make_asset("tree-dry", AssetKind.TREE, latitude=50.2300),
        make_asset("tree-at-threshold", AssetKind.TREE, latitude=50.2310),
        make_asset("green-dry", AssetKind.GREEN_SPACE, latitude=50.2320),
        make_asset("station", AssetKind.WEATHER_STATION),
    ]
    latest = {
        "bin-full": {Quantity.FILL_RATIO: fresh(1.02), Quantity.BATTERY_PCT: fresh(15.0)},
        "bin-at-threshold": {Quantity.FILL_RATIO: fresh(0.8), Quantity.BATTERY_PCT: fresh(14.9)},
        "bin-below-opportunistic": {Quantity.FILL_RATIO: fresh(0.59)},
        "tree-dry": {Quantity.SOIL_VWC: fresh(0.149), Quantity.BATTERY_V: fresh(3.0)},
        "tree-at-threshold": {Quantity.SOIL_VWC: fresh(0.15), Quantity.BATTERY_V: fresh(2.99)},
        "green-dry": {Quantity.SOIL_VWC: fresh(0.05)},
        "station": {Quantity.BATTERY_V: fresh(2.5)},
    }
    plan = plan_daily(DAY, [DEPOT], assets, latest)
    assert kinds_by_asset(plan) == {
        ("bin-full", TaskKind.COLLECT),
        ("bin-at-threshold", TaskKind.COLLECT),
        ("bin-at-threshold", TaskKind.INSPECT),
        ("tree-dry", TaskKind.WATER),
        ("tree-at-threshold", TaskKind.INSPECT),
        ("green-dry", TaskKind.WATER),
        ("station", TaskKind.INSPECT),
    }
    assert plan.skipped == []
    must_go = [task for task in plan.tasks if task.kind is TaskKind.COLLECT]
    assert all(task.evidence["threshold"] == 0.8 and "detour_km" not in task.evidence for task in must_go)
    assert {(route.kind, tuple(sorted(route.stops))) for route in plan.routes} == {
        (TaskKind.COLLECT, ("bin-at-threshold", "bin-full")),
        (TaskKind.WATER, ("green-dry", "tree-dry")),
    }


def test_half_full_bin_on_the_way_is_taken_along_and_a_remote_one_is_not() -> None:
    # Must-go bin 2 km north of the depot; one half-full bin half way along that road, one 3 km east of it.
    assets = [
        make_asset("bin-must", latitude=50.2450, longitude=9.3480),
        make_asset("bin-on-the-way", latitude=50.2360, longitude=9.3481),
        make_asset("bin-remote", latitude=50.2360, longitude=9.3900),
    ]
    latest = {
        "bin-must": {Quantity.FILL_RATIO: fresh(0.85)},
        "bin-on-the-way": {Quantity.FILL_RATIO: fresh(0.7)},
        "bin-remote": {Quantity.FILL_RATIO: fresh(0.79)},
    }
    plan = plan_daily(DAY, [DEPOT], assets, latest)
    assert kinds_by_asset(plan) == {("bin-must", TaskKind.COLLECT), ("bin-on-the-way", TaskKind.COLLECT)}
    taken_along = next(task for task in plan.tasks if task.asset == "bin-on-the-way")
    assert 0 <= float(taken_along.evidence["detour_km"]) < 0.5
    assert taken_along.priority < next(task for task in plan.tasks if task.asset == "bin-must").priority
    assert sorted(plan.routes[0].stops) == ["bin-must", "bin-on-the-way"]


def test_half_full_bins_alone_start_no_route() -> None:
    assets = [make_asset("bin-next-to-depot", latitude=50.2271, longitude=9.3481)]
    plan = plan_daily(DAY, [DEPOT], assets, {"bin-next-to-depot": {Quantity.FILL_RATIO: fresh(0.79)}})
    assert plan.tasks == []
    assert plan.routes == []


def test_opportunistic_detour_limit_is_respected() -> None:
    must = make_asset("bin-must", latitude=50.2450)
    nearby = [make_asset(f"bin-half-{index}", latitude=50.2300 + index * 0.001, longitude=9.3520) for index in range(8)]
    latest = {"bin-must": {Quantity.FILL_RATIO: fresh(0.9)}}
    latest |= {asset.id: {Quantity.FILL_RATIO: fresh(0.65)} for asset in nearby}
    strict = plan_daily(DAY, [DEPOT], [must, *nearby], latest, replace(DAILY, opportunistic_detour_km=0.0))
    generous = plan_daily(DAY, [DEPOT], [must, *nearby], latest, replace(DAILY, opportunistic_detour_km=5.0))
    assert kinds_by_asset(strict) == {("bin-must", TaskKind.COLLECT)}
    assert len(generous.tasks) == 9
    for task in generous.tasks:
        if task.asset != "bin-must":
            assert float(task.evidence["detour_km"]) < 5.0


@settings(max_examples=40, deadline=None)
@given(fills=st.lists(st.floats(min_value=0.0, max_value=1.2), min_size=1, max_size=25), seed=st.integers(0, 10**6))
def test_collect_tasks_cover_every_full_bin_and_no_bin_below_the_lower_threshold(fills: list[float], seed: int) -> None:
    rng = random.Random(seed)
    assets = [
        make_asset(f"bin-{index:02d}", latitude=50.22 + rng.random() * 0.03, longitude=9.33 + rng.random() * 0.04)
        for index in range(len(fills))
    ]
    latest = {asset.id: {Quantity.FILL_RATIO: fresh(fill)} for asset, fill in zip(assets, fills, strict=True)}
    plan = plan_daily(DAY, [DEPOT], assets, latest)
    collected = {task.asset for task in plan.tasks if task.kind is TaskKind.COLLECT}
    fill_of = {asset.id: fill for asset, fill in zip(assets, fills, strict=True)}
    assert {asset for asset, fill in fill_of.items() if fill >= 0.8} <= collected
    assert all(fill_of[asset] >= 0.6 for asset in collected)
    routed = [stop for route in plan.routes for stop in route.stops]
    assert sorted(routed) == sorted(collected)


# --- skipped readings -----------------------------------------------------------------------------------------


def test_flagged_stale_and_missing_readings_are_skipped_with_their_reason() -> None:
    assets = [
        make_asset("bin-flagged"),
        make_asset("bin-stale"),
        make_asset("bin-silent"),
        make_asset("tree-battery-flagged", AssetKind.TREE),
    ]
    six_hours_and_a_minute_before_work = datetime(2026, 7, 13, 21, 59, tzinfo=UTC)
    latest = {
        "bin-flagged": {Quantity.FILL_RATIO: fresh(0.95, "sensor_blocked", "out_of_range")},
        "bin-stale": {Quantity.FILL_RATIO: LatestValue(0.99, six_hours_and_a_minute_before_work)},
        "tree-battery-flagged": {Quantity.SOIL_VWC: fresh(0.30), Quantity.BATTERY_V: fresh(2.1, "spike")},
    }
    plan = plan_daily(DAY, [DEPOT], assets, latest)
    assert plan.tasks == []
    assert plan.routes == []
    reasons = dict(plan.skipped)
    assert list(reasons) == ["bin-flagged", "bin-silent", "bin-stale", "tree-battery-flagged"]
    assert reasons["bin-flagged"] == (
        "Füllstand an bin-flagged nicht berücksichtigt: Messwert ist markiert (out_of_range, sensor_blocked)."
    )
    assert reasons["bin-stale"] == (
        "Füllstand an bin-stale nicht berücksichtigt: letzter Messwert ist 6.0 h alt (Grenze 6.0 h)."
    )
    assert reasons["bin-silent"] == "Füllstand an bin-silent nicht berücksichtigt: kein Messwert vorhanden."
    assert reasons["tree-battery-flagged"].startswith("Batteriespannung an tree-battery-flagged")


def test_a_reading_exactly_stale_after_old_is_still_acted_on() -> None:
    six_hours_before_work = datetime(2026, 7, 13, 22, 0, tzinfo=UTC)
    assets = [make_asset("bin-1")]
    plan = plan_daily(DAY, [DEPOT], assets, {"bin-1": {Quantity.FILL_RATIO: LatestValue(0.9, six_hours_before_work)}})
    assert kinds_by_asset(plan) == {("bin-1", TaskKind.COLLECT)}


def test_as_of_moves_the_staleness_reference() -> None:
    evening_before = datetime(2026, 7, 13, 18, 0, tzinfo=UTC)
    latest = {"bin-1": {Quantity.FILL_RATIO: LatestValue(0.9, evening_before - timedelta(hours=1))}}
    assets = [make_asset("bin-1")]
    assert plan_daily(DAY, [DEPOT], assets, latest).tasks == []
    planned_the_evening_before = plan_daily(DAY, [DEPOT], assets, latest, as_of=evening_before)
    assert kinds_by_asset(planned_the_evening_before) == {("bin-1", TaskKind.COLLECT)}


# --- ids, determinism, windows, texts -------------------------------------------------------------------------


def scenario() -> tuple[list[Asset], dict[str, dict[Quantity, LatestValue]]]:
    rng = random.Random(7)
    assets: list[Asset] = []
    latest: dict[str, dict[Quantity, LatestValue]] = {}
    for index in range(40):
        kind = (AssetKind.BIN, AssetKind.TREE, AssetKind.GREEN_SPACE)[index % 3]
        asset = make_asset(
            f"{kind.value}-{index:03d}",
            kind,
            latitude=50.20 + rng.random() * 0.05,
            longitude=9.32 + rng.random() * 0.06,
            planting_year=2020 + index % 8 if kind is AssetKind.TREE else None,
        )
        assets.append(asset)
        quantity = Quantity.FILL_RATIO if kind is AssetKind.BIN else Quantity.SOIL_VWC
        value = rng.uniform(0.4, 1.0) if kind is AssetKind.BIN else rng.uniform(0.05, 0.3)
        latest[asset.id] = {quantity: fresh(value), Quantity.BATTERY_V: fresh(rng.uniform(2.8, 3.6))}
    return assets, latest


def test_same_input_gives_the_same_plan_whatever_the_order() -> None:
    assets, latest = scenario()
    first = plan_daily(DAY, [DEPOT], assets, latest)
    shuffled_assets = list(assets)
    random.Random(1).shuffle(shuffled_assets)
    shuffled_latest = dict(reversed(list(latest.items())))
    second = plan_daily(DAY, [DEPOT], shuffled_assets, shuffled_latest)
    assert first == second
    assert len({task.id for task in first.tasks}) == len(first.tasks)


def test_a_replan_with_new_values_keeps_the_task_ids() -> None:
    assets, latest = scenario()
    fuller = {
        asset_id: {quantity: fresh(min(1.2, value.value + 0.01)) for quantity, value in values.items()}
        for asset_id, values in latest.items()
    }
    before = {(task.asset, task.kind): task.id for task in plan_daily(DAY, [DEPOT], assets, latest).tasks}
    after = {(task.asset, task.kind): task.id for task in plan_daily(DAY, [DEPOT], assets, fuller).tasks}
    for key in before.keys() & after.keys():
        assert before[key] == after[key]


def test_task_ids_depend_on_day_kind_and_asset_only() -> None:
    assert task_id(DAY, TaskKind.COLLECT, "bin-1") == task_id(DAY, TaskKind.COLLECT, "bin-1")
    variants = {
        task_id(DAY, TaskKind.COLLECT, "bin-1"),
        task_id(DAY + timedelta(days=1), TaskKind.COLLECT, "bin-1"),
        task_id(DAY, TaskKind.INSPECT, "bin-1"),
        task_id(DAY, TaskKind.COLLECT, "bin-2"),
    }
    assert len(variants) == 4


@given(st.lists(st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True), min_size=2, max_size=6, unique=True))
def test_task_ids_stay_short_and_distinct_for_long_asset_ids(asset_ids: list[str]) -> None:
    ids = [task_id(DAY, TaskKind.WATER, asset_id) for asset_id in asset_ids]
    assert all(1 <= len(one) <= 64 for one in ids)
    assert len(set(ids)) == len(ids)


def test_due_window_is_six_to_three_berlin_time_in_utc() -> None:
    summer_start, summer_end = work_window(date(2026, 7, 14))
    winter_start, winter_end = work_window(date(2026, 1, 14))
    assert (summer_start, summer_end) == (datetime(2026, 7, 14, 4, tzinfo=UTC), datetime(2026, 7, 14, 13, tzinfo=UTC))
    assert (winter_start, winter_end) == (datetime(2026, 1, 14, 5, tzinfo=UTC), datetime(2026, 1, 14, 14, tzinfo=UTC))
    plan = plan_daily(DAY, [DEPOT], [make_asset("bin-1")], {"bin-1": {Quantity.FILL_RATIO: fresh(0.9)}})
    assert (plan.tasks[0].due_from, plan.tasks[0].due_until) == (summer_start, summer_end)


def test_reasons_in_german_and_english_and_evidence_carries_the_numbers() -> None:
    assets = [make_asset("bin-7"), make_asset("tree-3", AssetKind.TREE, planting_year=2025)]
    latest = {"bin-7": {Quantity.FILL_RATIO: fresh(0.87)}, "tree-3": {Quantity.SOIL_VWC: fresh(0.08)}}
    german = {task.kind: task for task in plan_daily(DAY, [DEPOT], assets, latest).tasks}
    english = {task.kind: task for task in plan_daily(DAY, [DEPOT], assets, latest, language="en").tasks}
    assert german[TaskKind.COLLECT].reason == "Behälter bin-7 ist zu 87 % gefüllt (Schwelle 80 %)."
    assert english[TaskKind.COLLECT].reason == "Bin bin-7 is 87% full (threshold 80%)."
    assert german[TaskKind.WATER].reason == (
        "Boden bei tree-3 ist trocken: 8 % Wassergehalt (Schwelle 15 %); 200 l gießen."
    )
    assert english[TaskKind.WATER].reason == "Soil at tree-3 is dry: 8% water content (threshold 15%); water 200 L."
    assert german[TaskKind.COLLECT].evidence == {
        "fill_ratio": 0.87,
        "threshold": 0.8,
        "reading_time": "2026-07-14T03:30:00Z",
    }
    assert german[TaskKind.WATER].evidence["litres"] == 200.0
    skipped_en = plan_daily(DAY, [DEPOT], [make_asset("bin-9")], {}, language="en").skipped
    assert skipped_en == [("bin-9", "Fill level at bin-9 not acted on: there is no reading.")]


def test_watering_litres_and_priority_follow_tree_age() -> None:
    young = make_asset("tree-young", AssetKind.TREE, planting_year=2024)
    old = make_asset("tree-old", AssetKind.TREE, planting_year=1990)
    unknown = make_asset("tree-unknown", AssetKind.TREE)
    green = make_asset("green-1", AssetKind.GREEN_SPACE)
    assert watering_litres(young, DAY) == 150.0
    assert watering_litres(make_asset("t", AssetKind.TREE, planting_year=2026), DAY) == 200.0
    assert watering_litres(make_asset("t", AssetKind.TREE, planting_year=2021), DAY) == 100.0
    assert watering_litres(make_asset("t", AssetKind.TREE, planting_year=2020), DAY) == 80.0
    assert watering_litres(old, DAY) == 80.0
    assert watering_litres(unknown, DAY) == 80.0
    assert watering_litres(green, DAY) == 400.0
    latest = {asset.id: {Quantity.SOIL_VWC: fresh(0.1)} for asset in (young, old, green)}
    priority = {task.asset: task.priority for task in plan_daily(DAY, [DEPOT], [young, old, green], latest).tasks}
    assert priority["tree-young"] > priority["tree-old"]


def test_every_routed_task_points_at_the_route_that_visits_it() -> None:
    assets, latest = scenario()
    plan = plan_daily(DAY, [DEPOT], assets, latest)
    routes = {route.id: route for route in plan.routes}
    assert len(routes) == 2
    for task in plan.tasks:
        if task.kind in (TaskKind.COLLECT, TaskKind.WATER):
            assert task.route_id is not None
            assert task.asset in routes[task.route_id].stops
            assert routes[task.route_id].kind is task.kind
        else:
            assert task.route_id is None
    for route in plan.routes:
        assert route.polyline[0] == route.polyline[-1] == (DEPOT.latitude, DEPOT.longitude)
        assert len(route.polyline) == len(route.stops) + 2


def test_one_route_per_town_and_kind_and_unrouted_tasks_without_depot() -> None:
    steinau_depot = Depot(municipality="Steinau an der Straße", name="Bauhof", latitude=50.3137, longitude=9.4627)
    assets = [
        make_asset("orb-bin", latitude=50.2300),
        make_asset("steinau-bin", latitude=50.3150, longitude=9.4600, municipality="Steinau an der Straße"),
        make_asset("sinntal-bin", latitude=50.3200, longitude=9.6500, municipality="Sinntal"),
    ]
    latest = {asset.id: {Quantity.FILL_RATIO: fresh(0.9)} for asset in assets}
    plan = plan_daily(DAY, [DEPOT, steinau_depot], assets, latest)
    assert sorted((route.municipality, route.stops[0]) for route in plan.routes) == [
        ("Bad Orb", "orb-bin"),
        ("Steinau an der Straße", "steinau-bin"),
    ]
    assert next(task for task in plan.tasks if task.asset == "sinntal-bin").route_id is None
    assert all(len(route.id) <= 64 for route in plan.routes)


def test_bad_input_gets_a_clear_error() -> None:
    with pytest.raises(SchedulerError, match="time zone"):
        LatestValue(0.5, datetime(2026, 7, 14, 6, 0))
    with pytest.raises(SchedulerError, match="finite"):
        LatestValue(math.nan, FRESH)
    with pytest.raises(SchedulerError, match="appears more than once"):
        plan_daily(DAY, [DEPOT], [make_asset("bin-1"), make_asset("bin-1")], {})
    with pytest.raises(SchedulerError, match="collect_opportunistic"):
        PlanSettings(collect_opportunistic=0.9, collect_threshold=0.8)
    with pytest.raises(RouteInputError, match="more than once"):
        build_route(DEPOT, [make_asset("bin-1"), make_asset("bin-1")], 1.3)
    with pytest.raises(RouteInputError, match="at most"):
        build_route(DEPOT, [make_asset(f"b{index}") for index in range(MAX_ROUTE_STOPS + 1)], 1.3)


# --- routes ---------------------------------------------------------------------------------------------------


def test_route_km_of_a_square_at_the_equator() -> None:
    side = 0.01  # degrees: along the equator and a meridian both are great circles
    depot = Depot(municipality="Test", name="corner", latitude=0.0, longitude=0.0)
    corners = [
        make_asset("a", latitude=0.0, longitude=side),
        make_asset("b", latitude=side, longitude=side),
        make_asset("c", latitude=side, longitude=0.0),
    ]
    perimeter_km = 4 * side * KM_PER_DEGREE
    assert route_km(depot, corners, 1.0) == pytest.approx(perimeter_km, rel=1e-6)
    assert route_km(depot, corners, 1.3) == pytest.approx(1.3 * perimeter_km, rel=1e-6)
    crossing = [corners[1], corners[0], corners[2]]  # corner → diagonal → corner: the legs cross
    assert route_km(depot, crossing, 1.0) > perimeter_km * 1.1
    ordered, km = build_route(depot, crossing, 1.0)
    assert km == pytest.approx(perimeter_km, rel=1e-6)
    assert [stop.id for stop in ordered] in (["a", "b", "c"], ["c", "b", "a"])
    assert haversine_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(111.195, abs=1e-3)


def test_two_opt_untangles_a_crossing_tour() -> None:
    points = [(0.0, 0.0), (0.0, 0.01), (0.01, 0.01), (0.01, 0.0)]
    distances = distance_matrix_km(points)
    tangled = np.array([2, 1, 3])
    assert tour_km(distances, two_opt(distances, tangled)) == pytest.approx(4 * 0.01 * KM_PER_DEGREE, rel=1e-6)


stop_coordinates = st.lists(
    st.tuples(st.floats(50.15, 50.40), st.floats(9.20, 9.70)), min_size=0, max_size=40, unique=True
)


@settings(max_examples=60, deadline=None)
@given(coordinates=stop_coordinates, road_factor=st.floats(1.0, 2.0))
def test_any_stops_give_a_permutation_at_least_as_long_as_the_farthest_out_and_back(
    coordinates: list[tuple[float, float]], road_factor: float
) -> None:
    stops = [make_asset(f"s{index}", latitude=lat, longitude=lon) for index, (lat, lon) in enumerate(coordinates)]
    ordered, km = build_route(DEPOT, stops, road_factor)
    assert sorted(stop.id for stop in ordered) == sorted(stop.id for stop in stops)
    assert km == pytest.approx(route_km(DEPOT, ordered, road_factor), rel=1e-9, abs=1e-9)
    farthest = max(
        (haversine_km(DEPOT.latitude, DEPOT.longitude, stop.latitude, stop.longitude) for stop in stops), default=0.0
    )
    assert km >= 2 * farthest * road_factor - 1e-9


@settings(max_examples=60, deadline=None)
@given(coordinates=stop_coordinates)
def test_two_opt_is_never_longer_than_nearest_neighbour_and_visits_each_stop_once(
    coordinates: list[tuple[float, float]],
) -> None:
    distances = distance_matrix_km([(DEPOT.latitude, DEPOT.longitude), *coordinates], 1.3)
    greedy = nearest_neighbour(distances)
    improved = two_opt(distances, greedy)
    assert sorted(improved.tolist()) == list(range(1, len(coordinates) + 1))
    assert tour_km(distances, improved) <= tour_km(distances, greedy) + 1e-9


# --- fixed-round baseline -------------------------------------------------------------------------------------


def baseline_assets() -> list[Asset]:
    bins = [make_asset(f"bin-{index}", latitude=50.23 + index * 0.003) for index in range(5)]
    trees = [make_asset(f"tree-{index}", AssetKind.TREE, longitude=9.36 + index * 0.004) for index in range(4)]
    return bins + trees


def test_fixed_schedule_is_one_round_per_interval_and_waters_only_from_may_to_september() -> None:
    assets = baseline_assets()
    collection_km = build_route(DEPOT, assets[:5], 1.3)[1]
    watering_km = build_route(DEPOT, assets[5:], 1.3)[1]
    assert fixed_schedule_km(7, [DEPOT], assets, start=date(2026, 7, 1)) == pytest.approx(collection_km + watering_km)
    assert fixed_schedule_km(7, [DEPOT], assets, start=date(2026, 1, 5)) == pytest.approx(collection_km)
    assert fixed_schedule_km(28, [DEPOT], assets, start=date(2026, 1, 5)) == pytest.approx(4 * collection_km)
    assert fixed_schedule_km(0, [DEPOT], assets, start=date(2026, 7, 1)) == 0.0
    # Rounds on 1, 8, 15, 22, 29 Sep; then 6 Oct brings a collection round and no watering round.
    september_km = fixed_schedule_km(30, [DEPOT], assets, start=date(2026, 9, 1))
    assert september_km == pytest.approx(5 * (collection_km + watering_km))
    assert fixed_schedule_km(37, [DEPOT], assets, start=date(2026, 9, 1)) == pytest.approx(september_km + collection_km)


def test_fixed_schedule_km_grows_with_day_count() -> None:
    steinau_depot = Depot(municipality="Steinau an der Straße", name="Bauhof", latitude=50.3137, longitude=9.4627)
    assets = [*baseline_assets(), make_asset("steinau-bin", latitude=50.32, municipality="Steinau an der Straße")]
    totals = [fixed_schedule_km(days, [DEPOT, steinau_depot], assets, start=date(2026, 6, 1)) for days in range(22)]
    assert all(earlier <= later for earlier, later in itertools.pairwise(totals))
    assert totals[0] == 0.0 < totals[1] < totals[2]  # the second town's turn comes on day two
    assert totals[14] < totals[15]


def test_fixed_schedule_needs_a_depot_in_every_town() -> None:
    with pytest.raises(MissingDepotError, match="Sinntal"):
        fixed_schedule_km(7, [DEPOT], [make_asset("b", municipality="Sinntal")], start=DAY)
    with pytest.raises(SchedulerError, match="day_count"):
        fixed_schedule_km(-1, [DEPOT], [], start=DAY)


# --- collection weekdays ------------------------------------------------------------------------------------


def test_round_days_take_bins_from_the_round_threshold_other_days_only_those_about_to_overflow() -> None:
    monday, tuesday = date(2026, 7, 13), date(2026, 7, 14)
    assets = [make_asset("bin-half", latitude=50.2400), make_asset("bin-nearly-full", latitude=50.2410)]

    def latest_on(day: date) -> dict[str, dict[Quantity, LatestValue]]:
        at = datetime.combine(day, time(5, 0), tzinfo=UTC)
        return {
            "bin-half": {Quantity.FILL_RATIO: LatestValue(0.65, at)},
            "bin-nearly-full": {Quantity.FILL_RATIO: LatestValue(0.92, at)},
        }

    settings = PlanSettings()  # rounds on Monday and Thursday
    on_round_day = plan_day(monday, [DEPOT], assets, latest_on(monday), settings)
    off_day = plan_day(tuesday, [DEPOT], assets, latest_on(tuesday), settings)
    assert {task.asset for task in on_round_day.tasks} == {"bin-half", "bin-nearly-full"}
    assert {task.asset for task in off_day.tasks} == {"bin-nearly-full"}
    assert "läuft bald über" in off_day.tasks[0].reason


def test_collection_weekdays_are_checked() -> None:
    with pytest.raises(SchedulerError, match="collection_weekdays"):
        PlanSettings(collection_weekdays=(7,))


def dry_days_until(day: date) -> WateringInput:
    """A dry week in Bad Orb before `DAY` and dry days up to `day`, for a 0.9 m loam pit (RAW 34.3 mm)."""
    site = WateringSite(
        asset="tree-1", municipality=TOWN, soil="loam", root_depth_m=0.9, area_m2=4.0, crop_factor=0.8,
        planting_year=2024,
    )  # fmt: skip
    measured = [
        DailyWeather(day=DAY - timedelta(days=7 - k), temperature_max_c=26.6, temperature_min_c=14.8, rain_mm=0.0)
        for k in range((day - DAY).days + 7)
    ]
    return WateringInput([site], {TOWN: TownWeather(50.2, 170.0, measured)}, horizon_days=1)


def test_watering_due_on_a_closed_day_moves_to_the_next_working_day() -> None:
    # A dry week in Bad Orb; a 0.9 m loam pit (RAW 34.3 mm) is past RAW after Wednesday but not after Tuesday.
    # Wednesday 15 July the Bauhof is closed: Tuesday's plan (next run normally Wednesday) must carry the tree to
    # Thursday, so it waters today what a two-day horizon asks; Wednesday plans no watering and says why;
    # Thursday waters again as usual.
    from cloud.scheduler.calendar import TownCalendar

    closed = date(2026, 7, 15)
    calendar = TownCalendar(TOWN, closed_days=frozenset({closed}))
    tree = make_asset("tree-1", AssetKind.TREE, planting_year=2024)

    def water_tasks(plan: DayPlan) -> list[str]:
        return [task.asset for task in plan.tasks if task.kind is TaskKind.WATER]

    tuesday = plan_daily(DAY, [DEPOT], [tree], {}, watering=dry_days_until(DAY))
    assert water_tasks(tuesday) == []  # without a calendar the tree waits for Wednesday's run
    with_calendar = plan_daily(DAY, [DEPOT], [tree], {}, watering=dry_days_until(DAY), calendar=calendar)
    two_days = plan_daily(DAY, [DEPOT], [tree], {}, watering=replace(dry_days_until(DAY), horizon_days=2))
    assert water_tasks(with_calendar) == ["tree-1"] == water_tasks(two_days)
    assert with_calendar.tasks[0].evidence["litres"] == two_days.tasks[0].evidence["litres"] > 0

    wednesday = plan_daily(closed, [DEPOT], [tree], {}, watering=dry_days_until(closed), calendar=calendar)
    assert water_tasks(wednesday) == [] and not [r for r in wednesday.routes if r.kind is TaskKind.WATER]
    assert wednesday.skipped == [
        (
            "tree-1",
            "tree-1: Gießen fällig, aber heute kein Arbeitstag (Bauhof geschlossen) – verschoben auf 16.07.2026.",
        )
    ]
    english = plan_daily(closed, [DEPOT], [tree], {}, language="en", watering=dry_days_until(closed), calendar=calendar)
    assert "moved to 2026-07-16" in english.skipped[0][1]
    thursday = date(2026, 7, 16)
    assert water_tasks(
        plan_daily(thursday, [DEPOT], [tree], {}, watering=dry_days_until(thursday), calendar=calendar)
    ) == ["tree-1"]


def test_with_watering_weekdays_the_tanker_goes_on_them_and_a_closed_one_moves_to_the_next_working_day() -> None:
    # The tanker goes on Wednesdays. A dry week in Bad Orb and a 0.9 m loam pit (RAW 34.3 mm, 3.4 mm a day): on
    # Tuesday it would be due, but the tanker does not go; Wednesday 15 July the Bauhof is closed, so the run moves
    # to Thursday, which waters what lasts until the next Wednesday (six days, as `horizon_days=6` gives it).
    from cloud.scheduler.calendar import TownCalendar
    from cloud.scheduler.planning import next_watering_day, watering_horizon_days

    closed, thursday = date(2026, 7, 15), date(2026, 7, 16)
    calendar = TownCalendar(TOWN, closed_days=frozenset({closed}))
    wednesdays = replace(DAILY, watering_weekdays=(2,))
    tree = make_asset("tree-1", AssetKind.TREE, planting_year=2024)

    def litres(plan: DayPlan) -> list[float]:
        return [float(task.evidence["litres"]) for task in plan.tasks if task.kind is TaskKind.WATER]

    assert next_watering_day(DAY, (2,)) == closed and next_watering_day(DAY, (2,), calendar) == thursday
    assert watering_horizon_days(thursday, (2,), calendar) == 6
    every_day = plan_daily(DAY, [DEPOT], [tree], {}, watering=replace(dry_days_until(DAY), horizon_days=2))
    assert litres(every_day) != []  # without watering weekdays Tuesday waters (the run is two days off)
    assert litres(plan_daily(DAY, [DEPOT], [tree], {}, wednesdays, watering=dry_days_until(DAY))) == []

    wednesday = plan_daily(closed, [DEPOT], [tree], {}, wednesdays, watering=dry_days_until(closed), calendar=calendar)
    assert litres(wednesday) == []
    assert [asset for asset, _ in wednesday.skipped] == ["tree-1"] and "16.07.2026" in wednesday.skipped[0][1]

    moved = plan_daily(thursday, [DEPOT], [tree], {}, wednesdays, watering=dry_days_until(thursday), calendar=calendar)
    six_days = plan_daily(thursday, [DEPOT], [tree], {}, watering=replace(dry_days_until(thursday), horizon_days=6))
    assert litres(moved) == litres(six_days) and litres(moved)[0] > 0
    friday = thursday + timedelta(days=1)
    assert litres(plan_daily(friday, [DEPOT], [tree], {}, wednesdays, watering=dry_days_until(friday))) == []


def test_the_measured_policy_spares_old_trees_but_not_green_spaces() -> None:
    # young_only: the Bauhof waters trees in years 1-5 only (old trees reach deeper water); a green space is no tree.
    from cloud.scheduler.inputs import nominal_site
    from cloud.scheduler.policy import MEASURED_POLICY

    old = make_asset("tree-old", AssetKind.TREE, planting_year=1990)
    lawn = make_asset("lawn-1", AssetKind.GREEN_SPACE, latitude=50.22)
    thursday = DAY + timedelta(days=2)  # a watering day of the measured policy (Mondays and Thursdays)
    measured = [
        DailyWeather(day=thursday - timedelta(days=14 - k), temperature_max_c=31.0, temperature_min_c=16.0, rain_mm=0.0)
        for k in range(14)
    ]
    weather = {TOWN: TownWeather(50.2, 170.0, measured)}
    sites = [nominal_site(old, thursday), nominal_site(lawn, thursday)]
    assert [site.is_tree for site in sites] == [True, False]
    watering = MEASURED_POLICY.watering.watering_input(sites, weather)
    assert MEASURED_POLICY.watering.is_watering_day(thursday)
    plan = plan_day(thursday, [DEPOT], [old, lawn], {}, MEASURED_POLICY.settings, watering=watering)
    assert [task.asset for task in plan.tasks if task.kind is TaskKind.WATER] == ["lawn-1"]
    all_trees = replace(watering, rules=replace(watering.rules, young_only=False))
    everyone = plan_day(thursday, [DEPOT], [old, lawn], {}, MEASURED_POLICY.settings, watering=all_trees)
    assert sorted(task.asset for task in everyone.tasks if task.kind is TaskKind.WATER) == ["lawn-1", "tree-old"]


def test_watering_weekdays_are_checked() -> None:
    with pytest.raises(SchedulerError, match="watering_weekdays"):
        PlanSettings(watering_weekdays=())
    with pytest.raises(SchedulerError, match="watering_weekdays"):
        PlanSettings(watering_weekdays=(2, 9))
