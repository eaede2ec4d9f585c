"""The six towns of the Flurfunk district: their villages (Ortsteile), Bauhof depots and gateway sites.

Coordinates are village centres as well as known (WGS84, a few hundred metres of slack); weights are rough
inhabitant counts and only steer how many assets a village gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from flurfunk.contracts import MUNICIPALITIES, Depot

# The district box every site lies in (Main-Kinzig-Kreis east of Gelnhausen, Hesse); Züntersbach sits at its edge.
DISTRICT_BOUNDS = (50.20, 50.45, 9.20, 9.75)  # south, north, west, east


@dataclass(frozen=True)
class Village:
    """An Ortsteil: its name, centre and a weight (about its inhabitants)."""

    name: str
    latitude: float
    longitude: float
    inhabitants: int


@dataclass(frozen=True)
class GatewaySite:
    """Where a town's LoRaWAN gateway (a Raspberry Pi with a concentrator) is mounted."""

    id: str
    municipality: str
    eui: str
    latitude: float
    longitude: float
    antenna_height_m: float


@dataclass(frozen=True)
class Town:
    """A municipality with its villages, Bauhof and gateway; `code` prefixes its asset ids."""

    municipality: str
    code: str
    altitude_m: float
    villages: tuple[Village, ...]
    depot: Depot
    gateway: GatewaySite

    @property
    def inhabitants(self) -> int:
        return sum(village.inhabitants for village in self.villages)


def _town(
    municipality: str,
    code: str,
    slug: str,
    altitude_m: float,
    villages: list[tuple[str, float, float, int]],
    depot: tuple[float, float],
    gateway: tuple[str, float, float, float],
) -> Town:
    eui, gw_lat, gw_lon, height = gateway
    return Town(
        municipality=municipality,
        code=code,
        altitude_m=altitude_m,
        villages=tuple(Village(name, lat, lon, people) for name, lat, lon, people in villages),
        depot=Depot(municipality=municipality, name=f"Bauhof {municipality}", latitude=depot[0], longitude=depot[1]),
        gateway=GatewaySite(
            id=f"gw-{slug}",
            municipality=municipality,
            eui=eui,
            latitude=gw_lat,
            longitude=gw_lon,
            antenna_height_m=height,
        ),
    )


TOWNS: tuple[Town, ...] = (
    _town(
        "Wächtersbach",
        "wae",
        "waechtersbach",
        157,
        [
            ("Wächtersbach", 50.2557, 9.2944, 6500),
            ("Aufenau", 50.2430, 9.2650, 1500),
            ("Neudorf", 50.2640, 9.3170, 1300),
            ("Hesseldorf", 50.2690, 9.2860, 800),
            ("Weilers", 50.2780, 9.2800, 900),
            ("Wittgenborn", 50.3050, 9.2590, 1000),
            ("Waldensberg", 50.2960, 9.2420, 500),
            ("Leisenwald", 50.3200, 9.2500, 500),
        ],
        depot=(50.2600, 9.3020),
        gateway=("b827ebfffe5a0e01", 50.2550, 9.2960, 22.0),
    ),
    _town(
        "Bad Orb",
        "bor",
        "bad-orb",
        170,
        [("Bad Orb", 50.2270, 9.3480, 10000)],
        depot=(50.2330, 9.3390),
        gateway=("b827ebfffe5a0e02", 50.2290, 9.3460, 25.0),
    ),
    _town(
        "Bad Soden-Salmünster",
        "bss",
        "bad-soden-salmuenster",
        147,
        [
            ("Salmünster", 50.2830, 9.3780, 4500),
            ("Bad Soden", 50.2900, 9.3680, 3500),
            ("Ahl", 50.2720, 9.3880, 1300),
            ("Hausen", 50.2980, 9.3980, 800),
            ("Romsthal", 50.3150, 9.3850, 700),
            ("Eckardroth", 50.3270, 9.4000, 500),
            ("Kerbersdorf", 50.3080, 9.3580, 400),
            ("Katholisch-Willenroth", 50.3320, 9.3720, 400),
            ("Wahlert", 50.3100, 9.4100, 300),
            ("Alsberg", 50.2650, 9.4200, 300),
            ("Mernes", 50.2450, 9.4550, 600),
        ],
        depot=(50.2850, 9.3700),
        gateway=("b827ebfffe5a0e03", 50.2860, 9.3730, 20.0),
    ),
    _town(
        "Birstein",
        "bir",
        "birstein",
        286,
        [
            ("Birstein", 50.3520, 9.3040, 2000),
            ("Bösgesäß", 50.3590, 9.2800, 300),
            ("Böß-Gesäß", 50.3800, 9.3200, 200),
            ("Fischborn", 50.3380, 9.2660, 450),
            ("Hettersroth", 50.3330, 9.2920, 310),
            ("Illnhausen", 50.3660, 9.2960, 150),
            ("Kirchbracht", 50.3850, 9.3380, 500),
            ("Lichenroth", 50.3950, 9.2870, 400),
            ("Mauswinkel", 50.3700, 9.3320, 150),
            ("Oberreichenbach", 50.3450, 9.3400, 350),
            ("Obersotzbach", 50.3500, 9.2400, 400),
            ("Radmühl", 50.3640, 9.3480, 200),
            ("Unterreichenbach", 50.3330, 9.3300, 500),
            ("Untersotzbach", 50.3400, 9.2530, 350),
            ("Wettges", 50.3930, 9.3100, 100),
            ("Wüstwillenroth", 50.3730, 9.2600, 300),
        ],
        depot=(50.3480, 9.3010),
        gateway=("b827ebfffe5a0e04", 50.3530, 9.3050, 18.0),
    ),
    _town(
        "Sinntal",
        "sin",
        "sinntal",
        355,
        [
            ("Sterbfritz", 50.3170, 9.6170, 2030),
            ("Altengronau", 50.2560, 9.6130, 1300),
            ("Neuengronau", 50.2700, 9.5880, 800),
            ("Jossa", 50.2380, 9.6050, 700),
            ("Mottgers", 50.2880, 9.5910, 800),
            ("Schwarzenfels", 50.2780, 9.6330, 500),
            ("Sannerz", 50.3290, 9.5980, 900),
            ("Weichersbach", 50.3380, 9.6430, 400),
            ("Weiperz", 50.3080, 9.6450, 600),
            ("Breunings", 50.2960, 9.6100, 400),
            ("Oberzell", 50.3230, 9.6850, 500),
            ("Züntersbach", 50.3128, 9.7322, 700),
        ],
        depot=(50.3130, 9.6100),
        # Burg Schwarzenfels: the hill sees most of the Sinn valley.
        gateway=("b827ebfffe5a0e05", 50.2790, 9.6320, 12.0),
    ),
    _town(
        "Steinau an der Straße",
        "ste",
        "steinau",
        175,
        [
            ("Steinau", 50.3140, 9.4630, 5000),
            ("Seidenroth", 50.2830, 9.4500, 345),
            ("Marborn", 50.2960, 9.4300, 350),
            ("Bellings", 50.2920, 9.4900, 400),
            ("Marjoß", 50.2540, 9.4850, 400),
            ("Ulmbach", 50.3480, 9.4430, 1300),
            ("Uerzell", 50.3350, 9.4610, 600),
            ("Rabenstein", 50.3690, 9.4450, 200),
            ("Sarrod", 50.3500, 9.4760, 500),
            ("Hintersteinau", 50.3830, 9.4600, 700),
            ("Rebsdorf", 50.3300, 9.4880, 150),
            ("Neustall", 50.3380, 9.4300, 200),
        ],
        depot=(50.3100, 9.4700),
        gateway=("b827ebfffe5a0e06", 50.3130, 9.4640, 20.0),
    ),
)

_BY_MUNICIPALITY = {town.municipality: town for town in TOWNS}
if tuple(_BY_MUNICIPALITY) != MUNICIPALITIES:
    raise RuntimeError("edge.sim.geography.TOWNS must list the towns of flurfunk.contracts.MUNICIPALITIES in order")


def town_of(municipality: str) -> Town:
    """The town record for a municipality name spelled as in `MUNICIPALITIES`."""
    try:
        return _BY_MUNICIPALITY[municipality]
    except KeyError:
        raise KeyError(f"unknown municipality {municipality!r}; known: {', '.join(MUNICIPALITIES)}") from None
