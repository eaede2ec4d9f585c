"""The planner's calendar per town: public holidays (the `holidays` package, Germany and the town's Bundesland), the
Bauhof's extra closed days, and market days (when a square's bins cannot be reached, and how much fuller they get).

Pure: no I/O. `cloud.scheduler.fleet.load_town_planning` reads the towns' TOML file into a `PlanningCalendar`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from functools import lru_cache

from flurfunk.contracts import Asset
from flurfunk.i18n import Language, text

DEFAULT_SUBDIVISION = "HE"  # the six towns lie in Hesse
# Holidays never come more than a few in a row; a year of closed days is a configuration error, not a calendar.
MAX_CLOSED_RUN_DAYS = 366


class CalendarError(ValueError):
    """A calendar rule cannot be used (a market that ends before it starts, a week of the month outside 1..5)."""


@dataclass(frozen=True)
class MarketDay:
    """A recurring or one-off market: on its days, the bins it affects cannot be reached from `start` to `end`
    (local time), and they are expected to be `fill_jump` (a share of the bin, 0.3 = 30 %) fuller afterwards.

    It occurs on each of `dates`, and on each of `weekdays` (Monday = 0) in the `weeks_of_month` given (1 = the
    first such weekday of the month, …, 5; empty: every week). It affects the bins of `villages` and the `assets`
    named (asset ids): a market square is a handful of bins, so name them where the village is too coarse.
    """

    name: str
    start: time
    end: time
    fill_jump: float = 0.0
    dates: frozenset[date] = frozenset()
    weekdays: frozenset[int] = frozenset()
    weeks_of_month: frozenset[int] = frozenset()
    villages: frozenset[str] = frozenset()
    assets: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise CalendarError(f"market {self.name!r}: end {self.end} must be after start {self.start}")
        if not 0.0 <= self.fill_jump <= 5.0:
            raise CalendarError(f"market {self.name!r}: fill_jump must lie in 0..5, got {self.fill_jump}")
        if not self.weekdays <= set(range(7)):
            raise CalendarError(f"market {self.name!r}: weekdays must lie in 0..6 (Monday = 0)")
        if not self.weeks_of_month <= set(range(1, 6)):
            raise CalendarError(f"market {self.name!r}: weeks_of_month must lie in 1..5")
        if not (self.dates or self.weekdays):
            raise CalendarError(f"market {self.name!r}: give dates or weekdays")
        if not (self.villages or self.assets):
            raise CalendarError(f"market {self.name!r}: give the villages or assets it affects")

    def occurs_on(self, day: date) -> bool:
        if day in self.dates:
            return True
        if day.weekday() not in self.weekdays:
            return False
        return not self.weeks_of_month or (day.day - 1) // 7 + 1 in self.weeks_of_month

    def affects(self, asset: Asset) -> bool:
        return asset.id in self.assets or asset.village in self.villages


@dataclass(frozen=True)
class TownCalendar:
    """One town's working days and market days. A working day is Monday to Friday and neither a public holiday of
    `subdivision` (Germany's Bundesland code; None: nationwide holidays only) nor a closed day of the Bauhof."""

    municipality: str
    subdivision: str | None = DEFAULT_SUBDIVISION
    closed_days: frozenset[date] = frozenset()
    markets: tuple[MarketDay, ...] = ()
    closed_yearly: frozenset[tuple[int, int]] = frozenset()  # (month, day): closed every year (Heiligabend)

    def holiday(self, day: date, language: Language = "de") -> str | None:
        """The name of the public holiday or closed day on `day`, or None."""
        name = _public_holidays(self.subdivision, day.year, language).get(day)
        if name is not None:
            return name
        if day in self.closed_days or (day.month, day.day) in self.closed_yearly:
            return text("plan.calendar.closed_day", language)
        return None

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and self.holiday(day) is None

    def next_working_day(self, day: date) -> date:
        """The first working day after `day`."""
        following = day + timedelta(days=1)
        for _ in range(MAX_CLOSED_RUN_DAYS):
            if self.is_working_day(following):
                return following
            following += timedelta(days=1)
        raise CalendarError(f"{self.municipality}: no working day within a year after {day}")

    def markets_on(self, day: date) -> tuple[MarketDay, ...]:
        return tuple(market for market in self.markets if market.occurs_on(day))

    def market_jump(self, asset: Asset, first_day: date, last_day: date) -> float:
        """The fill (share of the bin) that the markets from `first_day` to `last_day` (inclusive) add to `asset`."""
        jump = 0.0
        day = first_day
        while day <= last_day:
            jump += sum(market.fill_jump for market in self.markets_on(day) if market.affects(asset))
            day += timedelta(days=1)
        return jump

    def unreachable_until(self, asset: Asset, day: date) -> time | None:
        """When `asset` becomes reachable on `day` after the markets that block it; None: not blocked."""
        ends = [market.end for market in self.markets_on(day) if market.affects(asset)]
        return max(ends) if ends else None


@dataclass(frozen=True)
class PlanningCalendar:
    """The calendars of several towns; a town not listed gets the public holidays of `default_subdivision`."""

    towns: Mapping[str, TownCalendar] = field(default_factory=dict)
    default_subdivision: str | None = DEFAULT_SUBDIVISION

    def for_town(self, municipality: str) -> TownCalendar:
        return self.towns.get(municipality) or TownCalendar(municipality, self.default_subdivision)


def is_round_day(day: date, collection_weekdays: Iterable[int], calendar: TownCalendar | None) -> bool:
    """Whether the town's regular collection round runs on `day`.

    Without a calendar: on its collection weekdays. With one, as Bauhöfe do it: never on a day that is not a working
    day, and a round that falls on a holiday moves to the next working day (Thursday's round after Ascension Day
    runs on Friday).
    """
    weekdays = set(collection_weekdays)
    if calendar is None:
        return day.weekday() in weekdays
    if not calendar.is_working_day(day):
        return False
    if day.weekday() in weekdays:
        return True
    earlier = day - timedelta(days=1)
    for _ in range(MAX_CLOSED_RUN_DAYS):
        if calendar.is_working_day(earlier):
            return False
        if earlier.weekday() in weekdays and calendar.holiday(earlier) is not None:
            return True  # a round fell on a holiday since the last working day: it runs today
        earlier -= timedelta(days=1)
    return False


@lru_cache(maxsize=64)
def _public_holidays(subdivision: str | None, year: int, language: Language) -> Mapping[date, str]:
    import holidays  # imported here: only the cloud extra installs it

    names = holidays.country_holidays(
        "DE", subdiv=subdivision, years=year, language="de" if language == "de" else "en_US"
    )
    return dict(names)


__all__ = ["CalendarError", "MarketDay", "PlanningCalendar", "TownCalendar", "is_round_day"]
