"""The simulated district: assets (bins, trees, green spaces, weather stations) and their sensors, from a seed.

`build_world(seed, scale)` is deterministic: the same seed and scale give the same ids, places and DevEUIs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from edge.sim.geography import TOWNS, GatewaySite, Town, Village
from flurfunk.contracts import Asset, AssetKind, Depot, Device

BIN_MODEL = "milesight-iot/em310-udl"
SOIL_MODEL = "dragino/lse01"
WEATHER_MODEL = "decentlab/dl-atm41"

REPORT_INTERVAL_S: dict[str, int] = {BIN_MODEL: 3600, SOIL_MODEL: 3600, WEATHER_MODEL: 600}

# Counts at scale 1.0; towns share them by inhabitants (weather stations: always one per town).
BINS_AT_SCALE_1 = 360
TREES_AT_SCALE_1 = 120
GREEN_SPACES_AT_SCALE_1 = 24
MAX_SCALE = 50.0

WASTE_TYPES: tuple[str, ...] = ("residual", "paper", "organic", "glass")
_WASTE_TYPE_SHARE = (0.45, 0.25, 0.15, 0.15)
_CAPACITIES_L: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {
    "residual": ((120, 240, 660, 1100), (0.2, 0.4, 0.15, 0.25)),
    "paper": ((240, 1100), (0.5, 0.5)),
    "organic": ((120, 240), (0.4, 0.6)),
    "glass": ((770, 1100), (0.3, 0.7)),
}
# Ultrasonic sensor under the lid: distance to the empty bottom and to the "full" mark, by capacity.
_BIN_GEOMETRY_M: dict[int, tuple[float, float]] = {
    120: (0.88, 0.12),
    240: (0.98, 0.12),
    660: (1.08, 0.15),
    770: (1.12, 0.15),
    1100: (1.25, 0.15),
}

# Recent plantings favour the "climate trees" of the GALK street-tree list; older stock is the classic mix.
_YOUNG_TREE_SPECIES = (
    "Acer campestre",
    "Carpinus betulus 'Fastigiata'",
    "Celtis australis",
    "Gleditsia triacanthos 'Skyline'",
    "Liquidambar styraciflua",
    "Ostrya carpinifolia",
    "Pyrus calleryana 'Chanticleer'",
    "Quercus cerris",
    "Sorbus intermedia",
    "Tilia tomentosa 'Brabant'",
    "Ulmus 'Lobel'",
    "Zelkova serrata",
)
_OLD_TREE_SPECIES = (
    "Tilia cordata",
    "Acer platanoides",
    "Acer pseudoplatanus",
    "Aesculus hippocastanum",
    "Carpinus betulus",
    "Fraxinus excelsior",
    "Platanus × hispanica",
    "Quercus robur",
    "Robinia pseudoacacia",
    "Betula pendula",
)
YOUNG_TREE_FROM_YEAR = 2021
_GREEN_SPACE_TYPES = ("lawn", "lawn", "perennial bed", "wildflower meadow", "shrub bed")

_VENDOR_EUI_PREFIX = {BIN_MODEL: "24e124", SOIL_MODEL: "a84041", WEATHER_MODEL: "70b3d57ba000"}


@dataclass(frozen=True)
class World:
    """Everything static about the simulated district; the dynamics live in `edge.sim.simulation`."""

    seed: int
    scale: float
    towns: tuple[Town, ...]
    depots: list[Depot]
    gateways: list[GatewaySite]
    assets: list[Asset]
    devices: list[Device] = field(repr=False)

    @cached_property
    def _assets_by_id(self) -> dict[str, Asset]:
        return {asset.id: asset for asset in self.assets}

    @cached_property
    def _devices_by_asset(self) -> dict[str, Device]:
        return {device.asset: device for device in self.devices}

    def asset(self, asset_id: str) -> Asset:
        try:
            return self._assets_by_id[asset_id]
        except KeyError:
            raise KeyError(f"no asset {asset_id!r} in this world") from None

    def device_of(self, asset_id: str) -> Device:
        """The sensor that watches an asset."""
        self.asset(asset_id)
        return self._devices_by_asset[asset_id]

    def town(self, municipality: str) -> Town:
        for candidate in self.towns:
            if candidate.municipality == municipality:
                return candidate
        raise KeyError(f"unknown municipality {municipality!r}")

    def gateway_of(self, municipality: str) -> GatewaySite:
        return self.town(municipality).gateway


def build_world(seed: int, scale: float = 1.0) -> World:
    """The district for a seed: ~360 bins, ~120 street trees, 24 green spaces and 6 weather stations at scale 1."""
    if not (0 < scale <= MAX_SCALE) or not math.isfinite(scale):
        raise ValueError(f"scale must be in (0, {MAX_SCALE}], got {scale!r}")
    rng = np.random.default_rng([seed, 0x57_0A1D])
    inhabitants = np.array([town.inhabitants for town in TOWNS], dtype=float)
    bins_per_town = _share(round(BINS_AT_SCALE_1 * scale), inhabitants)
    trees_per_town = _share(round(TREES_AT_SCALE_1 * scale), inhabitants)
    greens_per_town = _share(round(GREEN_SPACES_AT_SCALE_1 * scale), inhabitants)

    assets: list[Asset] = []
    for town, n_bins, n_trees, n_greens in zip(TOWNS, bins_per_town, trees_per_town, greens_per_town, strict=True):
        assets.extend(_bins(town, int(n_bins), rng))
        assets.extend(_trees(town, int(n_trees), rng))
        assets.extend(_green_spaces(town, int(n_greens), rng))
        assets.append(_weather_station(town, rng))

    devices = _devices(assets, rng)
    return World(
        seed=seed,
        scale=scale,
        towns=TOWNS,
        depots=[town.depot for town in TOWNS],
        gateways=[town.gateway for town in TOWNS],
        assets=assets,
        devices=devices,
    )


def model_of(kind: AssetKind) -> str:
    """The device model that watches an asset of this kind."""
    return {
        AssetKind.BIN: BIN_MODEL,
        AssetKind.TREE: SOIL_MODEL,
        AssetKind.GREEN_SPACE: SOIL_MODEL,
        AssetKind.WEATHER_STATION: WEATHER_MODEL,
    }[kind]


def _share(total: int, weights: np.ndarray) -> np.ndarray:
    """Split a count over towns in proportion to weights (largest remainder, ties to the earlier town)."""
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    remainder_order = np.argsort(-(exact - counts), kind="stable")
    counts[remainder_order[: total - counts.sum()]] += 1
    return counts


def _pick_village(town: Town, rng: np.random.Generator) -> Village:
    # Small villages get relatively more street furniture than their headcount suggests.
    weights = np.array([village.inhabitants for village in town.villages], dtype=float) ** 0.7
    return town.villages[int(rng.choice(len(town.villages), p=weights / weights.sum()))]


def _place_near(village: Village, rng: np.random.Generator) -> tuple[float, float]:
    spread_m = float(np.clip(110.0 * math.sqrt(village.inhabitants / 1000.0), 70.0, 450.0))
    north_m, east_m = rng.normal(0.0, spread_m, size=2)
    latitude = village.latitude + north_m / 111_320.0
    longitude = village.longitude + east_m / (111_320.0 * math.cos(math.radians(village.latitude)))
    return round(latitude, 6), round(longitude, 6)


def _bins(town: Town, count: int, rng: np.random.Generator) -> list[Asset]:
    bins = []
    for number in range(1, count + 1):
        village = _pick_village(town, rng)
        latitude, longitude = _place_near(village, rng)
        waste_type = WASTE_TYPES[int(rng.choice(len(WASTE_TYPES), p=_WASTE_TYPE_SHARE))]
        sizes, shares = _CAPACITIES_L[waste_type]
        capacity = sizes[int(rng.choice(len(sizes), p=shares))]
        to_bottom, to_full = _BIN_GEOMETRY_M[capacity]
        mounting_offset = float(rng.uniform(-0.02, 0.02))
        bins.append(
            Asset(
                id=f"{town.code}-bin-{number:03d}",
                kind=AssetKind.BIN,
                municipality=town.municipality,
                village=village.name,
                latitude=latitude,
                longitude=longitude,
                capacity_l=capacity,
                waste_type=waste_type,
                sensor_to_bottom_m=round(to_bottom + mounting_offset, 3),
                sensor_to_full_m=to_full,
            )
        )
    return bins


def _trees(town: Town, count: int, rng: np.random.Generator) -> list[Asset]:
    trees = []
    for number in range(1, count + 1):
        village = _pick_village(town, rng)
        latitude, longitude = _place_near(village, rng)
        if rng.random() < 0.55:
            planting_year = int(rng.integers(YOUNG_TREE_FROM_YEAR, 2027))
            species = _YOUNG_TREE_SPECIES[int(rng.integers(len(_YOUNG_TREE_SPECIES)))]
        else:
            planting_year = int(rng.integers(1955, YOUNG_TREE_FROM_YEAR))
            species = _OLD_TREE_SPECIES[int(rng.integers(len(_OLD_TREE_SPECIES)))]
        trees.append(
            Asset(
                id=f"{town.code}-tree-{number:03d}",
                kind=AssetKind.TREE,
                municipality=town.municipality,
                village=village.name,
                latitude=latitude,
                longitude=longitude,
                species=species,
                planting_year=planting_year,
            )
        )
    return trees


def _green_spaces(town: Town, count: int, rng: np.random.Generator) -> list[Asset]:
    greens = []
    for number in range(1, count + 1):
        village = _pick_village(town, rng)
        latitude, longitude = _place_near(village, rng)
        greens.append(
            Asset(
                id=f"{town.code}-green-{number:03d}",
                kind=AssetKind.GREEN_SPACE,
                municipality=town.municipality,
                village=village.name,
                latitude=latitude,
                longitude=longitude,
                species=_GREEN_SPACE_TYPES[int(rng.integers(len(_GREEN_SPACE_TYPES)))],
            )
        )
    return greens


def _weather_station(town: Town, rng: np.random.Generator) -> Asset:
    # On the Bauhof's roof or yard: the one site every town already looks after.
    north_m, east_m = rng.uniform(-40.0, 40.0, size=2)
    latitude = town.depot.latitude + north_m / 111_320.0
    longitude = town.depot.longitude + east_m / (111_320.0 * math.cos(math.radians(town.depot.latitude)))
    return Asset(
        id=f"{town.code}-weather-001",
        kind=AssetKind.WEATHER_STATION,
        municipality=town.municipality,
        village=town.villages[0].name,
        latitude=round(latitude, 6),
        longitude=round(longitude, 6),
    )


def _devices(assets: list[Asset], rng: np.random.Generator) -> list[Device]:
    taken: set[str] = set()
    devices = []
    for asset in assets:
        model_id = model_of(asset.kind)
        prefix = _VENDOR_EUI_PREFIX[model_id]
        while True:
            suffix = "".join(f"{digit:x}" for digit in rng.integers(0, 16, size=16 - len(prefix)))
            dev_eui = prefix + suffix
            if dev_eui not in taken:
                taken.add(dev_eui)
                break
        devices.append(
            Device(dev_eui=dev_eui, model_id=model_id, asset=asset.id, report_interval_s=REPORT_INTERVAL_S[model_id])
        )
    return devices


# --- calibrated bin usage (see README "How the simulation is calibrated") -------------------------------------

# Share of bins per kind of place, and how much busier than a residential street each is.
BIN_SITE_SHARES: dict[str, float] = {
    "street": 0.45,
    "bus_stop": 0.15,
    "playground": 0.12,
    "village_edge": 0.20,
    "market_square": 0.08,
}
BIN_SITE_RATE: dict[str, float] = {
    "street": 1.0,
    "bus_stop": 1.5,
    "playground": 1.3,
    "village_edge": 0.55,
    "market_square": 1.5,
}
# Median days a 240 L bin takes from empty to full on a residential street; larger bins serve more people but
# not in proportion. Calibrated so that emptying every bin weekly finds it about half full (Groningen: 49 %)
# and 1–3 % of bin-days overflow.
BIN_DAYS_TO_FULL_240L: dict[str, float] = {"residual": 14.5, "paper": 18.0, "organic": 15.0, "glass": 20.0}
BIN_RATE_SPREAD = 0.3  # lognormal sigma of the rate between bins of the same kind (sun, shops, households)
EVENTS_PER_TOWN_PER_MONTH = 1.5


@dataclass(frozen=True)
class BinUsage:
    """Per bin (in world order): where it stands and how fast it fills (fill ratio per day, neutral season)."""

    asset_ids: tuple[str, ...]
    sites: tuple[str, ...]
    daily_rate: np.ndarray


@dataclass(frozen=True)
class FillEvent:
    """A fête or market in a village: its bins fill `EVENT_FILL_FACTOR` times as fast on these days."""

    municipality: str
    village: str
    first_day: int  # days after the simulation's start
    days: int


def bin_usage(world: World) -> BinUsage:
    """Site kind and fill rate of every bin; a stream of its own, so `build_world`'s output stays as it was."""
    rng = np.random.default_rng([world.seed, 0xB1_05E5])
    bins = [asset for asset in world.assets if asset.kind is AssetKind.BIN]
    names = tuple(BIN_SITE_SHARES)
    shares = np.array([BIN_SITE_SHARES[name] for name in names])
    sites = tuple(names[int(k)] for k in rng.choice(len(names), size=len(bins), p=shares / shares.sum()))
    spread = rng.lognormal(0.0, BIN_RATE_SPREAD, size=len(bins))
    rates = np.array(
        [
            BIN_SITE_RATE[site]
            / (BIN_DAYS_TO_FULL_240L[asset.waste_type or "residual"] * ((asset.capacity_l or 240) / 240.0) ** 0.12)
            for asset, site in zip(bins, sites, strict=True)
        ]
    )
    return BinUsage(tuple(asset.id for asset in bins), sites, rates * spread)


def fill_events(world: World, days: int) -> list[FillEvent]:
    """The fêtes and markets of `days` days: about 1.5 per town and month, one to three days long."""
    rng = np.random.default_rng([world.seed, 0xFE_57])
    events = []
    for town in world.towns:
        for _ in range(int(rng.poisson(EVENTS_PER_TOWN_PER_MONTH * days / 30.0))):
            village = _pick_village(town, rng)
            events.append(
                FillEvent(town.municipality, village.name, int(rng.integers(0, days)), int(rng.integers(1, 4)))
            )
    return events
