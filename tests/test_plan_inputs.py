"""The forecast planner fed from the real series stores: fill histories → forecast collect tasks, a station's
dry week → litres from the water balance, and the latest-value rules (said so) where history is short."""

from __future__ import annotations

import importlib.util
import math
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud import create_app
from cloud.app import build_plan_clock
from cloud.scheduler import LatestValue, plan_day
from cloud.scheduler.inputs import (
    CLOUD_PLAN_SETTINGS,
    CLOUD_WATERING_POLICY,
    DEFAULT_ELEVATION_M,
    MIN_BIN_DAYS,
    NOMINAL_SOIL,
    explain_fallbacks,
    read_plan_inputs,
    station_weather_days,
)
from cloud.scheduler.policy import MEASURED_POLICY, PlanningPolicy
from cloud.scheduler.water import TENSION_CRITICAL_KPA, reference_et_mm, young_tree_site
from cloud.settings import CloudSettings
from cloud.store import series as series_module
from cloud.store.influx_v1 import InfluxV1SeriesStore
from cloud.store.influx_v2 import many_series_query
from cloud.store.series import SeriesStore
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Asset, AssetKind, Depot, Device, Quantity, Reading, Task, TaskKind
from tests.cloud_helpers import ingest

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 7, 8)  # a Wednesday: the cloud's weekly collection round; the tanker does not go
THURSDAY = DAY + timedelta(days=1)  # a watering day: the tanker goes on Mondays and Thursdays
FRIDAY = DAY + timedelta(days=2)
PLAN_TIME = datetime(2026, 7, 8, 5, 0, tzinfo=BERLIN).astimezone(UTC)
THURSDAY_PLAN_TIME = datetime(2026, 7, 9, 5, 0, tzinfo=BERLIN).astimezone(UTC)
TOWN = "Birstein"
DEPOT = Depot(municipality=TOWN, name="Bauhof Birstein", latitude=50.352, longitude=9.301)
RISING, FLAT, NEW = "bin-rising", "bin-flat", "bin-new"
TREE, STATION = "tree-young", "weather-1"


def _asset(asset_id: str, kind: AssetKind, latitude: float, **extra: object) -> Asset:
    return Asset(
        id=asset_id, kind=kind, municipality=TOWN, village="Fischborn", latitude=latitude, longitude=9.29, **extra
    )


ASSETS = [
    _asset(RISING, AssetKind.BIN, 50.36, capacity_l=240),
    _asset(FLAT, AssetKind.BIN, 50.361, capacity_l=240),
    _asset(NEW, AssetKind.BIN, 50.362, capacity_l=240),
    _asset(TREE, AssetKind.TREE, 50.363, planting_year=2024),
    _asset(STATION, AssetKind.WEATHER_STATION, 50.352),
]
DEVICE_OF = {asset.id: f"a84041000181c{index:03x}" for index, asset in enumerate(ASSETS)}


def bin_readings(asset: str, level_now: float, rate_per_day: float, days: float = 9.0) -> list[Reading]:
    """Hourly fill ratios over `days` before the plan, rising at `rate_per_day` to `level_now`; emptied (down to
    2 %) whenever the sawtooth reaches 92 %."""
    readings = []
    hours = int(days * 24)
    for hour in range(hours, 0, -1):
        moment = PLAN_TIME - timedelta(hours=hour)
        value = level_now - rate_per_day * hour / 24.0
        while value < 0.02:
            value += 0.9  # before the last emptying
        readings.append(_reading(asset, Quantity.FILL_RATIO, value, moment))
    return readings


def station_readings(days: int, *, rain_mm_per_day: float, before: date = DAY) -> list[Reading]:
    """Station reports every 20 minutes for `days` whole local days before the day `before`: hot, sunny summer
    days."""
    readings = []
    first = datetime.combine(before, datetime.min.time(), BERLIN) - timedelta(days=days)
    for step in range(days * 72):
        moment = (first + timedelta(minutes=20 * step + 10)).astimezone(UTC)
        local_hour = (first + timedelta(minutes=20 * step)).hour
        daylight = max(math.sin(math.pi * (local_hour - 5) / 16), 0.0) if 5 <= local_hour <= 21 else 0.0
        temperature = 17.0 + 15.0 * max(math.sin(math.pi * (local_hour - 6) / 16), 0.0)  # 17-32 °C
        values = {
            Quantity.AIR_TEMPERATURE_C: temperature,
            Quantity.HUMIDITY_PCT: 85.0 - 45.0 * (temperature - 17.0) / 15.0,
            Quantity.WIND_SPEED_MS: 2.0,
            Quantity.SOLAR_RADIATION_W_M2: 850.0 * daylight,
            Quantity.PRESSURE_HPA: 985.0,
            Quantity.RAIN_MM: rain_mm_per_day / 72.0,
        }
        readings += [_reading(STATION, quantity, value, moment) for quantity, value in values.items()]
    return readings


def _reading(asset: str, quantity: Quantity, value: float, moment: datetime) -> Reading:
    return Reading(device=DEVICE_OF[asset], asset=asset, quantity=quantity, value=round(value, 4), time=moment)


def history(*, rain_mm_per_day: float = 0.0) -> list[Reading]:
    """The bins' readings up to Wednesday's round (its plan time) and the station's week up to Thursday's watering
    run (the round's plan sees six of its days)."""
    return [
        *bin_readings(RISING, level_now=0.55, rate_per_day=0.15),  # below the 60 % rule, full before next week
        *bin_readings(FLAT, level_now=0.55, rate_per_day=0.01),
        *bin_readings(NEW, level_now=0.95, rate_per_day=0.05, days=1.0),  # installed yesterday: no forecast yet
        *station_readings(7, rain_mm_per_day=rain_mm_per_day, before=THURSDAY),
    ]


def latest_of(readings: list[Reading]) -> dict[str, dict[Quantity, LatestValue]]:
    latest: dict[str, dict[Quantity, LatestValue]] = {}
    for reading in sorted(readings, key=lambda r: r.time):
        latest.setdefault(reading.asset, {})[reading.quantity] = LatestValue(reading.value, reading.time)
    return latest


def plan_from(store: SeriesStore, readings: list[Reading], day: date = DAY) -> list[Task]:
    inputs = read_plan_inputs(store, day, ASSETS)
    plan = plan_day(
        day,
        [DEPOT],
        ASSETS,
        latest_of(readings),
        CLOUD_PLAN_SETTINGS,
        bin_history=inputs.bin_history,
        watering=inputs.watering,
    )
    return explain_fallbacks(plan.tasks, inputs)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteSeriesStore]:
    store = SqliteSeriesStore(tmp_path / "series.sqlite")
    yield store
    store.close()


@pytest.fixture
def influx_store(influxd: object) -> Iterator[InfluxV1SeriesStore]:
    with InfluxV1SeriesStore(influxd.url, f"plan_{uuid.uuid4().hex[:8]}") as store:  # type: ignore[attr-defined]
        yield store


@pytest.fixture(params=["sqlite", "influx"])
def series_store(request: pytest.FixtureRequest) -> SeriesStore:
    return request.getfixturevalue(f"{request.param}_store")


def _by_asset(tasks: list[Task], kind: TaskKind) -> dict[str, Task]:
    return {task.asset: task for task in tasks if task.kind is kind}


def test_a_rising_bin_gets_a_forecast_task_and_a_flat_one_none(series_store: SeriesStore) -> None:
    readings = history()
    series_store.write(readings)
    collect = _by_asset(plan_from(series_store, readings), TaskKind.COLLECT)

    rising = collect[RISING]
    assert rising.evidence["planned_by"] == "forecast"
    assert 0.1 < float(rising.evidence["fill_rate_per_day"]) < 0.2  # the history's 15 %/day
    assert float(rising.evidence["fill_ratio_next_run"]) >= 1.0  # full before next week's round ends
    assert FLAT not in collect  # same level now, but it will not be full before the next round


def test_too_little_history_falls_back_to_the_latest_value_and_says_so(series_store: SeriesStore) -> None:
    readings = history()
    series_store.write(readings)
    new = _by_asset(plan_from(series_store, readings), TaskKind.COLLECT)[NEW]
    assert new.evidence["planned_by"] == "latest_value"
    assert new.evidence["fill_ratio"] == pytest.approx(0.95 - 0.05 / 24, abs=1e-3)  # its last reading, an hour ago
    assert "Keine Prognose" in new.reason and f"nötig {MIN_BIN_DAYS} Tage" in new.reason


def test_a_young_tree_in_a_dry_week_gets_the_measured_policys_top_up_on_the_watering_day(
    series_store: SeriesStore,
) -> None:
    readings = history()
    series_store.write(readings)
    assert TREE not in _by_asset(plan_from(series_store, readings), TaskKind.WATER)  # Wednesday: no tanker
    water = _by_asset(plan_from(series_store, readings, THURSDAY), TaskKind.WATER)[TREE]
    assert water.evidence["planned_by"] == "water_balance"
    depletion, raw = float(water.evidence["depletion_mm"]), float(water.evidence["readily_available_mm"])
    assert depletion >= raw  # a week at 17-32 °C without rain used up the readily available water
    # By hand: 6.3 mm a day from field capacity to 25.2 mm after four days, then the tree draws less the drier it
    # is (Ks = (TAW - depletion) / (TAW - RAW), TAW 48.0 mm, RAW 24.0 mm): 31.2, 35.6, 38.8 and today 41.2 mm.
    assert depletion == pytest.approx(41.2, abs=0.1)

    # By hand: planted 2024, so in its third summer its root zone is 0.63 m deep over 2.66 m² (not a nominal 5 m²
    # pit) and draws Kc·ET0 = 0.94 × 6.7 = 6.3 mm a day. The tanker comes back on Monday, four days after today:
    # the top-up must carry it through Friday to Sunday to 70 % of the depletion at 80 kPa (21.1 mm in this loam),
    # with no rain forecast: 41.2 + 3 × 6.3 - 0.7 × 21.1 = 45.3 mm, 4.1 mm more than a refill to field capacity
    # (41.2 mm). Those 4.1 mm it must draw from water above field capacity, which drains while it draws
    # (τ = 0.75 day): u·τ·(e^(4.1 / (u·τ)) - 1) = 4.73 × 1.38 = 6.5 mm above it. So 47.7 mm × 2.659 m² = 127 L.
    assert float(water.evidence["litres"]) == pytest.approx(hand_top_up_litres(series_store, depletion), abs=1.0)
    assert float(water.evidence["litres"]) == pytest.approx(127.0, abs=1.0)
    assert "Regenvorhersage" in water.reason


def hand_top_up_litres(store: SeriesStore, depletion_mm: float) -> float:
    """The measured policy's top-up for the young tree on Thursday, by hand (see the test above)."""
    site = young_tree_site(TREE, TOWN, NOMINAL_SOIL, 2024, THURSDAY.year)
    assert site.area_m2 == pytest.approx(2.659, abs=1e-3) and site.root_depth_m == pytest.approx(0.63)
    station_day = station_weather_days(store, STATION, THURSDAY_PLAN_TIME - timedelta(days=2), THURSDAY_PLAN_TIME)
    assert station_day[-1].day == DAY  # the balance's last measured day: yesterday
    daily_mm = site.crop_factor * reference_et_mm(station_day[-1], DEPOT.latitude, DEFAULT_ELEVATION_M)
    trigger_mm = site.depletion_from_tension(TENSION_CRITICAL_KPA)
    assert daily_mm == pytest.approx(6.3, abs=0.05) and trigger_mm == pytest.approx(21.1, abs=0.05)
    days_until_next_run = 3  # Friday, Saturday, Sunday: Monday's run waters it again
    assert THURSDAY + timedelta(days=days_until_next_run + 1) == date(2026, 7, 13)  # a Monday
    top_up_mm = depletion_mm + days_until_next_run * daily_mm - 0.7 * trigger_mm
    beyond_refill_mm = max(top_up_mm - depletion_mm, 0.0)
    tau_days = 0.75  # water above field capacity drains with an 18-hour time constant
    above_capacity_mm = daily_mm * tau_days * math.expm1(beyond_refill_mm / (daily_mm * tau_days))
    assert above_capacity_mm < site.drainable_mm  # the root zone holds it
    return (min(top_up_mm, depletion_mm) + above_capacity_mm) * site.area_m2


def test_no_tree_is_watered_on_a_day_the_tanker_does_not_go(sqlite_store: SqliteSeriesStore) -> None:
    readings = history()
    sqlite_store.write(readings)
    # Wednesday: six dry days have passed the tree's trigger, but the tanker goes on Mondays and Thursdays only.
    assert TREE not in _by_asset(plan_from(sqlite_store, readings, DAY), TaskKind.WATER)
    # A policy that also sends it on Wednesdays waters it, to last until Thursday.
    inputs = read_plan_inputs(sqlite_store, DAY, ASSETS)
    wednesdays_too = replace(CLOUD_PLAN_SETTINGS, watering_weekdays=(0, 2, 3))
    plan = plan_day(DAY, [DEPOT], ASSETS, {}, wednesdays_too, watering=inputs.watering)
    assert [task.asset for task in plan.tasks if task.kind is TaskKind.WATER] == [TREE]
    assert [route.stops for route in plan.routes if route.kind is TaskKind.WATER] == [[TREE]]


def test_a_tree_planned_by_soil_moisture_waits_for_the_watering_day_and_says_so(
    sqlite_store: SqliteSeriesStore,
) -> None:
    readings = [_reading(TREE, Quantity.SOIL_VWC, 0.08, PLAN_TIME + timedelta(days=2, hours=1))]
    sqlite_store.write(readings)
    assets = [asset for asset in ASSETS if asset.id != STATION]  # no station: no balance
    inputs = read_plan_inputs(sqlite_store, FRIDAY, assets)
    # Friday: the tanker goes next on Monday, over the weekend.
    for language, expected in (("de", "nächsten Gießtag (13.07.2026)"), ("en", "next watering day (2026-07-13)")):
        plan = plan_day(FRIDAY, [DEPOT], assets, latest_of(readings), CLOUD_PLAN_SETTINGS, language=language)
        assert not [task for task in plan.tasks if task.kind is TaskKind.WATER]
        reasons = [reason for asset, reason in plan.skipped if asset == TREE]
        assert len(reasons) == 1 and reasons[0].startswith(f"{TREE}: ") and expected in reasons[0]
    assert inputs.watering is None


def test_a_planting_year_after_the_season_is_reported_not_raised(sqlite_store: SqliteSeriesStore) -> None:
    readings = history()
    sqlite_store.write(readings)
    future = _asset("tree-future", AssetKind.TREE, 50.364, planting_year=2027)
    inputs = read_plan_inputs(sqlite_store, DAY, [*ASSETS, future])
    assert inputs.watering is not None
    assert [site.asset for site in inputs.watering.sites] == [TREE]  # the balance leaves it out
    assert "Pflanzjahr 2027 liegt nach der Saison 2026" in inputs.fallback["tree-future"]
    english = read_plan_inputs(sqlite_store, DAY, [*ASSETS, future], language="en")
    assert "planting year 2027 is after the season 2026" in english.fallback["tree-future"]


def test_the_bench_and_the_cloud_plan_with_one_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_operations", Path(__file__).parents[1] / "bench/operations.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    assert bench.MEASURED_POLICY is MEASURED_POLICY
    assert CLOUD_PLAN_SETTINGS is MEASURED_POLICY.settings and CLOUD_WATERING_POLICY is MEASURED_POLICY.watering
    # Without flags the bench measures exactly that policy; a flag changes it for the run only.
    assert bench.policy_from(bench.build_parser().parse_args([])) == MEASURED_POLICY
    changed = bench.policy_from(bench.build_parser().parse_args(["--top-up", "0.8", "--watering-days", "2"]))
    assert changed.watering.rules.top_up_share_of_trigger == 0.8
    assert changed.watering.watering_weekdays == changed.settings.watering_weekdays == (2,)
    assert MEASURED_POLICY.watering.watering_weekdays == MEASURED_POLICY.settings.watering_weekdays == (0, 3)
    assert changed != MEASURED_POLICY and MEASURED_POLICY.watering.rules.top_up_share_of_trigger == 0.7
    with pytest.raises(ValueError, match="watering weekdays"):
        PlanningPolicy(MEASURED_POLICY.settings, replace(MEASURED_POLICY.watering, watering_weekdays=(1,)))


def test_a_wet_week_refills_the_root_zone_and_the_top_up_covers_only_the_days_to_the_next_run(
    series_store: SeriesStore,
) -> None:
    readings = history(rain_mm_per_day=15.0)
    series_store.write(readings)
    water = _by_asset(plan_from(series_store, readings, THURSDAY), TaskKind.WATER)[TREE]
    # The rain (10.4 mm a day reach the roots) kept the root zone at field capacity: only today's draw is missing.
    depletion = float(water.evidence["depletion_mm"])
    assert depletion == pytest.approx(6.3, abs=0.1)
    # With no rain forecast, the small store would still pass 80 kPa before Monday's run (6.3 + 3 × 6.3 = 25.2 mm
    # > 21.1 mm), so the top-up is not held back as small; it would be 6.3 + 18.9 - 14.8 = 10.4 mm, 4.1 mm more than
    # the refill to field capacity, which it draws from 6.5 mm above it (as in the dry week): 12.8 mm × 2.659 m²
    # = 34 L, 93 L below the dry week's 127 L.
    assert depletion + 3 * 6.3 > 21.1
    assert float(water.evidence["litres"]) == pytest.approx(hand_top_up_litres(series_store, depletion), abs=1.0)
    assert float(water.evidence["litres"]) == pytest.approx(34.0, abs=1.0)


def test_station_days_use_penman_monteith_inputs_and_ignore_a_stray_reading(sqlite_store: SqliteSeriesStore) -> None:
    readings = station_readings(3, rain_mm_per_day=4.8)
    spike_time = datetime(2026, 7, 6, 12, 30, tzinfo=BERLIN).astimezone(UTC)
    readings.append(_reading(STATION, Quantity.AIR_TEMPERATURE_C, 55.0, spike_time + timedelta(minutes=5)))
    sqlite_store.write(readings)
    start = datetime(2026, 7, 1, tzinfo=BERLIN).astimezone(UTC)
    days = station_weather_days(sqlite_store, STATION, start, PLAN_TIME)
    assert [d.day for d in days] == [date(2026, 7, 5), date(2026, 7, 6), date(2026, 7, 7)]
    for weather in days:
        assert weather.temperature_max_c == pytest.approx(32.0, abs=0.3)  # the 55 °C echo moved no hourly median
        assert weather.temperature_min_c == pytest.approx(17.0, abs=0.01)
        assert weather.rain_mm == pytest.approx(4.8, abs=0.01)
        assert weather.humidity_min_pct is not None and weather.wind_ms == pytest.approx(2.0)
        assert weather.solar_radiation_mj is not None and 15.0 < weather.solar_radiation_mj < 45.0


def test_without_a_station_trees_are_planned_by_soil_moisture_and_say_why(sqlite_store: SqliteSeriesStore) -> None:
    readings = [_reading(TREE, Quantity.SOIL_VWC, 0.08, THURSDAY_PLAN_TIME - timedelta(hours=1))]
    sqlite_store.write(readings)
    assets = [asset for asset in ASSETS if asset.id != STATION]
    inputs = read_plan_inputs(sqlite_store, THURSDAY, assets)
    assert inputs.watering is None
    plan = plan_day(THURSDAY, [DEPOT], assets, latest_of(readings), CLOUD_PLAN_SETTINGS, watering=inputs.watering)
    water = _by_asset(explain_fallbacks(plan.tasks, inputs), TaskKind.WATER)[TREE]
    assert water.evidence["planned_by"] == "latest_value"
    assert "keine Wetterstation" in water.reason


# --- through the cloud: POST /plan/{day} and the daily job read the series store the app was given ----------

ADMIN = "admin-token-0123456789"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
GATEWAY = "gateway-token-0123456789"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[TestClient]:
    """The cloud app on SQLite stores, its inventory and two weeks of readings ingested as a gateway sends them."""
    yield from _cloud_with_history(tmp_path)


def _cloud_with_history(tmp_path: Path, **settings_given: object) -> Iterator[TestClient]:
    settings = CloudSettings(data_dir=tmp_path, gateway_tokens={"gw-1": GATEWAY}, admin_token=ADMIN, **settings_given)
    series = SqliteSeriesStore(tmp_path / "series.sqlite")
    with TestClient(create_app(settings, series=series)) as client:
        devices = [
            Device(dev_eui=DEVICE_OF[a.id], model_id="dragino/lse01", asset=a.id, report_interval_s=3600)
            for a in ASSETS
        ]
        inventory = {
            "depots": [DEPOT.model_dump(mode="json")],
            "assets": [a.model_dump(mode="json") for a in ASSETS],
            "devices": [d.model_dump(mode="json") for d in devices],
        }
        assert client.post("/api/v1/admin/inventory", json=inventory, headers=ADMIN_HEADERS).status_code == 200
        ingest(client, GATEWAY, history(), gateway_id="gw-1", sent_at=THURSDAY_PLAN_TIME)
        yield client
    series.close()


def planned_by(client: TestClient, day: date) -> dict[tuple[str, str], str]:
    tasks = client.get("/api/v1/feed/tasks", params={"day": day.isoformat()}, headers=ADMIN_HEADERS).json()
    return {(t["kind"], t["asset"]): t["evidence"]["planned_by"] for t in tasks if "planned_by" in t["evidence"]}


# Wednesday's collection round and Thursday's watering run.
EXPECTED_BASIS = {
    DAY: {("collect", RISING): "forecast", ("collect", NEW): "latest_value"},
    THURSDAY: {("water", TREE): "water_balance"},
}


def test_the_plan_endpoint_plans_by_forecast_and_balance_and_waters_only_on_the_watering_day(cloud: TestClient) -> None:
    round_day = cloud.post(f"/api/v1/plan/{DAY}", headers=ADMIN_HEADERS)
    assert round_day.status_code == 200, round_day.text
    assert planned_by(cloud, DAY) == EXPECTED_BASIS[DAY]
    assert round_day.json()["planned_by"] == {"forecast": 1, "latest_value": 1}
    watering_day = cloud.post(f"/api/v1/plan/{THURSDAY}", headers=ADMIN_HEADERS)
    assert watering_day.status_code == 200, watering_day.text
    summary = watering_day.json()
    assert planned_by(cloud, THURSDAY) == EXPECTED_BASIS[THURSDAY]
    assert summary["planned_by"] == {"water_balance": 1}
    assert any("Regenvorhersage" in note for note in summary["notes"])
    wednesday = cloud.get("/api/v1/feed/tasks", params={"day": DAY.isoformat()}, headers=ADMIN_HEADERS).json()
    assert not [task for task in wednesday if task["kind"] == "water"]  # Wednesday: the tree waits for Thursday
    tasks = cloud.get("/api/v1/feed/tasks", params={"day": THURSDAY.isoformat()}, headers=ADMIN_HEADERS).json()
    # The dry week's top-up, by hand: 47.7 mm × 2.659 m² = 127 L (see the store tests above).
    assert [task["evidence"]["litres"] for task in tasks if task["kind"] == "water"] == pytest.approx([127.0], abs=1)


SHORT_SHIFTS = f"""
[towns."{TOWN}".sites.hydrant]
name = "Hydrant Bauhof"
latitude = 50.352
longitude = 9.301

[[towns."{TOWN}".vehicles]]
id = "rear-loader"
serves = "residual"
capacity_l = 20000
shift = "06:00-06:02"

[[towns."{TOWN}".vehicles]]
id = "tanker"
serves = "water"
capacity_l = 5000
shift = "06:00-06:02"
reload_at = "hydrant"
"""


def test_a_route_that_overruns_its_shift_goes_out_and_the_plan_says_so(tmp_path: Path) -> None:
    planning_file = tmp_path / "towns.toml"
    planning_file.write_text(SHORT_SHIFTS, encoding="utf-8")
    for client in _cloud_with_history(tmp_path, town_planning_file=planning_file):
        # Wednesday's collection route and Thursday's watering route, two minutes of shift each.
        for day, kind in ((DAY, "collect"), (THURSDAY, "water")):
            answer = client.post(f"/api/v1/plan/{day}", headers=ADMIN_HEADERS).json()
            late = [note for note in answer["notes"] if "passt nicht in die Schicht" in note]
            assert len(late) == 1 and f"-{kind}-" in late[0], answer["notes"]
            assert planned_by(client, day) == EXPECTED_BASIS[day]  # the must-go stops stay on the routes


def test_the_daily_job_plans_by_forecast_and_balance(cloud: TestClient) -> None:
    clock = build_plan_clock(cloud.app.state.cloud)  # type: ignore[attr-defined]
    for day, plan_time in ((DAY, PLAN_TIME), (THURSDAY, THURSDAY_PLAN_TIME)):
        clock.now = lambda plan_time=plan_time: plan_time.astimezone(BERLIN)  # the job fires at 05:00 on the day
        outcome = clock.run(TOWN, replan=False)
        assert outcome is not None and outcome["tasks_stored"] == len(EXPECTED_BASIS[day])
        assert planned_by(cloud, day) == EXPECTED_BASIS[day]


# --- hostile station data: whatever a station reported, the days are physical or left out ------------------------

station_value = {
    Quantity.AIR_TEMPERATURE_C: st.floats(-20.0, 45.0),  # wild temperatures: the day is refused (tested above)
    Quantity.HUMIDITY_PCT: st.floats(-5.0, 120.0),
    Quantity.WIND_SPEED_MS: st.floats(-1.0, 90.0),
    Quantity.SOLAR_RADIATION_W_M2: st.floats(-10.0, 2_500.0),
    Quantity.PRESSURE_HPA: st.floats(300.0, 1_100.0),
    Quantity.RAIN_MM: st.floats(-1.0, 200.0),
}


@st.composite
def station_reports(draw: st.DrawFn) -> list[Reading]:
    """Three local days of hourly reports before the plan day, any quantity any value, some hours missing."""
    first = datetime.combine(DAY, datetime.min.time(), BERLIN) - timedelta(days=3)
    hours = 3 * 24
    readings = []
    for quantity, values in station_value.items():
        drawn = draw(st.lists(values, min_size=hours, max_size=hours))
        present = draw(st.lists(st.integers(0, 9).map(bool), min_size=hours, max_size=hours))  # 90 % of hours
        for hour in range(hours):
            if present[hour]:
                moment = (first + timedelta(hours=hour, minutes=10)).astimezone(UTC)
                readings.append(_reading(STATION, quantity, drawn[hour], moment))
    return readings


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(readings=station_reports())
def test_station_days_are_physical_whatever_the_station_sent(readings: list[Reading]) -> None:
    store = SqliteSeriesStore(":memory:")
    try:
        store.write(readings)
        days = station_weather_days(store, STATION, PLAN_TIME - timedelta(days=4), PLAN_TIME)
    finally:
        store.close()
    for weather in days:
        assert -50.0 <= weather.temperature_min_c <= weather.temperature_max_c <= 60.0
        assert 0.0 <= weather.rain_mm <= 500.0
        # The balance can use every day it is given: Penman–Monteith or Hargreaves accepts it.
        assert reference_et_mm(weather, 50.3, DEFAULT_ELEVATION_M) >= 0.0
    assert [weather.day for weather in days] == sorted({weather.day for weather in days})


# --- one read for many assets (SeriesStore.query_many) ------------------------------------------------------

T0 = datetime(2026, 7, 1, tzinfo=UTC)
BULK_DEVICES = ("a84041000181c001", "a84041000181c002")


def bulk_reading(
    asset: str, minutes: int, value: float, device: str = BULK_DEVICES[0], quantity: Quantity = Quantity.FILL_RATIO
) -> Reading:
    return Reading(device=device, asset=asset, quantity=quantity, value=value, time=T0 + timedelta(minutes=minutes))


def as_pairs(
    store: SeriesStore, asset: str, quantity: Quantity, start: datetime, end: datetime
) -> list[tuple[float, float]]:
    return [(point.time.timestamp(), point.value) for point in store.query(asset, quantity, start, end)]


def test_one_read_gives_each_asset_what_its_own_query_gives(
    series_store: SeriesStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series_module, "ASSETS_PER_QUERY", 2)  # several reads for five assets: chunks join up
    readings = [
        *(bulk_reading("bin-a", minute, minute / 100) for minute in range(0, 60, 10)),
        # two devices on one asset (a swapped sensor): both kept, merged in time order
        bulk_reading("bin-b", 5, 0.1, BULK_DEVICES[0]),
        bulk_reading("bin-b", 15, 0.3, BULK_DEVICES[1]),
        bulk_reading("bin-b", 10, 0.2, BULK_DEVICES[0]),
        bulk_reading("bin-c", 59, 0.9),
        bulk_reading("bin-c", 60, 0.95),  # at `end`: outside [start, end)
        bulk_reading("bin-c", -1, 0.05),  # before `start`: outside
        bulk_reading("bin-d", 30, 0.5, quantity=Quantity.BATTERY_V),  # another quantity: not read
        bulk_reading("bin-e\\", 20, 0.4),  # a tag value InfluxDB stores encoded
    ]
    series_store.write(readings)
    start, end = T0, T0 + timedelta(minutes=60)
    assets = ["bin-a", "bin-b", "bin-c", "bin-d", "bin-e\\", "bin-none", "bin-a"]
    many = series_store.query_many(assets, Quantity.FILL_RATIO, start, end)

    assert sorted(many) == ["bin-a", "bin-b", "bin-c", "bin-e\\"]  # no points, no entry
    for asset, arrays in many.items():
        pairs = list(zip(arrays.times_s.tolist(), arrays.values.tolist(), strict=True))
        assert pairs == as_pairs(series_store, asset, Quantity.FILL_RATIO, start, end), asset
    assert many["bin-b"].values.tolist() == [0.1, 0.2, 0.3]
    assert many["bin-c"].values.tolist() == [0.9]
    assert [point.time for point in many["bin-b"].points()] == [T0 + timedelta(minutes=m) for m in (5, 10, 15)]
    assert series_store.query_many([], Quantity.FILL_RATIO, start, end) == {}
    assert series_store.query_many(["bin-a"], Quantity.FILL_RATIO, end, start) == {}


def test_a_naive_time_is_refused(sqlite_store: SqliteSeriesStore) -> None:
    with pytest.raises(ValueError, match="time zone"):
        sqlite_store.query_many(["bin-a"], Quantity.FILL_RATIO, datetime(2026, 7, 1), T0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    points=st.lists(
        st.tuples(
            st.sampled_from(["bin-1", "bin-2", "bin-3", "tree-1"]),
            st.integers(min_value=-30, max_value=200),
            st.floats(min_value=-5, max_value=5, allow_nan=False),
            st.sampled_from(BULK_DEVICES),
        ),
        max_size=60,
    ),
    window=st.tuples(st.integers(min_value=-40, max_value=100), st.integers(min_value=0, max_value=200)),
)
def test_query_many_equals_query_per_asset(
    tmp_path_factory: pytest.TempPathFactory,
    points: list[tuple[str, int, float, str]],
    window: tuple[int, int],
) -> None:
    store = SqliteSeriesStore(tmp_path_factory.mktemp("bulk") / "series.sqlite")
    try:
        store.write([bulk_reading(asset, minute, value, device) for asset, minute, value, device in points])
        start = T0 + timedelta(minutes=window[0])
        end = start + timedelta(minutes=window[1])
        assets = ["bin-1", "bin-2", "bin-3", "tree-1", "bin-9"]
        many = store.query_many(assets, Quantity.FILL_RATIO, start, end)
        for asset in assets:
            expected = as_pairs(store, asset, Quantity.FILL_RATIO, start, end)
            arrays = many.get(asset)
            got = list(zip(arrays.times_s.tolist(), arrays.values.tolist(), strict=True)) if arrays else []
            # two devices at the same minute: both points, in either order
            assert sorted(got) == sorted(expected)
            assert [moment for moment, _ in got] == sorted(moment for moment, _ in got)
    finally:
        store.close()


def test_the_v2_flux_names_every_asset_quoted() -> None:
    flux = many_series_query(
        "series", ['bin") or true or ("', "bin-2"], Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1)
    )
    assert 'contains(value: r.asset, set: ["bin\\") or true or (\\"", "bin-2"])' in flux
    assert 'group(columns: ["asset"])' in flux
    with pytest.raises(ValueError, match="time zone"):
        many_series_query("series", ["bin-1"], Quantity.FILL_RATIO, datetime(2025, 1, 1), T0)
