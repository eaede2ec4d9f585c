"""The virtual sensors: a seeded world of six towns and a simulation whose uplinks behave like the real devices'."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.sim import MODEL_QUANTITIES, Simulation, build_world, physics
from edge.sim.geography import DISTRICT_BOUNDS, TOWNS
from edge.sim.world import BIN_MODEL, SOIL_MODEL, WEATHER_MODEL, World
from flurfunk.contracts import MUNICIPALITIES, AssetKind, Quantity, Uplink

JULY = datetime(2025, 7, 14, tzinfo=UTC)
NOVEMBER = datetime(2025, 11, 10, tzinfo=UTC)


class RecordingEncoder:
    """A stand-in for the real payload encoders: CBOR of the values, and a log of what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Quantity, ...]]] = []

    def __call__(self, model_id: str, values: Mapping[Quantity, float]) -> tuple[int, bytes]:
        self.calls.append((model_id, tuple(values)))
        return 2, cbor2.dumps({quantity.value: value for quantity, value in values.items()})


def decoded(uplink: Uplink) -> dict[str, float]:
    return cbor2.loads(uplink.payload)


@pytest.fixture(scope="module")
def small_world() -> World:
    return build_world(seed=11, scale=0.2)


def _in_district(latitude: float, longitude: float) -> bool:
    south, north, west, east = DISTRICT_BOUNDS
    return south <= latitude <= north and west <= longitude <= east


# --- geography and world ----------------------------------------------------------------------------------------


def test_all_six_towns_have_villages_depot_and_gateway_inside_the_district() -> None:
    assert tuple(town.municipality for town in TOWNS) == MUNICIPALITIES
    for town in TOWNS:
        assert town.villages, town.municipality
        assert len({village.name for village in town.villages}) == len(town.villages)
        for village in town.villages:
            assert _in_district(village.latitude, village.longitude), (town.municipality, village.name)
        assert town.depot.municipality == town.municipality
        assert _in_district(town.depot.latitude, town.depot.longitude)
        assert _in_district(town.gateway.latitude, town.gateway.longitude)
        assert re.fullmatch(r"gw-[a-z\-]+", town.gateway.id)
    assert TOWNS[0].gateway.id == "gw-waechtersbach"
    assert len({town.gateway.eui for town in TOWNS}) == len(TOWNS)
    assert len({town.code for town in TOWNS}) == len(TOWNS)
    # Multi-village towns really have their Ortsteile, not just the core town.
    assert {"Aufenau", "Wittgenborn"} <= {v.name for v in TOWNS[0].villages}
    assert {"Sterbfritz", "Altengronau", "Züntersbach"} <= {v.name for v in TOWNS[4].villages}


def test_world_at_scale_one_has_the_promised_assets_in_every_town() -> None:
    world = build_world(seed=1)
    kinds = defaultdict(int)
    for asset in world.assets:
        kinds[asset.kind] += 1
    assert 330 <= kinds[AssetKind.BIN] <= 390
    assert 100 <= kinds[AssetKind.TREE] <= 140
    assert kinds[AssetKind.GREEN_SPACE] == 24
    assert kinds[AssetKind.WEATHER_STATION] == 6
    assert [depot.municipality for depot in world.depots] == list(MUNICIPALITIES)
    assert [gateway.municipality for gateway in world.gateways] == list(MUNICIPALITIES)
    for municipality in MUNICIPALITIES:
        here = {asset.kind for asset in world.assets if asset.municipality == municipality}
        assert here == set(AssetKind), municipality

    villages_of = {town.municipality: {village.name for village in town.villages} for town in TOWNS}
    for asset in world.assets:
        assert asset.village in villages_of[asset.municipality], asset.id
        assert _in_district(asset.latitude, asset.longitude), asset.id
        assert re.fullmatch(r"(wae|bor|bss|bir|sin|ste)-(bin|tree|green|weather)-\d{3}", asset.id), asset.id
    bins = [asset for asset in world.assets if asset.kind is AssetKind.BIN]
    assert {b.waste_type for b in bins} == {"residual", "paper", "organic", "glass"}
    for b in bins:
        assert 120 <= (b.capacity_l or 0) <= 1100
        assert b.sensor_to_bottom_m is not None and b.sensor_to_full_m is not None
        assert 0 < b.sensor_to_full_m < b.sensor_to_bottom_m
    trees = [asset for asset in world.assets if asset.kind is AssetKind.TREE]
    young = [t for t in trees if t.planting_year is not None and 2021 <= t.planting_year <= 2026]
    assert len(young) >= len(trees) // 3
    assert all(t.species for t in trees)


def test_devices_match_their_assets_models_and_intervals() -> None:
    world = build_world(seed=2, scale=0.3)
    expected = {
        AssetKind.BIN: (BIN_MODEL, 3600),
        AssetKind.TREE: (SOIL_MODEL, 3600),
        AssetKind.GREEN_SPACE: (SOIL_MODEL, 3600),
        AssetKind.WEATHER_STATION: (WEATHER_MODEL, 600),
    }
    assert len(world.devices) == len(world.assets)
    for asset in world.assets:
        device = world.device_of(asset.id)
        assert (device.model_id, device.report_interval_s) == expected[asset.kind]
    with pytest.raises(KeyError, match="no asset"):
        world.device_of("wae-bin-999")


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_world_is_a_function_of_the_seed(seed: int) -> None:
    first, again = build_world(seed, scale=0.25), build_world(seed, scale=0.25)
    assert first.assets == again.assets and first.devices == again.devices
    euis = [device.dev_eui for device in first.devices]
    assert len(set(euis)) == len(euis)
    assert len({asset.id for asset in first.assets}) == len(first.assets)
    assert all(_in_district(asset.latitude, asset.longitude) for asset in first.assets)
    other = build_world(seed + 1, scale=0.25)
    assert [d.dev_eui for d in other.devices] != euis


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), 1e6])
def test_world_rejects_a_senseless_scale(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        build_world(1, scale=scale)


# --- the simulation: determinism, order, cadence ----------------------------------------------------------------


def test_same_seed_gives_identical_uplinks_and_another_seed_does_not(small_world: World) -> None:
    def run(seed: int) -> list[Uplink]:
        return Simulation(small_world, seed, JULY, RecordingEncoder()).advance(JULY + timedelta(hours=30))

    first, again, other = run(5), run(5), run(6)
    assert first == again
    assert [u.model_dump() for u in first] == [u.model_dump() for u in again]
    assert [u.payload for u in first] != [u.payload for u in other]


def test_chunking_advance_does_not_change_a_single_byte(small_world: World) -> None:
    whole = Simulation(small_world, 3, JULY, RecordingEncoder()).advance(JULY + timedelta(hours=20))
    chunked_sim = Simulation(small_world, 3, JULY, RecordingEncoder())
    chunked: list[Uplink] = []
    moment = JULY
    for step_s in [1, 599, 600, 7, 3593, 1800, 13, 4000, 60_000]:
        moment += timedelta(seconds=step_s)
        chunked += chunked_sim.advance(moment)
    chunked += chunked_sim.advance(JULY + timedelta(hours=20))
    assert chunked_sim.now == JULY + timedelta(hours=20)
    assert chunked == whole


def test_uplinks_are_time_ordered_with_consecutive_frame_counters_and_plausible_radio(small_world: World) -> None:
    sim = Simulation(small_world, 4, NOVEMBER, RecordingEncoder())
    uplinks = sim.advance(NOVEMBER + timedelta(hours=12)) + sim.advance(NOVEMBER + timedelta(hours=26))
    times = [u.received_at for u in uplinks]
    assert times == sorted(times)
    assert times[0] > NOVEMBER and times[-1] <= NOVEMBER + timedelta(hours=26)
    counters: dict[str, list[int]] = defaultdict(list)
    for uplink in uplinks:
        counters[uplink.dev_eui].append(uplink.f_cnt)
    assert set(counters) == {device.dev_eui for device in small_world.devices}
    for series in counters.values():
        assert series == list(range(series[0], series[0] + len(series)))

    gateway_of = {town.municipality: town.gateway.eui for town in TOWNS}
    municipality_of = {d.dev_eui: small_world.asset(d.asset).municipality for d in small_world.devices}
    for uplink in uplinks:
        assert uplink.source == "simulator"
        (rx,) = uplink.rx
        assert rx.gateway_id == gateway_of[municipality_of[uplink.dev_eui]]
        assert -137 <= rx.rssi <= -25 and -20 <= rx.snr <= 12.5
        assert 863_000_000 <= rx.frequency_hz <= 870_000_000
        assert re.fullmatch(r"SF(7|8|9|10|11|12)BW125", rx.data_rate)
    # Revalidating proves every uplink honours the contract.
    assert all(Uplink.model_validate(u.model_dump()) == u for u in uplinks[:500])


def test_uplink_cadence_matches_each_devices_report_interval(small_world: World) -> None:
    sim = Simulation(small_world, 8, JULY, RecordingEncoder())
    uplinks = sim.advance(JULY + timedelta(days=1))
    by_device: dict[str, list[datetime]] = defaultdict(list)
    for uplink in uplinks:
        by_device[uplink.dev_eui].append(uplink.received_at)
    for device in small_world.devices:
        series = by_device[device.dev_eui]
        assert len(series) == 86400 // device.report_interval_s
        gaps = {(later - earlier).total_seconds() for earlier, later in itertools.pairwise(series)}
        assert gaps == {float(device.report_interval_s)}
    phases = {t[0].second + 60 * t[0].minute for t in by_device.values()}
    assert len(phases) > len(small_world.devices) // 2  # devices do not all talk in the same second


def test_encoder_gets_exactly_the_quantities_of_each_model(small_world: World) -> None:
    encoder = RecordingEncoder()
    Simulation(small_world, 1, NOVEMBER, encoder).advance(NOVEMBER + timedelta(hours=3))
    assert MODEL_QUANTITIES[BIN_MODEL] == (Quantity.DISTANCE_M, Quantity.BATTERY_PCT, Quantity.TILT)
    assert MODEL_QUANTITIES[SOIL_MODEL] == (
        Quantity.SOIL_VWC,
        Quantity.SOIL_TEMPERATURE_C,
        Quantity.SOIL_EC_US_CM,
        Quantity.BATTERY_V,
    )
    assert set(MODEL_QUANTITIES[WEATHER_MODEL]) == {
        Quantity.AIR_TEMPERATURE_C,
        Quantity.HUMIDITY_PCT,
        Quantity.PRESSURE_HPA,
        Quantity.RAIN_MM,
        Quantity.WIND_SPEED_MS,
        Quantity.WIND_DIRECTION_DEG,
        Quantity.SOLAR_RADIATION_W_M2,
        Quantity.BATTERY_V,
    }
    seen_models = set()
    for model_id, quantities in encoder.calls:
        assert quantities == MODEL_QUANTITIES[model_id], model_id
        seen_models.add(model_id)
    assert seen_models == {BIN_MODEL, SOIL_MODEL, WEATHER_MODEL}


def test_an_encoder_returning_garbage_is_named() -> None:
    world = build_world(1, scale=0.05)
    sim = Simulation(world, 1, JULY, lambda model_id, values: (0, b""))
    with pytest.raises(ValueError, match=r"encoder for .* returned f_port 0"):
        sim.advance(JULY + timedelta(hours=1))


def test_time_needs_a_zone_and_never_runs_backwards(small_world: World) -> None:
    with pytest.raises(ValueError, match="time zone"):
        Simulation(small_world, 1, datetime(2025, 7, 1), RecordingEncoder())
    sim = Simulation(small_world, 1, JULY, RecordingEncoder())
    sim.advance(JULY + timedelta(hours=1))
    with pytest.raises(ValueError, match="back in time"):
        sim.advance(JULY)
    assert sim.advance(JULY + timedelta(hours=1)) == []


# --- bins --------------------------------------------------------------------------------------------------------


def test_bins_fill_up_and_an_emptying_resets_them(small_world: World) -> None:
    sim = Simulation(small_world, 9, JULY, RecordingEncoder())
    bins = [asset for asset in small_world.assets if asset.kind is AssetKind.BIN]
    before = {b.id: sim.fill_ratio(b.id) for b in bins}
    sim.advance(JULY + timedelta(days=2))
    after = {b.id: sim.fill_ratio(b.id) for b in bins}
    assert all(after[b.id] >= before[b.id] for b in bins)
    assert np.mean([after[b.id] - before[b.id] for b in bins]) > 0.1

    emptied_at = JULY + timedelta(days=2, hours=5, minutes=17)
    for b in bins:
        sim.empty_bin(b.id, emptied_at)  # scheduled: in the simulation's future
    assert sim.fill_ratio(bins[0].id) == after[bins[0].id]  # not yet: the crew comes later
    uplinks = sim.advance(emptied_at + timedelta(hours=1))
    assert all(sim.fill_ratio(b.id) < 0.1 for b in bins)

    geometry = {small_world.device_of(b.id).dev_eui: b for b in bins}
    near_bottom = later = 0
    for uplink in uplinks:
        b = geometry.get(uplink.dev_eui)
        if b is None or uplink.received_at <= emptied_at:
            continue
        later += 1
        near_bottom += abs(decoded(uplink)["distance_m"] - (b.sensor_to_bottom_m or 0.0)) < 0.06
    assert later == len(bins)
    assert near_bottom >= 0.9 * later  # stray echoes and knocked-over bins may read anything

    sim.empty_bin(bins[0].id, JULY)  # a report from the past applies now
    assert sim.fill_ratio(bins[0].id) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="not a bin"):
        sim.empty_bin(next(a.id for a in small_world.assets if a.kind is AssetKind.TREE), JULY)
    with pytest.raises(KeyError, match="no asset"):
        sim.empty_bin("wae-bin-999", JULY)


def test_a_week_overflows_some_bins_unless_a_crew_empties_them_daily() -> None:
    world = build_world(21, scale=0.3)
    bins = [asset.id for asset in world.assets if asset.kind is AssetKind.BIN]
    neglected = Simulation(world, 21, JULY, lambda m, v: (1, b"\x00"))
    neglected.advance(JULY + timedelta(days=7))
    assert neglected.overflowed_bin_hours > 0
    assert sum(neglected.fill_ratio(b) >= 1.0 for b in bins) >= len(bins) // 4

    served = Simulation(world, 21, JULY, lambda m, v: (1, b"\x00"))
    for day in range(1, 8):
        served.advance(JULY + timedelta(days=day))
        for b in bins:
            served.empty_bin(b, served.now)
    assert served.overflowed_bin_hours == 0


def test_distance_readings_follow_the_fill_ratio(small_world: World) -> None:
    sim = Simulation(small_world, 2, NOVEMBER, RecordingEncoder())
    b = next(asset for asset in small_world.assets if asset.kind is AssetKind.BIN)
    eui = small_world.device_of(b.id).dev_eui
    distances = [decoded(u)["distance_m"] for u in sim.advance(NOVEMBER + timedelta(days=3)) if u.dev_eui == eui]
    truth = b.sensor_to_bottom_m - sim.fill_ratio(b.id) * (b.sensor_to_bottom_m - b.sensor_to_full_m)
    assert np.median(distances[-5:]) == pytest.approx(max(truth, 0.03), abs=0.05)
    assert np.median(distances[:5]) > np.median(distances[-5:])


# --- soil and weather --------------------------------------------------------------------------------------------


def _dry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the rain out of the simulated weather: a July heat wave."""
    observe = physics.observe_weather
    monkeypatch.setattr(physics, "observe_weather", lambda *a, **k: physics.without_rain(observe(*a, **k)))


def test_young_trees_dry_out_within_days_of_a_dry_july(monkeypatch: pytest.MonkeyPatch) -> None:
    _dry(monkeypatch)
    world = build_world(4, scale=0.5)
    young = [a.id for a in world.assets if a.kind is AssetKind.TREE and (a.planting_year or 0) >= 2021]
    sim = Simulation(world, 4, JULY, lambda model_id, values: (1, b"\x00"))
    start = {tree: sim.soil_vwc(tree) for tree in young}
    assert all(0.15 < vwc < 0.36 for vwc in start.values())
    days_to_stress: dict[str, int] = {}
    for day in range(1, 11):
        sim.advance(JULY + timedelta(days=day))
        for tree in young:
            if tree not in days_to_stress and sim.soil_vwc(tree) < 0.15:
                days_to_stress[tree] = day
    assert len(days_to_stress) == len(young)
    assert 2 <= np.median(list(days_to_stress.values())) <= 7
    assert all(sim.soil_vwc(tree) >= physics.RESIDUAL_VWC for tree in young)


def test_november_soil_stays_moist(monkeypatch: pytest.MonkeyPatch) -> None:
    _dry(monkeypatch)
    world = build_world(4, scale=0.5)
    sites = [a.id for a in world.assets if a.kind in (AssetKind.TREE, AssetKind.GREEN_SPACE)]
    sim = Simulation(world, 4, NOVEMBER, lambda model_id, values: (1, b"\x00"))
    sim.advance(NOVEMBER + timedelta(days=7))
    assert min(sim.soil_vwc(site) for site in sites) > 0.18


def test_watering_wets_the_root_zone_and_rain_does_too(small_world: World) -> None:
    sim = Simulation(small_world, 6, JULY, RecordingEncoder())
    sim.advance(JULY + timedelta(days=3))
    tree = next(a.id for a in small_world.assets if a.kind is AssetKind.TREE)
    dry = sim.soil_vwc(tree)
    sim.water(tree, 100.0, sim.now)
    assert sim.soil_vwc(tree) > dry + 0.03
    later = sim.now + timedelta(minutes=30)
    sim.water(tree, 5000.0, later)  # scheduled: applies when the simulation gets there
    before = sim.soil_vwc(tree)
    sim.advance(later + timedelta(seconds=1))
    assert sim.soil_vwc(tree) > before + 0.05
    with pytest.raises(ValueError, match="litres"):
        sim.water(tree, -1.0, sim.now)
    with pytest.raises(ValueError, match="not a tree"):
        sim.water(next(a.id for a in small_world.assets if a.kind is AssetKind.BIN), 10.0, sim.now)

    zone = _zone(1)
    vwc = np.array([0.12])
    no_et = np.zeros(1)
    assert physics.step_root_zone(vwc, zone, no_et, np.array([10.0]), 600)[0] > 0.12 + 0.03
    assert physics.step_root_zone(vwc, zone, np.array([0.2]), np.zeros(1), 600)[0] < 0.12


def test_weather_is_plausible_and_rain_reported_adds_up(small_world: World) -> None:
    encoder = RecordingEncoder()
    sim = Simulation(small_world, 12, JULY, encoder)
    uplinks = sim.advance(JULY + timedelta(days=4))
    stations = {small_world.device_of(a.id).dev_eui: a.municipality for a in small_world.assets
                if a.kind is AssetKind.WEATHER_STATION}  # fmt: skip
    reported_rain: dict[str, float] = defaultdict(float)
    temperatures, radiation = [], []
    for uplink in uplinks:
        if uplink.dev_eui in stations:
            values = decoded(uplink)
            reported_rain[stations[uplink.dev_eui]] += values["rain_mm"]
            temperatures.append(values["air_temperature_c"])
            radiation.append(values["solar_radiation_w_m2"])
            assert 5 <= values["humidity_pct"] <= 100
            assert 900 <= values["pressure_hpa"] <= 1050
            assert 0 <= values["wind_direction_deg"] < 360 and values["wind_speed_ms"] >= 0
    assert 5 < min(temperatures) < max(temperatures) < 38
    assert max(radiation) > 500 and min(radiation) == 0  # sunny noons, dark nights
    for municipality in MUNICIPALITIES:
        # All rain but that of the last, not yet reported step reaches the cloud.
        assert reported_rain[municipality] <= sim.rain_total_mm(municipality) + 0.01
        assert reported_rain[municipality] >= sim.rain_total_mm(municipality) - 1.0


def test_a_full_scale_week_emits_every_scheduled_report() -> None:
    world = build_world(42)
    sim = Simulation(world, 42, JULY, lambda model_id, values: (1, b"\x01"))
    uplinks = sim.advance(JULY + timedelta(days=7))
    assert len(uplinks) == 7 * (24 * (len(world.devices) - 6) + 144 * 6)


def test_a_day_through_the_real_encoders_decodes_back() -> None:
    decoders = pytest.importorskip("decoders")
    world = build_world(5, scale=0.1)
    sim = Simulation(world, 5, JULY, decoders.encode_quantities)
    model_of = {device.dev_eui: device.model_id for device in world.devices}
    uplinks = sim.advance(JULY + timedelta(days=1))
    assert uplinks
    for uplink in uplinks:
        result = decoders.decode(model_of[uplink.dev_eui], uplink.f_port, uplink.payload)
        carried = {m.quantity for m in result.measurements}
        assert set(MODEL_QUANTITIES[model_of[uplink.dev_eui]]) <= carried


# --- physics properties ------------------------------------------------------------------------------------------


def _zone(n: int) -> physics.RootZone:
    return physics.RootZone(
        field_capacity=np.full(n, 0.32),
        wilting_point=np.full(n, 0.1),
        saturation=np.full(n, 0.44),
        depth_mm=np.full(n, 300.0),
        crop_factor=np.full(n, 1.1),
        depletion_fraction=np.full(n, 0.5),
        rain_catch=np.full(n, 1.3),
        area_m2=np.full(n, 4.0),
    )


@settings(max_examples=300)
@given(
    vwc=st.floats(0.0, 0.5),
    et0=st.floats(0.0, 2.0),
    rain=st.floats(0.0, 30.0),
    litres=st.floats(0.0, 5000.0),
)
def test_root_zone_water_stays_between_residual_and_saturation(vwc: float, et0: float, rain: float, litres: float):
    zone = _zone(1)
    after = physics.step_root_zone(np.array([vwc]), zone, np.array([et0]), np.array([rain]), 600)[0]
    assert physics.RESIDUAL_VWC <= after <= 0.44
    watered = physics.add_irrigation(np.array([vwc]), zone, np.array([litres]))[0]
    assert min(vwc, 0.44) <= watered <= max(vwc, 0.44)


@settings(max_examples=200)
@given(fill=st.floats(0.0, physics.MAX_FILL), noise=st.floats(-0.05, 0.05), bottom=st.floats(0.5, 1.5))
def test_ultrasonic_distance_stays_in_the_sensors_range(fill: float, noise: float, bottom: float) -> None:
    distance = physics.ultrasonic_distance_m(np.array([fill]), np.array([bottom]), np.array([0.12]), np.array([noise]))
    assert 0.03 <= distance[0] <= bottom + 0.05


@settings(max_examples=100, deadline=None)
@given(
    shocks=st.lists(st.floats(-4.0, 4.0), min_size=16, max_size=16),
    moment=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
)
def test_weather_observations_stay_physical(shocks: list[float], moment: datetime) -> None:
    state = physics.initial_weather(6, np.array(shocks))
    state = physics.advance_weather(state, np.array(shocks[::-1]))
    latitude = np.array([t.gateway.latitude for t in TOWNS])
    longitude = np.array([t.gateway.longitude for t in TOWNS])
    altitude = np.array([t.altitude_m for t in TOWNS])
    weather = physics.observe_weather(state, moment, latitude, longitude, altitude)
    assert np.all((weather.humidity_pct >= 5) & (weather.humidity_pct <= 100))
    assert np.all(weather.rain_mm >= 0) and np.all(weather.solar_radiation_w_m2 >= 0)
    assert np.all(weather.solar_radiation_w_m2 <= 1100)
    assert np.all((weather.wind_direction_deg >= 0) & (weather.wind_direction_deg < 360))
    assert np.all((weather.air_temperature_c > -40) & (weather.air_temperature_c < 45))
    assert np.all((weather.pressure_hpa > 900) & (weather.pressure_hpa < 1060))


def test_hargreaves_reference_et_is_summer_high_and_winter_low() -> None:
    summer_day = sum(
        physics.reference_et_mm(np.array([22.0]), np.array([max(0.0, 800.0 * np.sin(np.pi * h / 16))]), 3600)[0]
        for h in range(16)
    )
    winter_day = sum(
        physics.reference_et_mm(np.array([4.0]), np.array([max(0.0, 200.0 * np.sin(np.pi * h / 8))]), 3600)[0]
        for h in range(8)
    )
    assert 3.5 < summer_day < 7.0
    assert winter_day < 0.6
