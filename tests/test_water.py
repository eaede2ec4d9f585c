"""The FAO-56 water balance: ET0 against the worked examples, a dry week by hand, sensors and postponing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.scheduler.planning import _balance_task, _Window
from cloud.scheduler.water import (
    SOIL_CLASSES,
    BalanceRules,
    DailyWeather,
    SoilObservation,
    TownWeather,
    WateringInput,
    WateringSite,
    WaterInputError,
    WaterNeed,
    assess_watering,
    et0_hargreaves,
    et0_penman_monteith,
    extraterrestrial_radiation_mj,
    wind_at_2m,
    young_tree_root_zone,
    young_tree_site,
)
from flurfunk.contracts import Asset, AssetKind

TOWN = "Wächtersbach"
MONDAY = date(2026, 7, 6)


def test_fao56_example_18_penman_monteith_brussels() -> None:
    # Brussels, 50°48' N, 100 m, 6 July: Tmax 21.5, Tmin 12.3 °C, RHmax 84, RHmin 63 %, wind 10 km/h at 10 m,
    # Rs 22.07 MJ m⁻² day⁻¹ → u2 = 2.078 m/s, ET0 = 3.9 mm/day.
    assert wind_at_2m(10 / 3.6, 10.0) == pytest.approx(2.078, abs=0.001)
    et0 = et0_penman_monteith(
        temperature_max_c=21.5,
        temperature_min_c=12.3,
        humidity_max_pct=84,
        humidity_min_pct=63,
        wind_ms=10 / 3.6,
        wind_height_m=10.0,
        solar_radiation_mj=22.07,
        latitude_deg=50 + 48 / 60,
        elevation_m=100,
        day_of_year=187,
    )
    assert et0 == pytest.approx(3.9, abs=0.05)


def test_fao56_example_20_hargreaves_lyon() -> None:
    # Lyon, 45°43' N, 15 July: Tmax 26.6, Tmin 14.8 °C → Ra = 40.6 MJ m⁻² day⁻¹, ET0 = 5.0 mm/day.
    assert extraterrestrial_radiation_mj(45 + 43 / 60, 196) == pytest.approx(40.6, abs=0.1)
    assert et0_hargreaves(
        temperature_max_c=26.6, temperature_min_c=14.8, latitude_deg=45 + 43 / 60, day_of_year=196
    ) == pytest.approx(5.0, abs=0.05)


def hot_day(day: date, rain_mm: float = 0.0, tmin: float = 14.8) -> DailyWeather:
    return DailyWeather(day=day, temperature_max_c=26.6, temperature_min_c=tmin, rain_mm=rain_mm)


def young_tree(asset: str = "t-1", **overrides: object) -> WateringSite:
    values: dict[str, object] = dict(
        asset=asset, municipality=TOWN, soil="loam", root_depth_m=0.3, area_m2=4.0, crop_factor=1.0,
        planting_year=2024,
    )  # fmt: skip
    values |= overrides
    return WateringSite(**values)  # type: ignore[arg-type]


def lyon_week(forecast: list[DailyWeather] | None = None) -> dict[str, TownWeather]:
    measured = [hot_day(MONDAY + timedelta(days=k)) for k in range(7)]
    return {TOWN: TownWeather(45 + 43 / 60, 200.0, measured, forecast or [])}


def test_a_dry_week_by_hand() -> None:
    # Hargreaves for Lyon's July weather, 6-12 July: 5.13, 5.12, 5.11, 5.10, 5.09, 5.08, 5.07 mm (sum 35.7), and
    # 5.06 mm on the plan day. Loam: θfc(33 kPa) = 0.1644, θwp(1500 kPa) = 0.0883, so a 1 m root zone holds
    # TAW = 76.1 mm, RAW = 38.1 mm: a week of 35.7 mm stays below RAW (Ks = 1); with the plan day's 5.06 mm the
    # depletion reaches 40.8 mm >= RAW, and refilling 4 m² takes 40.8 · 4 = 163 L.
    deep = young_tree(root_depth_m=1.0)
    assert deep.total_available_mm == pytest.approx(76.1, abs=0.1)
    need = assess_watering(MONDAY + timedelta(days=7), WateringInput(sites=[deep], weather=lyon_week()))["t-1"]
    assert need.depletion_mm == pytest.approx(40.8, abs=0.1)
    assert need.litres == pytest.approx(163, abs=1)
    assert need.postponed_by is None and need.young


def week_without(missing: int, rain_mm: float = 0.0) -> dict[str, TownWeather]:
    """Lyon's July week, 6-12 July, rain on the `missing` day, and that day's readings lost."""
    measured = [hot_day(MONDAY + timedelta(days=k), rain_mm=rain_mm if k == missing else 0.0) for k in range(7)]
    return {TOWN: TownWeather(45 + 43 / 60, 200.0, [weather for k, weather in enumerate(measured) if k != missing])}


def test_a_lost_day_of_weather_still_dries_the_soil() -> None:
    # 9 July lost. By hand (1 m of loam, Kc 1, Ks 1 below RAW = 38.1 mm; ET0s as in test_a_dry_week_by_hand, to
    # 3 places 5.131, 5.122, 5.113, 5.103, 5.093, 5.082, 5.070): the full week is 35.71 mm, 40.78 mm with the plan
    # day's 5.07 mm, 163 L. The lost day takes 8 July's 5.113 mm for its own 5.103 mm: 40.79 mm, 163 L, as with the
    # full week. Skipping the day (before the fix) gave 40.79 − 1.0 · 5.11 = 35.68 mm, below RAW: no watering.
    deep = young_tree(root_depth_m=1.0)
    plan_day = MONDAY + timedelta(days=7)
    full = assess_watering(plan_day, WateringInput(sites=[deep], weather=lyon_week()))["t-1"]
    gap = assess_watering(plan_day, WateringInput(sites=[deep], weather=week_without(3)))["t-1"]
    assert gap.depletion_mm == pytest.approx(40.79, abs=0.05)
    assert gap.depletion_mm == pytest.approx(full.depletion_mm, abs=0.02)
    assert gap.depletion_mm - 35.68 == pytest.approx(1.0 * 5.11, abs=0.05)  # the lost day counts: Kc·ET0 more
    assert gap.litres == pytest.approx(163, abs=1) and gap.postponed_by is None
    assert gap.weather_days_estimated == 1 and full.weather_days_estimated == 0


def test_a_lost_rainy_day_counts_as_dry() -> None:
    # 30 mm on 11 July, measured: 25.56 mm after 6-10 July, + 5.08 − (30 − 2)·0.8 = 8.24, + 5.07 = 13.31, + 5.07
    # on the plan day = 18.38 mm, nothing due. Lost, the day counts as dry with 10 July's 5.09 mm: 25.56 + 5.09
    # + 5.07 + 5.07 = 40.79 mm, due: 163 L.
    deep = young_tree(root_depth_m=1.0)
    plan_day = MONDAY + timedelta(days=7)
    rainy = {TOWN: TownWeather(45 + 43 / 60, 200.0, [hot_day(MONDAY + timedelta(days=k), 30.0 if k == 5 else 0.0)
                                                       for k in range(7)])}  # fmt: skip
    wet = assess_watering(plan_day, WateringInput(sites=[deep], weather=rainy))["t-1"]
    assert wet.depletion_mm == pytest.approx(18.38, abs=0.05) and wet.litres == 0
    lost = assess_watering(plan_day, WateringInput(sites=[deep], weather=week_without(5, rain_mm=30.0)))["t-1"]
    assert lost.depletion_mm == pytest.approx(40.79, abs=0.05)
    assert lost.litres == pytest.approx(163, abs=1) and lost.weather_days_estimated == 1


def test_days_lost_before_the_plan_day_count_and_sensors_still_override() -> None:
    # The station's last two days (11, 12 July) lost: they take 10 July's 5.09 mm each, so 25.56 + 2 · 5.09 =
    # 35.75 mm after the week and 40.84 mm with the plan day's 5.09 mm. A sensor reading of 20 kPa on the lost
    # 12 July still sets that day's depletion, and its correction carries to the unsensored tree of its class (the
    # model-only rerun sees the same filled days).
    deep, same = young_tree("t-sensed", root_depth_m=1.0), young_tree("t-same", root_depth_m=1.0)
    loam = SOIL_CLASSES["loam"]
    plan_day = MONDAY + timedelta(days=7)
    weather = {TOWN: TownWeather(45 + 43 / 60, 200.0, lyon_week()[TOWN].measured[:5])}
    needs = assess_watering(plan_day, WateringInput(sites=[same], weather=weather))
    assert needs["t-same"].depletion_mm == pytest.approx(40.84, abs=0.02)
    assert needs["t-same"].weather_days_estimated == 2
    soil = {"t-sensed": [SoilObservation(MONDAY + timedelta(days=6), tension_kpa=20.0)]}
    needs = assess_watering(plan_day, WateringInput(sites=[deep, same], weather=weather, soil=soil))
    expected = deep.depletion_from_vwc(float(loam.vwc_at(20.0))) + 5.09
    assert needs["t-sensed"].sensed and needs["t-sensed"].depletion_mm == pytest.approx(expected, abs=0.05)
    assert needs["t-same"].depletion_mm == pytest.approx(expected, abs=0.05)


def test_a_water_task_says_when_weather_was_estimated() -> None:
    tree = Asset(id="t-1", kind=AssetKind.TREE, municipality=TOWN, village=TOWN, latitude=50.2, longitude=9.3)
    start = datetime(2026, 7, 13, 6, tzinfo=UTC)
    window = _Window(date(2026, 7, 13), start, start + timedelta(hours=10))
    need = WaterNeed("t-1", 40.8, 38.1, 90.0, 163.0, None, sensed=False, young=True, weather_days_estimated=2)
    task = _balance_task(tree, need, window, "de")
    assert task.evidence["weather_days_estimated"] == 2
    assert task.reason.endswith("Wetter von 2 Tag(en) fehlte und wurde geschätzt (ET₀ vom Vortag, kein Regen).")
    english = _balance_task(tree, need, window, "en").reason
    assert english.endswith("Weather for 2 day(s) was missing and was estimated (previous day's ET₀, no rain).")
    complete = _balance_task(tree, replace(need, weather_days_estimated=0), window, "de")
    assert "weather_days_estimated" not in complete.evidence and "Wetter" not in complete.reason


def test_a_dry_week_in_a_shallow_pit_slows_down_past_raw() -> None:
    # 0.3 m of loam: TAW = 22.8 mm, RAW = 11.4 mm. By hand, Dr after each day (Ks = (TAW − Dr)/(TAW − RAW) once
    # Dr > RAW): 5.13, 10.25, 15.37 (still Ks = 1 at the start of day 3), then Ks 0.65 → 18.69, 0.36 → 20.52,
    # 0.20 → 21.54, 0.11 → 22.10; the plan day's 5.06 mm at Ks 0.06 gives 22.41 mm, far past 80 kPa.
    site = young_tree()
    assert site.total_available_mm == pytest.approx(22.8, abs=0.1)
    monday_only = {TOWN: TownWeather(45 + 43 / 60, 200.0, lyon_week()[TOWN].measured)}
    needs = [assess_watering(MONDAY + timedelta(days=k), WateringInput([site], monday_only))["t-1"] for k in (3, 7)]
    assert needs[0].depletion_mm == pytest.approx(15.37 + 5.10 * (22.8 - 15.37) / 11.4, abs=0.1)
    assert needs[1].depletion_mm == pytest.approx(22.41, abs=0.05)
    assert needs[1].tension_kpa > 80.0
    assert needs[1].litres == pytest.approx(22.41 * 4.0, abs=1.0)


def test_rain_ahead_postpones_and_frost_ahead_too() -> None:
    site = young_tree()
    plan_day = MONDAY + timedelta(days=3)  # three dry days: past RAW, not yet at TAW
    rainy = [hot_day(plan_day + timedelta(days=k), rain_mm=12.0) for k in range(3)]
    weather = {TOWN: TownWeather(50.3, 150.0, lyon_week()[TOWN].measured[:3], rainy)}
    assert assess_watering(plan_day, WateringInput([site], weather))["t-1"].postponed_by == "rain"
    frosty = [hot_day(plan_day + timedelta(days=k), tmin=-2.0) for k in range(3)]
    weather = {TOWN: TownWeather(50.3, 150.0, lyon_week()[TOWN].measured[:3], frosty)}
    need = assess_watering(plan_day, WateringInput([site], weather))["t-1"]
    assert need.postponed_by == "frost" and need.litres == 0


def test_sensors_correct_the_balance_and_carry_to_their_site_class() -> None:
    sensed = young_tree("t-sensed")
    same_class = young_tree("t-same")
    other_class = young_tree("t-shade", exposure="shade")
    loam = SOIL_CLASSES["loam"]
    # After the dry week the sensor says the pit is still wet (a leaking hydrant, say): 20 kPa.
    last = MONDAY + timedelta(days=6)
    watering = WateringInput(
        sites=[sensed, same_class, other_class],
        weather=lyon_week(),
        soil={"t-sensed": [SoilObservation(last, tension_kpa=20.0)]},
    )
    needs = assess_watering(MONDAY + timedelta(days=7), watering)
    expected = sensed.depletion_from_vwc(float(loam.vwc_at(20.0))) + 5.0
    assert needs["t-sensed"].sensed and needs["t-sensed"].depletion_mm == pytest.approx(expected, abs=0.2)
    assert needs["t-same"].depletion_mm == pytest.approx(needs["t-sensed"].depletion_mm, abs=0.2)
    assert needs["t-shade"].depletion_mm > needs["t-same"].depletion_mm + 5  # no sensor of its class: model only
    vwc_watering = WateringInput(
        sites=[sensed], weather=lyon_week(), soil={"t-sensed": [SoilObservation(last, vwc=float(loam.vwc_at(20.0)))]}
    )
    assert assess_watering(MONDAY + timedelta(days=7), vwc_watering)["t-sensed"].depletion_mm == pytest.approx(
        expected, abs=0.2
    )


def test_watering_and_rain_refill_the_root_zone() -> None:
    site = young_tree()
    measured = [hot_day(MONDAY + timedelta(days=k), rain_mm=30.0 if k == 5 else 0.0) for k in range(7)]
    weather = {TOWN: TownWeather(45.7, 200.0, measured)}
    need = assess_watering(MONDAY + timedelta(days=7), WateringInput([site], weather))["t-1"]
    assert need.litres == 0 and need.depletion_mm < 11.4
    watered = {"t-1": {MONDAY + timedelta(days=6): 100.0}}
    dry = {TOWN: TownWeather(45.7, 200.0, [hot_day(MONDAY + timedelta(days=k)) for k in range(7)])}
    need = assess_watering(MONDAY + timedelta(days=7), WateringInput([site], dry, watered_litres=watered))["t-1"]
    assert need.depletion_mm == pytest.approx(5.0, abs=0.3)  # refilled yesterday, only today's demand left


def test_old_trees_are_left_to_their_deep_roots_when_only_young_ones_are_watered() -> None:
    old = young_tree("t-old", planting_year=1980)
    needs = assess_watering(
        MONDAY + timedelta(days=7), WateringInput([old], lyon_week(), rules=BalanceRules(young_only=True))
    )
    assert needs["t-old"].litres == 0 and not needs["t-old"].young


def test_bad_inputs_are_named() -> None:
    with pytest.raises(WaterInputError, match="soil class"):
        young_tree(soil="peat")
    with pytest.raises(WaterInputError, match="exactly one"):
        SoilObservation(MONDAY)
    with pytest.raises(WaterInputError, match="Tmin <= Tmax"):
        DailyWeather(MONDAY, temperature_max_c=10.0, temperature_min_c=20.0, rain_mm=0.0)
    with pytest.raises(WaterInputError, match="no weather"):
        assess_watering(MONDAY, WateringInput([young_tree()], {}))
    with pytest.raises(WaterInputError, match="anemometer"):
        wind_at_2m(3.0, 0.5)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(sorted(SOIL_CLASSES)),
    st.floats(0.0, 1.0),
)
def test_tension_and_water_content_are_inverse(soil_name: str, share: float) -> None:
    soil = SOIL_CLASSES[soil_name]
    vwc = soil.wilting_point + share * (soil.saturated_vwc - soil.wilting_point) * 0.999
    tension = float(soil.tension_kpa(vwc))
    assert float(soil.vwc_at(tension)) == pytest.approx(vwc, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-10, 40),
    st.floats(0, 20),
    st.floats(10, 100),
    st.floats(0, 1),
    st.floats(0, 15),
    st.floats(0, 30),
    st.integers(1, 365),
)
def test_penman_monteith_is_finite_and_not_negative(
    tmin: float, spread: float, rh_max: float, rh_share: float, wind: float, solar: float, doy: int
) -> None:
    et0 = et0_penman_monteith(
        temperature_max_c=tmin + spread,
        temperature_min_c=tmin,
        humidity_max_pct=rh_max,
        humidity_min_pct=rh_max * rh_share,
        wind_ms=wind,
        wind_height_m=2.0,
        solar_radiation_mj=solar,
        latitude_deg=50.3,
        elevation_m=150.0,
        day_of_year=doy,
    )
    assert 0.0 <= et0 < 30.0  # 40 °C, dry, stormy: about 20 mm, the top of what is measured anywhere


def test_a_top_up_bridges_to_the_next_run_and_counts_part_of_the_forecast_rain() -> None:
    # The dry Lyon week leaves the 1 m loam zone 35.7 mm depleted; the plan day takes 5.06 mm more (40.8 mm) and
    # the two days to the next run 5.05 + 5.04 mm (projected 50.9 mm). RAW = 38.1 mm is the trigger; the top-up
    # keeps the depletion at the next run at half of it (19.0 mm). Forecast: 10 mm tomorrow, of which 6.4 mm soak
    # in and half is trusted (3.2 mm). So 50.9 − 3.2 − 19.0 = 28.7 mm on 4 m²: 115 L instead of a 163 L refill.
    day = MONDAY + timedelta(days=7)
    forecast = [hot_day(day), hot_day(day + timedelta(days=1), rain_mm=10.0), hot_day(day + timedelta(days=2))]
    deep = young_tree(root_depth_m=1.0)
    topped = WateringInput([deep], lyon_week(forecast), horizon_days=3, rules=BalanceRules(top_up_share_of_trigger=0.5))
    need = assess_watering(day, topped)["t-1"]
    assert need.depletion_mm == pytest.approx(40.8, abs=0.1)
    assert need.litres == pytest.approx(115, abs=2)
    # 115 L is below a 120 L minimum, but without it the zone reaches 47.7 mm by the next run, past 80 kPa
    # (33.4 mm in loam): it goes anyway.
    small = replace(topped, rules=replace(topped.rules, min_litres=120.0))
    assert (assess_watering(day, small)["t-1"].litres, assess_watering(day, small)["t-1"].postponed_by) == (114, None)
    # Made to last five days instead of three: two more days of ~5.0 mm (no forecast beyond the third day: the
    # plan day's ET0 stands in), ~10.1 mm more on 4 m², and still no more than the refill.
    longer = assess_watering(day, replace(topped, rules=replace(topped.rules, bridge_days=5)))["t-1"]
    assert longer.litres == pytest.approx(115 + 40, abs=3)
    refill = assess_watering(day, WateringInput([deep], lyon_week(forecast), horizon_days=3))["t-1"]
    assert refill.litres == pytest.approx(163, abs=2)
    # 40 mm forecast on the last day before the next run (beyond the two-day postponing window): 30.4 mm soak in,
    # 15.2 mm trusted, and 50.9 − 15.2 stays below a top-up to the whole trigger (38.1 mm): nothing to pour today.
    forecast[2] = hot_day(day + timedelta(days=2), rain_mm=40.0)
    wet = WateringInput([deep], lyon_week(forecast), horizon_days=3, rules=BalanceRules(top_up_share_of_trigger=1.0))
    need = assess_watering(day, wet)["t-1"]
    assert need.litres == 0 and need.postponed_by == "rain"
    with pytest.raises(WaterInputError, match="top_up_share_of_trigger"):
        BalanceRules(top_up_share_of_trigger=1.5)


def test_where_the_tanker_goes_anyway_sites_due_soon_ride_along() -> None:
    # The 1 m loam zone is due within three days (projected 50.9 mm >= RAW 38.1 mm); a 2 m zone (RAW 76.1 mm) only
    # reaches RAW on the ninth day (40.8 + 8 × ~5.05 mm). With a nine-day ride-along it gets its top-up today too.
    day = MONDAY + timedelta(days=7)
    due, later = young_tree("due", root_depth_m=1.0), young_tree("later", root_depth_m=2.0)
    alone = WateringInput([due, later], lyon_week(), horizon_days=3, rules=BalanceRules(top_up_share_of_trigger=0.5))
    assert [need.litres > 0 for need in assess_watering(day, alone).values()] == [True, False]
    along = replace(alone, rules=replace(alone.rules, ride_along_days=9))
    needs = assess_watering(day, along)
    assert needs["due"].litres == assess_watering(day, alone)["due"].litres
    assert needs["later"].litres > 0
    # Without a site due today the tanker stays home: nothing rides along.
    assert all(need.litres == 0 for need in assess_watering(day, replace(along, sites=[later])).values())


def test_a_tension_trigger_alone_lets_coarse_soil_pass_raw() -> None:
    # Sandy loam, 1 m: RAW = 27.6 mm, but 80 kPa only at 47.0 mm depleted. After the dry week (38.8 mm, 38 kPa)
    # the RAW-first trigger waters today; the tension trigger alone waits until 80 kPa is within reach.
    day = MONDAY + timedelta(days=7)
    site = young_tree(soil="sandy_loam", root_depth_m=1.0)
    by_raw = WateringInput([site], lyon_week(), rules=BalanceRules(trigger_tension_kpa=80.0))
    assert site.readily_available_mm < assess_watering(day, by_raw)["t-1"].depletion_mm < 47.0
    assert assess_watering(day, by_raw)["t-1"].litres > 0
    tension_only = replace(by_raw, rules=replace(by_raw.rules, tension_trigger_only=True))
    assert assess_watering(day, tension_only)["t-1"].litres == 0
    assert assess_watering(day, replace(tension_only, horizon_days=5))["t-1"].litres > 0


def test_a_young_tree_root_zone_grows_with_its_years_by_hand() -> None:
    # First summer: the 0.45 m root ball and backfill, 0.6 m radius (1.131 m²); crown 1.7 m across (2.270 m²),
    # Kc 0.6 per crown m²: 0.6 · 2.270 / 1.131 = 1.204 per m² of rooted pit.
    first = young_tree_root_zone(0)
    assert (first.root_depth_m, first.area_m2) == pytest.approx((0.45, 1.131), abs=0.001)
    assert (first.crown_m2, first.crop_factor) == pytest.approx((2.270, 1.204), abs=0.001)
    # Year 3 (two years after planting, 2/5 of the way): 0.45 + 0.4 · 0.45 = 0.63 m deep, radius 0.6 + 0.4 · 0.8
    # = 0.92 m (2.659 m²), crown 1.7 + 2 · 0.3 = 2.3 m (4.155 m²): 0.6 · 4.155 / 2.659 = 0.9375.
    third = young_tree_root_zone(2)
    assert (third.root_depth_m, third.area_m2, third.crop_factor) == pytest.approx((0.63, 2.659, 0.9375), abs=0.001)
    # Established after five years: 0.9 m, 1.4 m radius (6.158 m²), crown 3.2 m (8.042 m²), and no further growth.
    assert young_tree_root_zone(5) == young_tree_root_zone(12)
    assert (young_tree_root_zone(5).area_m2, young_tree_root_zone(5).crop_factor) == pytest.approx(
        (6.158, 0.7837), abs=0.001
    )
    # A first-summer tree in loam holds TAW = 0.0761 · 450 mm = 34.3 mm, 38.8 L over its 1.131 m².
    site = young_tree_site("t-new", TOWN, "loam", planting_year=2026, season_year=2026)
    assert site.total_available_mm == pytest.approx(34.3, abs=0.1)
    assert site.years_since_planting(MONDAY) == 0 and site.site_class(MONDAY).age_band == 0
    with pytest.raises(WaterInputError, match="after the season"):
        young_tree_site("t-future", TOWN, "loam", planting_year=2027, season_year=2026)
    with pytest.raises(WaterInputError, match="years since planting"):
        young_tree_root_zone(-1)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 30.0), st.floats(0.0, 30.0))
def test_root_zone_and_crown_never_shrink_with_age(younger: float, older: float) -> None:
    younger, older = sorted((younger, older))
    a, b = young_tree_root_zone(younger), young_tree_root_zone(older)
    assert a.root_depth_m <= b.root_depth_m and a.area_m2 <= b.area_m2 and a.crown_m2 <= b.crown_m2
    assert 0.1 <= b.crop_factor <= 2.0  # within what a WateringSite accepts
    # The store (depth · area) grows faster than the crown: an older tree's store lasts longer.
    assert a.root_depth_m * a.area_m2 / a.crown_m2 <= b.root_depth_m * b.area_m2 / b.crown_m2 + 1e-12


def test_a_first_summer_tree_is_watered_and_a_fifth_year_tree_skipped_in_the_same_week() -> None:
    # Four Lyon days (ET0 5.13, 5.12, 5.11, 5.10 mm) with 25 mm of rain on the second (18.4 mm soak in) before a
    # Friday run; the next run three days later. First summer in loam (0.45 m, Kc 1.204): 6.2 mm, then 0 after
    # the rain, 6.2 + 6.2 and the plan day's 6.1: 18.4 mm, past RAW (17.1 mm): due. Fifth year (planted 2022:
    # 0.81 m, TAW 61.7 mm, 80 kPa at 27.1 mm, Kc 0.820): 12.6 mm after the plan day and 20.9 mm by the next run,
    # below 80 kPa and RAW: its store carries it, it is skipped.
    new = young_tree_site("t-new", TOWN, "loam", planting_year=2026, season_year=2026)
    grown = young_tree_site("t-grown", TOWN, "loam", planting_year=2022, season_year=2026)
    friday = MONDAY + timedelta(days=4)
    rainy = [hot_day(MONDAY + timedelta(days=k), rain_mm=25.0 if k == 1 else 0.0) for k in range(4)]
    weather = {TOWN: TownWeather(45 + 43 / 60, 200.0, rainy)}
    rules = BalanceRules(trigger_tension_kpa=80.0, top_up_share_of_trigger=0.8)
    topped = WateringInput([new, grown], weather, horizon_days=3, rules=rules)
    needs = assess_watering(friday, topped)
    assert needs["t-new"].depletion_mm == pytest.approx(18.4, abs=0.1)
    assert needs["t-new"].litres > 0 and needs["t-new"].years_since_planting == 0
    assert needs["t-grown"].depletion_mm == pytest.approx(12.6, abs=0.1)
    assert (needs["t-grown"].litres, needs["t-grown"].postponed_by) == (0, None)
    assert needs["t-grown"].years_since_planting == 4


def root_ball_before_a_weekly_run(**settings: float) -> tuple[WateringSite, date, WateringInput]:
    """A first-summer loam root ball after four dry Lyon days, planned on Friday with a top-up lasting a week."""
    new = young_tree_site("t-new", TOWN, "loam", planting_year=2026, season_year=2026)
    weather = {TOWN: TownWeather(45 + 43 / 60, 200.0, lyon_week()[TOWN].measured[:4])}
    rules = BalanceRules(top_up_share_of_trigger=0.8, **settings)  # type: ignore[arg-type]
    watering = WateringInput([new], weather, horizon_days=7, rules=rules)
    return new, MONDAY + timedelta(days=4), watering


def test_a_root_ball_that_cannot_hold_a_week_gets_the_water_above_field_capacity_too() -> None:
    # Four dry Lyon days before a Friday run, the next a week later. The root ball (TAW 34.3 mm) is 27.8 mm
    # depleted after the plan day and would draw 6 · 1.204 · 5.10 = 36.9 mm more (u = 6.15 mm a day): no refill
    # carries it. Without the drainable water it gets the refill (27.8 mm on 1.131 m²: 31 L). With it, the bridge
    # to 80 % of the 80 kPa depletion (15.1 mm) is 27.8 + 36.9 − 12.1 = 52.6 mm, 24.8 mm beyond the refill; water
    # above field capacity drains while the tree draws on it (τ = 0.75 day), so drawing 24.8 mm from it needs
    # u·τ·(e^(24.8 / (u·τ)) − 1) = 4.61 · 214 ≈ 990 mm above it, far more than the ball holds there (loam:
    # (0.430 − 0.164) × 450 mm = 119.5 mm): it gets all of that, 27.8 + 119.5 = 147.3 mm on 1.131 m², 167 L.
    new, friday, topped = root_ball_before_a_weekly_run(trigger_tension_kpa=80.0)
    need = assess_watering(friday, topped)["t-new"]
    assert need.depletion_mm == pytest.approx(27.8, abs=0.1)
    assert need.litres == pytest.approx(31, abs=1)
    assert new.depletion_from_tension(80.0) == pytest.approx(15.1, abs=0.1)
    generous = assess_watering(friday, replace(topped, rules=replace(topped.rules, drain_share=1.0)))["t-new"]
    assert new.drainable_mm == pytest.approx(119.5, abs=0.1)
    assert generous.litres == pytest.approx(167, abs=1)
    half = assess_watering(friday, replace(topped, rules=replace(topped.rules, drain_share=0.5)))["t-new"]
    assert half.litres == pytest.approx((27.8 + 0.5 * 119.5) * 1.131, abs=1)  # the share caps it
    lawn = replace(new, asset="g-lawn", is_tree=False)  # the same small store, but a green space
    on_lawn = replace(topped, sites=[lawn], rules=replace(topped.rules, drain_share=1.0))
    assert assess_watering(friday, on_lawn)["g-lawn"].litres == pytest.approx(31, abs=1)  # only the refill


def test_small_top_ups_wait_only_where_the_tree_would_not_reach_critical_tension() -> None:
    # A first-summer root ball needs ~38 L at most: below a 40 L minimum, but without it the ball passes 80 kPa
    # within days, so it goes; a sandy-loam fifth-year tree (80 kPa at 85 % of TAW) with a small top-up waits.
    _, friday, topped = root_ball_before_a_weekly_run(min_litres=40.0)
    need = assess_watering(friday, topped)["t-new"]
    assert 0 < need.litres < 40.0 and need.postponed_by is None
    sandy = young_tree_site("t-sandy", TOWN, "sandy_loam", planting_year=2022, season_year=2026)
    short = replace(topped, sites=[sandy], horizon_days=2, rules=replace(topped.rules, min_litres=400.0))
    need = assess_watering(friday, short)["t-sandy"]
    assert (need.litres, need.postponed_by) == (0, "small")


def test_sensor_corrections_stay_within_an_age_band() -> None:
    # A sensed first-summer tree reads wet (20 kPa); an unsensored first-summer tree of the same soil and exposure
    # takes its correction, a fifth-year tree of the same soil and exposure does not.
    sensed = young_tree_site("t-sensed", TOWN, "loam", planting_year=2026, season_year=2026)
    same_band = young_tree_site("t-same", TOWN, "loam", planting_year=2026, season_year=2026)
    older = young_tree_site("t-older", TOWN, "loam", planting_year=2022, season_year=2026)
    last = MONDAY + timedelta(days=6)
    watering = WateringInput(
        [sensed, same_band, older], lyon_week(), soil={"t-sensed": [SoilObservation(last, tension_kpa=20.0)]}
    )
    model_only = assess_watering(MONDAY + timedelta(days=7), replace(watering, soil={}))
    needs = assess_watering(MONDAY + timedelta(days=7), watering)
    assert needs["t-same"].depletion_mm == pytest.approx(needs["t-sensed"].depletion_mm, abs=0.2)
    assert needs["t-same"].depletion_mm < model_only["t-same"].depletion_mm - 5
    assert needs["t-older"].depletion_mm == pytest.approx(model_only["t-older"].depletion_mm, abs=1e-9)


def test_no_rain_ahead_postpones_nothing_even_for_a_fairly_wet_pit() -> None:
    # Two dry Lyon days leave the 1 m loam zone 10.25 mm depleted, 15.3 mm after the plan day: below half of RAW
    # (19.0 mm), but six more days of ~5.1 mm take it past RAW (38.1 mm) before a run a week later. No rain is
    # forecast, so nothing may be put off "by rain" (it was, while the depletion was below half of RAW): the refill
    # pours 15.3 mm on 4 m² (61 L); the top-up to stay at 70 % of RAW would need 15.3 + 30.6 − 26.7 = 19.2 mm,
    # more than the zone holds below field capacity, so it is the same refill.
    deep = young_tree(root_depth_m=1.0)
    weather = {TOWN: TownWeather(45 + 43 / 60, 200.0, lyon_week()[TOWN].measured[:2])}
    day = MONDAY + timedelta(days=2)
    refill = assess_watering(day, WateringInput([deep], weather, horizon_days=7))["t-1"]
    assert refill.depletion_mm == pytest.approx(15.3, abs=0.1)
    assert (refill.postponed_by, refill.litres) == (None, pytest.approx(61.5, abs=1))
    topped = assess_watering(
        day, WateringInput([deep], weather, horizon_days=7, rules=BalanceRules(top_up_share_of_trigger=0.7))
    )
    assert (topped["t-1"].postponed_by, topped["t-1"].litres) == (None, pytest.approx(61.5, abs=1))
