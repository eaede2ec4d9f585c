"""The planner with a fleet and a calendar: reload trips, waste types kept apart, shifts, holidays, market days; the
towns' planning file and its errors."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.scheduler import DayPlan, LatestValue, PlanSettings, plan_day, route_id
from cloud.scheduler.calendar import PlanningCalendar, TownCalendar, is_round_day
from cloud.scheduler.fill import BinHistory, fit_fill_model
from cloud.scheduler.fleet import (
    DEFAULT_TOWN_PLANNING,
    PlanningFileError,
    TownPlanning,
    load_town_planning,
    parse_town_planning,
    town_planning_from_mapping,
)
from cloud.scheduler.planning import work_window
from flurfunk.contracts import MUNICIPALITIES, Asset, AssetKind, Depot, Quantity, TaskKind

TOWN = "Bad Orb"
DEPOT = Depot(municipality=TOWN, name="Bauhof Bad Orb", latitude=50.2330, longitude=9.3390)
SITE = (50.2100, 9.3000)  # the disposal site of these tests, ~3.8 km from the yard
# Rounds every weekday, so that the fleet tests read plainly; the calendar tests set their own.
WEEKDAYS = PlanSettings(collection_weekdays=(0, 1, 2, 3, 4), collect_threshold=0.8, collect_opportunistic=0.6)
FRIDAY = date(2026, 7, 17)


def town_file(vehicles: str, extra: str = "") -> TownPlanning:
    return parse_town_planning(
        f"""
[routing]
time_limit_s = 5.0
max_iterations = 300
[sites.tip]
name = "Umladestation"
latitude = {SITE[0]}
longitude = {SITE[1]}
unload_min = 10
[towns."{TOWN}"]
{extra}
{vehicles}
""",
        "test-towns.toml",
    )


def a_bin(
    asset_id: str,
    latitude: float = 50.2300,
    longitude: float = 9.3500,
    waste_type: str = "residual",
    capacity_l: int = 240,
    village: str = TOWN,
) -> Asset:
    return Asset(
        id=asset_id,
        kind=AssetKind.BIN,
        municipality=TOWN,
        village=village,
        latitude=latitude,
        longitude=longitude,
        capacity_l=capacity_l,
        waste_type=waste_type,
    )


def filled(day: date, **fills: float) -> dict[str, dict[Quantity, LatestValue]]:
    moment = work_window(day)[0] - timedelta(minutes=30)
    return {asset: {Quantity.FILL_RATIO: LatestValue(value, moment)} for asset, value in fills.items()}


def plan(day: date, assets: list[Asset], fills: dict[str, float], planning: TownPlanning, **kwargs: object) -> DayPlan:
    return plan_day(
        day,
        [DEPOT],
        assets,
        filled(day, **fills),
        kwargs.pop("settings", WEEKDAYS),  # type: ignore[arg-type]
        fleet=planning.fleet,
        calendar=planning.calendar,
        **kwargs,  # type: ignore[arg-type]
    )


# -- fleet ------------------------------------------------------------------------------------------------------


def test_a_full_vehicle_drives_to_the_disposal_site_and_never_carries_more_than_it_holds() -> None:
    planning = town_file(
        '[[towns."Bad Orb".vehicles]]\nid = "truck"\nserves = "residual"\ncapacity_l = 3000\nreload_at = "tip"'
    )
    bins = [a_bin(f"bin-{n}", 50.2300 + 0.002 * n, 9.3500, capacity_l=1100) for n in range(6)]
    day_plan = plan(FRIDAY, bins, {asset.id: 1.0 for asset in bins}, planning)

    (route,) = day_plan.routes
    assert sorted(route.stops) == [asset.id for asset in bins]
    # 6 × 1,100 L in a 3,000 L body: at least three trips, so at least two visits to the tip in between.
    assert len(route.reloads) >= 2 and all(reload.site == "tip" for reload in route.reloads)
    assert len(route.trip_loads) == len(route.reloads) + 1
    assert max(route.trip_loads) <= 3000 and sum(route.trip_loads) == 6 * 1100
    assert route.polyline.count(SITE) == len(route.reloads)
    assert route.polyline[0] == route.polyline[-1] == (DEPOT.latitude, DEPOT.longitude)
    assert route.id == route_id(FRIDAY, TaskKind.COLLECT, TOWN)  # one vehicle: the id routes always had
    assert all(task.route_id == route.id for task in day_plan.tasks)


def test_two_waste_types_get_two_routes_and_are_never_mixed() -> None:
    planning = town_file(
        '[[towns."Bad Orb".vehicles]]\nid = "rest"\nserves = "residual"\ncapacity_l = 20000\n'
        '[[towns."Bad Orb".vehicles]]\nid = "papier"\nserves = "paper"\ncapacity_l = 20000'
    )
    bins = [
        a_bin(f"bin-{n}", 50.2300 + 0.001 * n, 9.3500 + 0.001 * (n % 3), "residual" if n % 2 else "paper")
        for n in range(8)
    ]
    day_plan = plan(FRIDAY, bins, {asset.id: 0.9 for asset in bins}, planning)

    assert len(day_plan.routes) == 2
    waste_of = {asset.id: asset.waste_type for asset in bins}
    served_by = {"rest": "residual", "papier": "paper"}
    for route in day_plan.routes:
        assert {waste_of[stop] for stop in route.stops} == {served_by[route.vehicle or ""]}
    assert sorted(stop for route in day_plan.routes for stop in route.stops) == sorted(waste_of)
    ids = {route.id for route in day_plan.routes}
    assert len(ids) == 2 and route_id(FRIDAY, TaskKind.COLLECT, TOWN) not in ids
    assert all(len(route_id) <= 64 for route_id in ids)


def test_the_shift_end_leaves_a_far_optional_bin_unserved_with_the_reason() -> None:
    planning = town_file(
        '[[towns."Bad Orb".vehicles]]\nid = "truck"\nserves = "residual"\ncapacity_l = 20000\nshift = "06:00-07:00"'
    )
    near = a_bin("near", 50.2340, 9.3400)
    far = a_bin("far", 50.4000, 9.3400)  # ~18.5 km north: 2 × 24 km of road at 30 km/h does not fit one hour
    generous = PlanSettings(
        collection_weekdays=(0, 1, 2, 3, 4),
        collect_threshold=0.8,
        collect_opportunistic=0.6,
        opportunistic_detour_km=200.0,  # worth any detour: only the shift can keep it out
    )
    for language, words in (("de", "Schicht (06:00–07:00)"), ("en", "shift (06:00–07:00)")):
        day_plan = plan(FRIDAY, [near, far], {"near": 0.95, "far": 0.7}, planning, settings=generous, language=language)
        assert [route.stops for route in day_plan.routes] == [["near"]]
        assert [task.asset for task in day_plan.tasks] == ["near"]  # an unserved optional bin is no task
        reasons = dict(day_plan.skipped)
        assert words in reasons["far"]

    # With a whole day's shift the same bin is worth it and goes along.
    long_day = town_file('[[towns."Bad Orb".vehicles]]\nid = "truck"\nserves = "residual"\ncapacity_l = 20000')
    day_plan = plan(FRIDAY, [near, far], {"near": 0.95, "far": 0.7}, long_day, settings=generous)
    assert sorted(day_plan.routes[0].stops) == ["far", "near"]


def test_a_required_stop_without_a_vehicle_stays_planned_without_route_and_says_why() -> None:
    planning = town_file('[[towns."Bad Orb".vehicles]]\nid = "truck"\nserves = "residual"\ncapacity_l = 20000')
    glass = a_bin("glass-1", waste_type="glass", capacity_l=1100)
    day_plan = plan(FRIDAY, [glass], {"glass-1": 0.95}, planning)
    assert day_plan.routes == []
    (task,) = day_plan.tasks
    assert task.asset == "glass-1" and task.route_id is None
    assert "Altglas" in dict(day_plan.skipped)["glass-1"]


def test_two_identical_vehicles_get_stable_distinct_route_ids() -> None:
    planning = town_file(
        '[[towns."Bad Orb".vehicles]]\nid = "truck"\nserves = "residual"\ncount = 2\ncapacity_l = 2000\n'
        'shift = "06:00-08:00"\nreload_at = "tip"'
    )
    bins = [a_bin(f"bin-{n}", 50.2200 + 0.004 * n, 9.3300 + 0.003 * (n % 4), capacity_l=1100) for n in range(8)]
    first = plan(FRIDAY, bins, {asset.id: 1.0 for asset in bins}, planning)
    again = plan(FRIDAY, bins, {asset.id: 1.0 for asset in bins}, planning)
    assert [(r.id, r.stops) for r in first.routes] == [(r.id, r.stops) for r in again.routes]
    assert len(first.routes) == 2 and len({route.id for route in first.routes}) == 2
    assert {route.id for route in first.routes} == {
        route_id(FRIDAY, TaskKind.COLLECT, TOWN, vehicle="truck", copy=copy) for copy in (0, 1)
    }


def test_watering_respects_the_tank_and_refills_at_the_hydrant() -> None:
    planning = town_file(
        '[towns."Bad Orb".sites.hydrant]\nlatitude = 50.2330\nlongitude = 9.3390\nunload_min = 15\n'
        '[[towns."Bad Orb".vehicles]]\nid = "tanker"\nserves = "water"\ncapacity_l = 500\nreload_at = "hydrant"'
    )
    trees = [
        Asset(
            id=f"tree-{n}",
            kind=AssetKind.TREE,
            municipality=TOWN,
            village=TOWN,
            latitude=50.2300 + 0.001 * n,
            longitude=9.3500,
            planting_year=2025,  # young: 200 L each
        )
        for n in range(5)
    ]
    moment = work_window(FRIDAY)[0] - timedelta(minutes=30)
    latest = {tree.id: {Quantity.SOIL_VWC: LatestValue(0.05, moment)} for tree in trees}
    day_plan = plan_day(FRIDAY, [DEPOT], trees, latest, WEEKDAYS, fleet=planning.fleet, calendar=planning.calendar)
    (route,) = day_plan.routes
    assert route.kind is TaskKind.WATER and sorted(route.stops) == sorted(tree.id for tree in trees)
    assert max(route.trip_loads) <= 500 and sum(route.trip_loads) == 5 * 200
    assert len(route.reloads) >= 2 and {reload.site for reload in route.reloads} == {"hydrant"}


def test_without_fleet_a_round_per_waste_type_with_its_type_in_the_route_id() -> None:
    bins = [
        a_bin(f"bin-{n}", 50.2300 + 0.002 * n, 9.3500, waste_type="paper" if n % 2 else "residual") for n in range(5)
    ]
    fills = {asset.id: 0.95 for asset in bins}
    plain = plan_day(FRIDAY, [DEPOT], bins, filled(FRIDAY, **fills), WEEKDAYS)
    explicit = plan_day(FRIDAY, [DEPOT], bins, filled(FRIDAY, **fills), WEEKDAYS, fleet=None, calendar=None)
    assert plain == explicit
    paper, residual = plain.routes  # a truck carries one waste type, fleet or not
    assert sorted(paper.stops) == ["bin-1", "bin-3"] and sorted(residual.stops) == ["bin-0", "bin-2", "bin-4"]
    assert paper.id == route_id(FRIDAY, TaskKind.COLLECT, TOWN, waste_type="paper") and "-paper-" in paper.id
    assert residual.id == route_id(FRIDAY, TaskKind.COLLECT, TOWN, waste_type="residual") != paper.id
    assert all(route.vehicle is None and route.reloads == () for route in plain.routes)
    assert {task.route_id for task in plain.tasks} == {paper.id, residual.id}


def test_an_optional_bin_rides_only_on_a_round_of_its_own_waste_type() -> None:
    residual = a_bin("rest-full", 50.2300, 9.3500)
    paper_near = a_bin("paper-near", 50.2301, 9.3501, waste_type="paper")  # about 15 m from the full residual bin
    fills = {"rest-full": 0.9, "paper-near": 0.7}  # 0.7: worth a small detour (0.6-0.8), not a must
    alone = plan_day(FRIDAY, [DEPOT], [residual, paper_near], filled(FRIDAY, **fills), WEEKDAYS)
    assert [route.stops for route in alone.routes] == [["rest-full"]]  # no paper round, so the paper bin waits
    assert "paper-near" not in {task.asset for task in alone.tasks}
    paper_full = a_bin("paper-full", 50.2302, 9.3502, waste_type="paper")
    both = plan_day(
        FRIDAY, [DEPOT], [residual, paper_near, paper_full], filled(FRIDAY, **fills, **{"paper-full": 0.9}), WEEKDAYS
    )
    assert {route.id: sorted(route.stops) for route in both.routes} == {
        route_id(FRIDAY, TaskKind.COLLECT, TOWN, waste_type="paper"): ["paper-full", "paper-near"],
        route_id(FRIDAY, TaskKind.COLLECT, TOWN, waste_type="residual"): ["rest-full"],
    }


# -- calendar ---------------------------------------------------------------------------------------------------

MONDAY_THURSDAY = PlanSettings(collection_weekdays=(0, 3), collect_threshold=0.6, collect_opportunistic=0.4)
HESSE = PlanningCalendar({TOWN: TownCalendar(TOWN)})


def test_hesse_holidays_closed_days_and_moved_rounds() -> None:
    calendar = TownCalendar(TOWN, closed_days=frozenset({date(2026, 12, 28)}), closed_yearly=frozenset({(12, 24)}))
    assert calendar.holiday(date(2026, 6, 4)) == "Fronleichnam"  # Corpus Christi: a holiday in Hesse
    assert TownCalendar(TOWN, subdivision="BE").holiday(date(2026, 6, 4)) is None  # but not in Berlin
    assert calendar.holiday(date(2026, 12, 24)) == "Bauhof geschlossen"
    assert calendar.holiday(date(2027, 12, 24), "en") == "Works yard closed"
    assert not calendar.is_working_day(date(2026, 12, 28))
    # Easter 2026: Good Friday 3 April, Easter Monday 6 April. The Monday round moves to Tuesday.
    rounds = [
        day for day in (date(2026, 4, 1) + timedelta(days=n) for n in range(10)) if is_round_day(day, (0, 3), calendar)
    ]
    assert rounds == [date(2026, 4, 2), date(2026, 4, 7), date(2026, 4, 9)]
    assert is_round_day(date(2026, 4, 6), (0, 3), None)  # without a calendar Easter Monday is a Monday


def test_no_regular_round_on_a_holiday_only_the_overflowing_bin_and_the_round_moves_to_the_next_working_day() -> None:
    bins = [a_bin("half"), a_bin("brim", 50.2310)]
    easter_monday, tuesday = date(2026, 4, 6), date(2026, 4, 7)
    fills = {"half": 0.7, "brim": 0.95}

    holiday = plan_day(easter_monday, [DEPOT], bins, filled(easter_monday, **fills), MONDAY_THURSDAY, calendar=HESSE)
    assert [task.asset for task in holiday.tasks] == ["brim"]  # the emergency only
    plain = plan_day(easter_monday, [DEPOT], bins, filled(easter_monday, **fills), MONDAY_THURSDAY)
    assert sorted(task.asset for task in plain.tasks) == ["brim", "half"]  # the calendar made the difference

    moved = plan_day(tuesday, [DEPOT], bins, filled(tuesday, **fills), MONDAY_THURSDAY, calendar=HESSE)
    assert sorted(task.asset for task in moved.tasks) == ["brim", "half"]
    assert moved.routes and plan_day(tuesday, [DEPOT], bins, filled(tuesday, half=0.7), MONDAY_THURSDAY).tasks == []


def _steady_history(asset_id: str, until: datetime, fill_at_end: float, rate_per_day: float) -> BinHistory:
    """Two weeks of hourly readings rising at `rate_per_day`, emptied whenever they pass 90 %."""
    hours = np.arange(-14 * 24, 1, dtype=float)
    start = (fill_at_end - rate_per_day * 14) % 0.9
    readings = (start + rate_per_day * (hours + 14 * 24) / 24.0) % 0.9
    readings[-1] = fill_at_end
    return BinHistory(asset_id, until.timestamp() + hours * 3600.0, readings)


def test_a_bin_that_would_overflow_over_the_long_weekend_goes_before_it() -> None:
    # Maundy Thursday 2 April 2026 is a round day; the next round would be Easter Monday, which moves to Tuesday.
    thursday = date(2026, 4, 2)
    last_reading = work_window(thursday)[0] - timedelta(minutes=30)
    monday_end, tuesday_end = work_window(date(2026, 4, 6))[1], work_window(date(2026, 4, 7))[1]
    # The case: a bin the forecast sees full only after the run that Easter Monday would have been.
    for fill_now in np.arange(0.3, 0.85, 0.01):
        history = {"easter-bin": _steady_history("easter-bin", last_reading, float(fill_now), 0.1)}
        model = fit_fill_model(history["easter-bin"])
        if model.fill_at(monday_end.timestamp()) < 1.0 <= model.fill_at(tuesday_end.timestamp()):
            break
    else:
        pytest.fail("no fill level gives the long-weekend case")
    pinned = replace_forecast(MONDAY_THURSDAY)
    args = (thursday, [DEPOT], [a_bin("easter-bin")], {}, pinned)

    assert plan_day(*args, bin_history=history).tasks == []
    with_calendar = plan_day(*args, bin_history=history, calendar=HESSE)
    assert [task.asset for task in with_calendar.tasks] == ["easter-bin"]


def replace_forecast(base: PlanSettings) -> PlanSettings:
    from dataclasses import replace

    return replace(base, forecast_must_fill=1.0, forecast_may_fill=0.7, emergency_fill=None, emergency_prize_km=None)


def test_market_bins_are_visited_after_the_market_and_fill_faster() -> None:
    planning = town_file('[[towns."Bad Orb".vehicles]]\nid = "truck"\nserves = "residual"\ncapacity_l = 20000')
    market_file = town_file(
        '[[towns."Bad Orb".vehicles]]\nid = "truck"\nserves = "residual"\ncapacity_l = 20000\n'
        '[[towns."Bad Orb".markets]]\nname = "Wochenmarkt"\nweekdays = ["fr"]\nhours = "07:00-12:00"\n'
        'assets = ["square-1", "square-2"]\nfill_jump = 0.5',
    )
    bins = [a_bin("square-1", 50.2271, 9.3481), a_bin("square-2", 50.2272, 9.3483), a_bin("street", 50.2290)]
    fills = {asset.id: 0.9 for asset in bins}
    day_plan = plan(FRIDAY, bins, fills, market_file)
    (route,) = day_plan.routes
    starts = dict(zip(route.stops, route.service_starts_s, strict=True))
    assert starts["square-1"] >= 12 * 3600 and starts["square-2"] >= 12 * 3600
    assert set(starts) == {"square-1", "square-2", "street"}
    no_market = plan(FRIDAY, bins, fills, planning).routes[0]
    assert max(no_market.service_starts_s) < 12 * 3600

    # The day before, a square bin at 60 % goes now: the market is expected to fill it past full by Friday's run.
    thursday = FRIDAY - timedelta(days=1)
    start = work_window(thursday)[0]
    history = {asset.id: _steady_history(asset.id, start - timedelta(minutes=30), 0.6, 0.05) for asset in bins}
    pinned = replace_forecast(WEEKDAYS)
    with_market = plan_day(thursday, [DEPOT], bins, {}, pinned, bin_history=history, calendar=market_file.calendar)
    assert sorted(task.asset for task in with_market.tasks) == ["square-1", "square-2"]
    assert plan_day(thursday, [DEPOT], bins, {}, pinned, bin_history=history, calendar=planning.calendar).tasks == []


# -- the towns' planning file -----------------------------------------------------------------------------------


def test_the_shipped_file_gives_every_town_a_vehicle_per_waste_type_and_a_tanker() -> None:
    planning = load_town_planning(DEFAULT_TOWN_PLANNING)
    assert set(planning.fleet.towns) == set(MUNICIPALITIES)
    for town, fleet in planning.fleet.towns.items():
        assert {vehicle.serves for vehicle in fleet.vehicles} == {"residual", "paper", "organic", "glass", "water"}
        for vehicle in fleet.vehicles:
            assert vehicle.reload_at in fleet.sites, (town, vehicle.id)
            assert vehicle.shift_end > vehicle.shift_start
        assert planning.calendar.for_town(town).holiday(date(2026, 12, 25)) == "Erster Weihnachtstag"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[towns."Bad Orb"]\nvehicle = []', "town 'Bad Orb': field 'vehicle': unknown field"),
        (
            '[[towns."Bad Orb".vehicles]]\nid = "t"\nserves = "paper"\ncapacity_l = -5',
            "town 'Bad Orb': field 'vehicles[0].capacity_l': must lie in 1..",
        ),
        ('[[towns."Bad Orb".vehicles]]\nid = "t"\nserves = "paper"', "field 'vehicles[0].capacity_l': missing"),
        (
            '[[towns."Bad Orb".vehicles]]\nid = "t"\nserves = "paper"\ncapacity_l = 100\nshift = "15:00-06:00"',
            "field 'vehicles[0].shift': the end 06:00 must be after the start 15:00",
        ),
        (
            '[[towns."Bad Orb".vehicles]]\nid = "t"\nserves = "paper"\ncapacity_l = 100\nreload_at = "nowhere"',
            "field 'vehicles[0].reload_at': no site 'nowhere'",
        ),
        ('[towns."Bad Orb"]\nholidays = "XX"', "town 'Bad Orb': field 'holidays': 'XX' is no German Bundesland"),
        ('[towns."Bad Orb"]\nclosed_days = ["24.12.2026"]', "field 'closed_days': '24.12.2026' is not a date"),
        (
            '[[towns."Bad Orb".markets]]\nweekdays = ["caturday"]\nhours = "07:00-12:00"\nvillages = ["X"]',
            "field 'markets[0].weekdays': 'caturday' is no weekday",
        ),
        ('[[towns."Bad Orb".markets]]\nweekdays = ["sa"]\nhours = "07:00-12:00"', "markets[0]'"),
        ("[routing]\nmax_iterations = 0", "field 'routing.max_iterations': must lie in 1.."),
        ("[towns.x", "not valid TOML"),
    ],
)
def test_file_errors_name_the_file_the_town_and_the_field(body: str, words: str) -> None:
    with pytest.raises(PlanningFileError) as caught:
        parse_town_planning(body, "towns-test.toml")
    assert str(caught.value).startswith("towns-test.toml: ")
    assert words in str(caught.value)


def test_a_missing_or_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanningFileError, match="cannot read"):
        load_town_planning(tmp_path / "absent.toml")
    with pytest.raises(PlanningFileError, match="at most"):
        parse_town_planning("#" * (2 * 1024 * 1024))


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**7), 10**7),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.dates(),
    st.sampled_from(["06:00-14:30", "HE", "tip", "residual", "water", "sa", "2026-12-24", "12-24", "07:00-12:00"]),
)
_keys = st.sampled_from(
    [
        "routing", "sites", "towns", "Bad Orb", "vehicles", "markets", "holidays", "closed_days", "closed_every_year",
        "id", "serves", "capacity_l", "shift", "count", "reload_at", "service_min", "pump_l_per_min", "latitude",
        "longitude", "name", "weekdays", "hours", "villages", "assets", "fill_jump", "time_limit_s", "tip",
    ]
)  # fmt: skip
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _documents, max_size=4))
def test_any_document_gives_a_planning_or_a_planning_file_error(document: dict[str, object]) -> None:
    try:
        planning = town_planning_from_mapping(document, "fuzz.toml")
    except PlanningFileError as error:
        assert str(error).startswith("fuzz.toml")
        return
    for town_fleet in planning.fleet.towns.values():
        for vehicle in town_fleet.vehicles:
            assert vehicle.capacity_l >= 1 and vehicle.shift_end > vehicle.shift_start
            assert vehicle.reload_at is None or vehicle.reload_at in town_fleet.sites
    assert math.isfinite(planning.fleet.time_limit_s)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_planning_or_a_planning_file_error(document: str) -> None:
    try:
        parse_town_planning(document, "fuzz.toml")
    except PlanningFileError as error:
        assert str(error).startswith("fuzz.toml")


def test_the_app_refuses_to_start_with_a_wrong_planning_file(tmp_path: Path) -> None:
    from cloud import create_app
    from cloud.settings import CloudSettings

    wrong = tmp_path / "towns.toml"
    wrong.write_text('[[towns."Birstein".vehicles]]\nid = "t"\nserves = "paper"\n', encoding="utf-8")
    settings_ = CloudSettings(data_dir=tmp_path, town_planning_file=wrong)
    with pytest.raises(PlanningFileError, match=r"towns.toml: town 'Birstein': field 'vehicles\[0\].capacity_l'"):
        create_app(settings_)
    assert CloudSettings(data_dir=tmp_path).town_planning_file == DEFAULT_TOWN_PLANNING


def test_holiday_names_come_in_english_too() -> None:
    assert TownCalendar(TOWN).holiday(date(2026, 5, 14), "en") == "Ascension Day"
    assert TownCalendar(TOWN).holiday(date(2026, 5, 14)) == "Christi Himmelfahrt"
    assert TownCalendar(TOWN).holiday(datetime(2026, 5, 15, tzinfo=UTC).date()) is None


def test_the_fixed_rounds_drive_one_round_per_waste_type() -> None:
    from cloud.scheduler import build_route, fixed_schedule_km

    bins = [a_bin(f"bin-{n}", 50.2200 + 0.003 * n, 9.3400, "paper" if n % 2 else "residual") for n in range(6)]
    apart = fixed_schedule_km(day_count=1, depots=[DEPOT], assets=bins, start=FRIDAY)
    mixed = build_route(DEPOT, bins, PlanSettings().road_factor)[1]
    by_type = sum(
        build_route(DEPOT, [b for b in bins if b.waste_type == kind], PlanSettings().road_factor)[1]
        for kind in ("paper", "residual")
    )
    assert apart == pytest.approx(by_type) and apart > mixed


@settings(max_examples=60, deadline=None)
@given(
    st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 1)),
    st.sets(st.integers(0, 4), min_size=1, max_size=5),
    st.sets(st.dates(min_value=date(2024, 1, 1), max_value=date(2031, 1, 31)), max_size=20),
)
def test_rounds_run_on_working_days_only_and_a_round_lost_to_a_holiday_runs_on_the_next_working_day(
    first: date, weekdays: set[int], closed: set[date]
) -> None:
    calendar = TownCalendar(TOWN, closed_days=frozenset(closed))
    days = [first + timedelta(days=offset) for offset in range(28)]
    for day in days:
        if is_round_day(day, weekdays, calendar):
            assert calendar.is_working_day(day)
        elif calendar.is_working_day(day):
            assert day.weekday() not in weekdays
        if day.weekday() in weekdays and not calendar.is_working_day(day):
            assert is_round_day(calendar.next_working_day(day), weekdays, calendar)
