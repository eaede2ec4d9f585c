"""The virtual sensors at work: advance simulated time and get the uplinks the district's devices would send.

Deterministic: the same world, seed, start and calls give byte-identical uplinks, however `advance` is chunked.
Time runs in 10-minute physics steps; each device reports at its own second within its interval.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from edge.sim import physics
from edge.sim.faults import SPIKE, FaultInjector
from edge.sim.physics import STEP_S, RootZone
from edge.sim.world import BIN_MODEL, SOIL_MODEL, WASTE_TYPES, WEATHER_MODEL, World, bin_usage
from flurfunk.contracts import AssetKind, Quantity, RxInfo, Uplink

Encoder = Callable[[str, Mapping[Quantity, float]], tuple[int, bytes]]  # (model_id, values) -> (f_port, payload)

# The quantities each device model carries in its uplink, in payload order.
MODEL_QUANTITIES: dict[str, tuple[Quantity, ...]] = {
    BIN_MODEL: (Quantity.DISTANCE_M, Quantity.BATTERY_PCT, Quantity.TILT),
    SOIL_MODEL: (Quantity.SOIL_VWC, Quantity.SOIL_TEMPERATURE_C, Quantity.SOIL_EC_US_CM, Quantity.BATTERY_V),
    WEATHER_MODEL: (
        Quantity.AIR_TEMPERATURE_C,
        Quantity.HUMIDITY_PCT,
        Quantity.PRESSURE_HPA,
        Quantity.RAIN_MM,
        Quantity.WIND_SPEED_MS,
        Quantity.WIND_DIRECTION_DEG,
        Quantity.SOLAR_RADIATION_W_M2,
        Quantity.BATTERY_V,
    ),
}

LOCAL_TIME = ZoneInfo("Europe/Berlin")
EMPTIED_FILL_RATIO = 0.01  # what sticks to the bottom after a collection
MAX_WATERING_L = 20_000.0  # per call: several trailer loads; more is a unit mistake (mL for L) on the caller's side

_EU868_CHANNELS_HZ = (868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000, 867_700_000,
                      867_900_000)  # fmt: skip
# Demodulation floor per spreading factor (Semtech SX1276 datasheet) and the network server's ADR margin.
_REQUIRED_SNR_DB = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
_ADR_MARGIN_DB = 10.0
_NOISE_FLOOR_DBM = -117.0  # thermal noise in 125 kHz plus a 6 dB receiver noise figure
_TX_POWER_DBM = 14.0
_EXTRA_LOSS_DB = {BIN_MODEL: 6.0, SOIL_MODEL: 4.0, WEATHER_MODEL: 0.0}  # under a lid / near the ground / on a mast

_GROUP_BIN, _GROUP_SOIL, _GROUP_WEATHER = 0, 1, 2
_GROUP_OF_KIND = {
    AssetKind.BIN: _GROUP_BIN,
    AssetKind.TREE: _GROUP_SOIL,
    AssetKind.GREEN_SPACE: _GROUP_SOIL,
    AssetKind.WEATHER_STATION: _GROUP_WEATHER,
}
_REPORT_NORMALS = 6  # per device and window: rssi, snr, up to four measurement noises
_REPORT_UNIFORMS = 3  # per device and window: channel, glitch chance, glitch value

_TILT_PER_HOUR = 1.0 / 2500.0  # a bin knocked over now and then
_BIN_BATTERY_PCT_PER_DAY = 0.012  # EM310-UDL: years on one cell at hourly reports
_CELL_SAG_V_PER_DAY = 0.0002
YOUNG_TREE_YEARS = 5  # the Bauhof waters a new tree for its first years (FACTS: until year 3–5)


class Simulation:
    """The district's sensors from `start` on; `advance(until)` returns their uplinks in time order."""

    def __init__(
        self, world: World, seed: int, start: datetime, encode: Encoder, faults: FaultInjector | None = None
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must carry a time zone (UTC)")
        self.now: datetime = start.astimezone(UTC)
        self._world = world
        self._encode = encode
        self._faults = faults  # falsifies reported values only, with its own generator: the physics stay the same
        self._rng = np.random.default_rng([seed, 0x5113])
        self._state_s = math.floor(self.now.timestamp() / STEP_S) * STEP_S
        self._events: list[tuple[float, int, int, int, float]] = []  # (at, order, group, index, litres)
        self._event_order = 0
        self._rx_cache: dict[tuple[str, int, float, int, str], RxInfo] = {}
        self._overflow_bin_s = 0

        towns = list(world.towns)
        town_index = {town.municipality: i for i, town in enumerate(towns)}
        self._town_index = town_index
        stations = {asset.municipality: asset for asset in world.assets if asset.kind is AssetKind.WEATHER_STATION}
        self._town_lat = np.array([stations.get(t.municipality, t.depot).latitude for t in towns])
        self._town_lon = np.array([stations.get(t.municipality, t.depot).longitude for t in towns])
        self._town_alt = np.array([t.altitude_m for t in towns], dtype=float)
        self._rain_since_report = np.zeros(len(towns))
        self._rain_total = np.zeros(len(towns))

        shocks = self._rng.standard_normal(physics.WEATHER_SHOCKS_PER_STEP + 2 * len(towns))
        self._weather = physics.initial_weather(len(towns), shocks)
        self._observed = physics.observe_weather(
            self._weather, _at(self._state_s), self._town_lat, self._town_lon, self._town_alt
        )

        self._slot: dict[str, tuple[int, int]] = {}  # asset id -> (group, index within group)
        self._init_bins(world, town_index)
        self._init_soil(world, town_index)
        self._init_stations(world, town_index)
        self._init_devices(world, town_index)
        self._draw_report_noise()

    # --- public --------------------------------------------------------------------------------------------------

    def advance(self, until: datetime) -> list[Uplink]:
        """Every uplink emitted in (now, until], time-ordered; then now = until."""
        if until.tzinfo is None:
            raise ValueError("until must carry a time zone (UTC)")
        until = until.astimezone(UTC)
        if until < self.now:
            raise ValueError(f"cannot go back in time: until {until.isoformat()} is before now {self.now.isoformat()}")
        until_s = until.timestamp()
        uplinks: list[Uplink] = []
        while True:
            window_end = self._state_s + STEP_S
            self._emit_window(min(until_s, window_end - 1e-6), uplinks)
            if until_s < window_end:
                break
            self._step()
        self.now = until
        return uplinks

    def empty_bin(self, asset_id: str, at: datetime) -> None:
        """A crew emptied the bin at `at` (applied at once if `at` is not after now)."""
        self._schedule(asset_id, _GROUP_BIN, at, 0.0, "empty_bin")

    def water(self, asset_id: str, litres: float, at: datetime) -> None:
        """A crew poured `litres` on a tree pit or green space at `at` (applied at once if not after now)."""
        if not (math.isfinite(litres) and 0.0 <= litres <= MAX_WATERING_L):
            raise ValueError(f"litres must be between 0 and {MAX_WATERING_L:g}, got {litres!r}")
        self._schedule(asset_id, _GROUP_SOIL, at, float(litres), "water")

    def fill_ratio(self, asset_id: str) -> float:
        """Ground truth fill of a bin (0 empty, 1 full, up to 1.2 overflowing)."""
        return float(self._fill[self._index(asset_id, _GROUP_BIN, "fill_ratio")])

    def soil_vwc(self, asset_id: str) -> float:
        """Ground truth volumetric water content (m³/m³) in a tree's or green space's root zone."""
        return float(self._vwc[self._index(asset_id, _GROUP_SOIL, "soil_vwc")])

    def rain_total_mm(self, municipality: str) -> float:
        """Ground truth rain that fell on a town since the start."""
        return float(self._rain_total[self._town_index[municipality]])

    def stress_threshold_vwc(self, asset_id: str) -> float:
        """Ground truth water content below which the plant is stressed (FAO-56 readily available water used)."""
        index = self._index(asset_id, _GROUP_SOIL, "stress_threshold_vwc")
        return float(self._zone.readily_available_threshold()[index])

    @property
    def overflowed_bin_hours(self) -> int:
        """Ground truth: bin-hours spent at or above 100 % since the start."""
        return self._overflow_bin_s // 3600

    # --- set-up --------------------------------------------------------------------------------------------------

    def _init_bins(self, world: World, town_index: dict[str, int]) -> None:
        bins = [asset for asset in world.assets if asset.kind is AssetKind.BIN]
        for i, asset in enumerate(bins):
            self._slot[asset.id] = (_GROUP_BIN, i)
        n = len(bins)
        self._bin_town = np.array([town_index[a.municipality] for a in bins], dtype=int)
        self._bin_type = np.array([WASTE_TYPES.index(a.waste_type or "residual") for a in bins], dtype=int)
        self._bin_bottom = np.array([a.sensor_to_bottom_m or 1.0 for a in bins])
        self._bin_full = np.array([a.sensor_to_full_m or 0.1 for a in bins])
        # The calibrated rates and weekday rhythms of the operations bench (README "How the simulation is
        # calibrated"): by waste type, size and site, so fixed weekly rounds find bins about half full.
        usage = bin_usage(world)
        self._bin_daily_rate = usage.daily_rate
        self._bin_weekday_factor = np.array([physics.SITE_WEEKDAY_FACTOR[site] for site in usage.sites])  # bins × 7
        self._fill = self._rng.uniform(0.0, 0.75, size=n)
        self._tilted = np.zeros(n, dtype=bool)
        self._bin_battery_pct = self._rng.uniform(55.0, 100.0, size=n)

    def _init_soil(self, world: World, town_index: dict[str, int]) -> None:
        sites = [asset for asset in world.assets if asset.kind in (AssetKind.TREE, AssetKind.GREEN_SPACE)]
        for i, asset in enumerate(sites):
            self._slot[asset.id] = (_GROUP_SOIL, i)
        n = len(sites)
        rng = self._rng
        is_tree = np.array([a.kind is AssetKind.TREE for a in sites], dtype=bool)
        planted = np.array([a.planting_year or 1990 for a in sites])
        young = is_tree & (planted >= self.now.year - YOUNG_TREE_YEARS)
        # Young trees: shallow roots in a small, hot, paved pit. Old trees: roots far beyond the probe.
        # Green spaces: a shallow turf layer watered by sprinkler over tens of square metres.
        depth_m = np.where(young, rng.uniform(0.22, 0.32, n), np.where(is_tree, rng.uniform(0.35, 0.5, n), 0.0))
        depth_m = np.where(is_tree, depth_m, rng.uniform(0.12, 0.2, n))
        crop_factor = np.where(young, rng.uniform(1.0, 1.2, n), np.where(is_tree, rng.uniform(0.9, 1.1, n), 0.0))
        crop_factor = np.where(is_tree, crop_factor, rng.uniform(0.85, 0.95, n))
        area = np.where(young, rng.uniform(3.0, 6.0, n), np.where(is_tree, rng.uniform(6.0, 12.0, n), 0.0))
        area = np.where(is_tree, area, rng.uniform(40.0, 120.0, n))
        self._zone = RootZone(
            field_capacity=rng.uniform(0.28, 0.36, n),
            wilting_point=rng.uniform(0.07, 0.12, n),
            saturation=rng.uniform(0.42, 0.46, n),
            depth_mm=depth_m * 1000.0,
            crop_factor=crop_factor,
            depletion_fraction=np.full(n, 0.5),
            rain_catch=np.where(is_tree, 1.3, 1.0),
            area_m2=area,
        )
        self._soil_town = np.array([town_index[a.municipality] for a in sites], dtype=int)
        doy = physics.day_of_year(self.now)
        # Start between wilting point and field capacity: near capacity in winter, half-drained in high summer.
        wetness = np.clip(0.95 - 0.25 * physics.summerness(doy) + rng.normal(0.0, 0.08, n), 0.3, 1.0)
        self._vwc = self._zone.wilting_point + wetness * (self._zone.field_capacity - self._zone.wilting_point)
        self._soil_c = physics.climatological_temperature_c(doy, self._town_alt[self._soil_town]) + 1.0
        self._ec_reference = np.where(is_tree, rng.uniform(300.0, 900.0, n), rng.uniform(150.0, 500.0, n))
        self._soil_cell_v = rng.uniform(3.55, 3.66, n)

    def _init_stations(self, world: World, town_index: dict[str, int]) -> None:
        stations = [asset for asset in world.assets if asset.kind is AssetKind.WEATHER_STATION]
        for asset in stations:
            self._slot[asset.id] = (_GROUP_WEATHER, town_index[asset.municipality])
        self._station_cell_v = self._rng.uniform(3.55, 3.66, len(self._town_lat))

    def _init_devices(self, world: World, town_index: dict[str, int]) -> None:
        devices = world.devices
        n = len(devices)
        self._devices = devices
        group_and_index = [self._slot[device.asset] for device in devices]
        self._dev_group = np.array([g for g, _ in group_and_index], dtype=int)
        self._dev_member = np.array([i for _, i in group_and_index], dtype=int)
        self._dev_interval = np.array([device.report_interval_s for device in devices], dtype=np.int64)
        phase = (self._rng.random(n) * self._dev_interval).astype(np.int64)
        now_s = math.floor(self.now.timestamp())
        # First report strictly after now, on the device's own phase.
        self._next_report = now_s + 1 + (phase - (now_s + 1)) % self._dev_interval
        self._f_cnt = np.zeros(n, dtype=np.int64)

        gateways = {town.municipality: town.gateway for town in world.towns}
        distance_km = np.empty(n)
        extra_loss = np.empty(n)
        self._dev_gateway_eui: list[str] = []
        for i, device in enumerate(devices):
            asset = world.asset(device.asset)
            gateway = gateways[asset.municipality]
            self._dev_gateway_eui.append(gateway.eui)
            distance_km[i] = _haversine_km(asset.latitude, asset.longitude, gateway.latitude, gateway.longitude)
            extra_loss[i] = _EXTRA_LOSS_DB[device.model_id]
        shadowing = self._rng.normal(0.0, 5.0, n)
        path_loss = 112.0 + 30.0 * np.log10(np.maximum(distance_km, 0.05))
        self._rssi_mean = _TX_POWER_DBM + 2.0 - path_loss - extra_loss + shadowing
        self._snr_mean = np.minimum(self._rssi_mean - _NOISE_FLOOR_DBM, 10.0)
        spreading = np.full(n, 12, dtype=int)
        for sf in sorted(_REQUIRED_SNR_DB, reverse=True):
            spreading = np.where(self._snr_mean - _ADR_MARGIN_DB >= _REQUIRED_SNR_DB[sf], sf, spreading)
        self._data_rate = [f"SF{sf}BW125" for sf in spreading]

    # --- time ----------------------------------------------------------------------------------------------------

    def _step(self) -> None:
        """Physics over one step, from the current state time to the next."""
        rng = self._rng
        end_s = self._state_s + STEP_S
        moment = _at(end_s)
        shocks = rng.standard_normal(physics.WEATHER_SHOCKS_PER_STEP + 2 * len(self._town_lat))
        self._weather = physics.advance_weather(self._weather, shocks, STEP_S)
        observed = physics.observe_weather(self._weather, moment, self._town_lat, self._town_lon, self._town_alt)
        self._observed = observed
        self._rain_since_report += observed.rain_mm
        self._rain_total += observed.rain_mm
        days = STEP_S / 86400.0

        local = _at(end_s - STEP_S / 2).astimezone(LOCAL_TIME)
        doy = physics.day_of_year(moment)
        n_bins = self._fill.shape[0]
        burst = rng.gamma(0.5, 2.0, size=n_bins)
        tilt_chance = rng.random(n_bins)
        self._fill = np.minimum(
            self._fill
            + physics.site_fill_increment(
                self._bin_daily_rate,
                self._bin_weekday_factor[:, local.weekday()],
                self._bin_type,
                local.hour,
                doy,
                burst,
                STEP_S,
            ),
            physics.MAX_FILL,
        )
        self._tilted |= tilt_chance < _TILT_PER_HOUR * STEP_S / 3600.0
        self._bin_battery_pct = np.maximum(self._bin_battery_pct - _BIN_BATTERY_PCT_PER_DAY * days, 0.0)
        self._overflow_bin_s += int(np.count_nonzero(self._fill >= 1.0)) * STEP_S

        air_c = observed.air_temperature_c[self._soil_town]
        et0 = physics.reference_et_mm(air_c, observed.solar_radiation_w_m2[self._soil_town], STEP_S)
        self._vwc = physics.step_root_zone(self._vwc, self._zone, et0, observed.rain_mm[self._soil_town], STEP_S)
        self._soil_c = physics.step_soil_temperature(self._soil_c, air_c, STEP_S)
        self._soil_cell_v = self._soil_cell_v - _CELL_SAG_V_PER_DAY * days
        self._station_cell_v = self._station_cell_v - _CELL_SAG_V_PER_DAY * days

        self._state_s = end_s
        self._draw_report_noise()

    def _draw_report_noise(self) -> None:
        # Drawn per window for every device, used or not, so that chunking `advance` never shifts the stream.
        n = len(self._devices)
        self._normals = self._rng.standard_normal((n, _REPORT_NORMALS))
        self._uniforms = self._rng.random((n, _REPORT_UNIFORMS))

    def _emit_window(self, limit_s: float, uplinks: list[Uplink]) -> None:
        """Reports and crew actions due in the current window up to `limit_s`, in time order."""
        window_end = self._state_s + STEP_S
        due = np.flatnonzero((self._next_report < window_end) & (self._next_report <= limit_s))
        due = due[np.lexsort((due, self._next_report[due]))]
        times = self._next_report[due]
        emitted = 0
        while self._events and self._events[0][0] <= limit_s and self._events[0][0] < window_end:
            at_s, _, group, index, litres = heapq.heappop(self._events)
            before = int(np.searchsorted(times, at_s, side="left"))
            self._emit(due[emitted:before], uplinks)
            emitted = max(emitted, before)
            self._apply(group, index, litres)
        self._emit(due[emitted:], uplinks)

    def _emit(self, devices: np.ndarray, uplinks: list[Uplink]) -> None:
        if devices.size == 0:
            return
        values = self._values(devices)
        normals, uniforms = self._normals[devices], self._uniforms[devices]
        rssi = np.clip(np.round(self._rssi_mean[devices] + 2.0 * normals[:, 0]), -137, -25).astype(int).tolist()
        snr = np.clip(np.round((self._snr_mean[devices] + 1.5 * normals[:, 1]) * 4.0) / 4.0, -20.0, 12.5).tolist()
        channel = (uniforms[:, 0] * len(_EU868_CHANNELS_HZ)).astype(int).tolist()
        report_times = self._next_report[devices].tolist()
        frame_counters = (self._f_cnt[devices] % 2**32).tolist()
        for k, device_index in enumerate(devices.tolist()):
            device = self._devices[device_index]
            if self._faults is not None:
                values[k] = self._faults.apply(device.dev_eui, report_times[k], values[k])
            f_port, payload = self._encode(device.model_id, values[k])
            if not (isinstance(payload, bytes) and len(payload) <= 255 and 1 <= f_port <= 255):
                raise ValueError(
                    f"encoder for {device.model_id} returned f_port {f_port!r} and a payload of "
                    f"{len(payload) if isinstance(payload, bytes) else type(payload).__name__}; "
                    "expected f_port 1..255 and at most 255 bytes"
                )
            radio = (self._dev_gateway_eui[device_index], rssi[k], snr[k], channel[k], self._data_rate[device_index])
            rx = self._rx_cache.get(radio)
            if rx is None:
                # RxInfo is frozen: identical receptions share one object, which saves much validation time.
                rx = RxInfo(
                    gateway_id=radio[0],
                    rssi=radio[1],
                    snr=radio[2],
                    frequency_hz=_EU868_CHANNELS_HZ[radio[3]],
                    data_rate=radio[4],
                )
                if len(self._rx_cache) > 100_000:
                    self._rx_cache.clear()
                self._rx_cache[radio] = rx
            uplinks.append(
                Uplink(
                    dev_eui=device.dev_eui,
                    f_port=f_port,
                    f_cnt=frame_counters[k],
                    payload=payload,
                    received_at=_at(report_times[k]),
                    rx=(rx,),
                    source="simulator",
                )
            )
        self._f_cnt[devices] += 1
        self._next_report[devices] += self._dev_interval[devices]

    def _values(self, devices: np.ndarray) -> list[dict[Quantity, float]]:
        """What each reporting device measures now, rounded to its firmware's resolution."""
        values: list[dict[Quantity, float]] = [{} for _ in range(devices.size)]
        groups = self._dev_group[devices]
        members = self._dev_member[devices]
        normals, uniforms = self._normals[devices], self._uniforms[devices]
        air_c = self._observed.air_temperature_c

        rows = np.flatnonzero(groups == _GROUP_BIN)
        if rows.size:
            b = members[rows]
            distance = physics.ultrasonic_distance_m(
                self._fill[b], self._bin_bottom[b], self._bin_full[b], 0.008 * normals[rows, 2]
            )
            # A stray echo (a bag edge, the lid's rim) or a knocked-over bin reads anything.
            stray = (uniforms[rows, 1] < 0.004) | self._tilted[b]
            if self._faults is not None:  # a stray echo is a spike the physics made: label it as such
                echoes = devices[rows][(uniforms[rows, 1] < 0.004) & ~self._tilted[b]]
                self._faults.note_native({self._devices[i].dev_eui for i in echoes.tolist()}, SPIKE)
            distance = np.where(stray, 0.03 + uniforms[rows, 2] * (self._bin_bottom[b] + 0.4), distance)
            battery = np.round(self._bin_battery_pct[b])
            for row, d, pct, tilt in zip(rows, distance, battery, self._tilted[b], strict=True):
                values[row] = {
                    Quantity.DISTANCE_M: round(float(d), 3),
                    Quantity.BATTERY_PCT: float(pct),
                    Quantity.TILT: 1.0 if tilt else 0.0,
                }

        rows = np.flatnonzero(groups == _GROUP_SOIL)
        if rows.size:
            s = members[rows]
            zone = _subset(self._zone, s)
            vwc = np.clip(self._vwc[s] + 0.004 * normals[rows, 2], 0.0, 0.6)
            soil_c = self._soil_c[s] + 0.1 * normals[rows, 3]
            ec = physics.bulk_conductivity_us_cm(self._vwc[s], zone, self._soil_c[s], self._ec_reference[s])
            ec = np.maximum(ec * (1.0 + 0.03 * normals[rows, 4]), 0.0)
            volts = physics.lithium_cell_voltage(self._soil_cell_v[s], air_c[self._soil_town[s]])
            volts = volts + 0.003 * normals[rows, 5]
            for row, m, t, c, v in zip(rows, vwc, soil_c, ec, volts, strict=True):
                values[row] = {
                    Quantity.SOIL_VWC: round(float(m), 4),
                    Quantity.SOIL_TEMPERATURE_C: round(float(t), 2),
                    Quantity.SOIL_EC_US_CM: float(round(float(c))),
                    Quantity.BATTERY_V: round(float(v), 3),
                }

        rows = np.flatnonzero(groups == _GROUP_WEATHER)
        observed = self._observed
        for row in rows.tolist():
            town = int(members[row])
            noise = normals[row]
            rain = float(self._rain_since_report[town])
            self._rain_since_report[town] = 0.0
            volts = physics.lithium_cell_voltage(self._station_cell_v[town : town + 1], air_c[town : town + 1])
            values[row] = {
                Quantity.AIR_TEMPERATURE_C: round(float(air_c[town] + 0.1 * noise[2]), 1),
                Quantity.HUMIDITY_PCT: round(float(np.clip(observed.humidity_pct[town] + noise[3], 0.0, 100.0)), 1),
                Quantity.PRESSURE_HPA: round(float(observed.pressure_hpa[town] + 0.1 * noise[4]), 1),
                Quantity.RAIN_MM: round(rain, 3),
                Quantity.WIND_SPEED_MS: round(float(observed.wind_speed_ms[town] * math.exp(0.15 * noise[5])), 2),
                Quantity.WIND_DIRECTION_DEG: round(float(observed.wind_direction_deg[town]) % 360.0, 1) % 360.0,
                Quantity.SOLAR_RADIATION_W_M2: float(round(float(observed.solar_radiation_w_m2[town]))),
                Quantity.BATTERY_V: round(float(volts[0]), 3),
            }
        return values

    # --- crew actions --------------------------------------------------------------------------------------------

    def _index(self, asset_id: str, group: int, action: str) -> int:
        slot = self._slot.get(asset_id)
        if slot is None:
            raise KeyError(f"{action}: no asset {asset_id!r} in this simulation")
        if slot[0] != group:
            wanted = {_GROUP_BIN: "a bin", _GROUP_SOIL: "a tree or green space"}[group]
            raise ValueError(f"{action}: asset {asset_id!r} is not {wanted}")
        return slot[1]

    def _schedule(self, asset_id: str, group: int, at: datetime, litres: float, action: str) -> None:
        index = self._index(asset_id, group, action)
        if at.tzinfo is None:
            raise ValueError(f"{action}: at must carry a time zone (UTC)")
        at_s = at.timestamp()
        if at_s <= self.now.timestamp():
            self._apply(group, index, litres)
            return
        heapq.heappush(self._events, (at_s, self._event_order, group, index, litres))
        self._event_order += 1

    def _apply(self, group: int, index: int, litres: float) -> None:
        if group == _GROUP_BIN:
            self._fill[index] = EMPTIED_FILL_RATIO
            self._tilted[index] = False  # the crew stands it up again
        else:
            zone = _subset(self._zone, np.array([index]))
            self._vwc[index] = physics.add_irrigation(self._vwc[index : index + 1], zone, np.array([litres]))[0]


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _subset(zone: RootZone, index: np.ndarray) -> RootZone:
    return RootZone(**{name: getattr(zone, name)[index] for name in RootZone.__dataclass_fields__})


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))
