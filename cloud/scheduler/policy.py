"""The planning policy the operations bench measured (bench/operations.py, bench/RESULTS.md "Operations") and the
cloud plans with: one place, so that the bench's figures describe what the towns get. Change the policy here; the
bench's flags override it for experiments only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from cloud.scheduler.calendar import TownCalendar, is_round_day
from cloud.scheduler.planning import PlanSettings, SchedulerError, watering_horizon_days
from cloud.scheduler.water import BalanceRules, SoilObservation, TownWeather, WateringInput, WateringSite

# The water balance's rules as measured (see `WateringPolicy`).
MEASURED_BALANCE_RULES = BalanceRules(
    young_only=True,
    trigger_tension_kpa=80.0,
    tension_trigger_only=True,
    headroom_share_of_raw=0.2,  # refills (no top-up share) stop this share of RAW below field capacity
    top_up_share_of_trigger=0.7,
    forecast_rain_trust=0.5,
    min_litres=60.0,
    drain_share=1.0,
    bridge_days=None,
    ride_along_days=None,
)


@dataclass(frozen=True)
class WateringPolicy:
    """When the water tanker goes and what it pours: its weekdays and the water balance's rules (`BalanceRules`).

    Measured: the tanker goes twice a week, Monday and Thursday (a first-summer root ball holds two to four days of
    summer use, so a weekly run leaves it dry for days; twice a week each run pours less); young trees (years 1–5)
    and green spaces are watered, old trees not; a site is due when its tension would pass 80 kPa before the next
    run, and gets what keeps it below 70 % of that until then (forecast rain counted at half), at least 60 L
    (smaller top-ups wait unless the tree would pass 80 kPa without them); a tree whose store is too small to last
    until the next run also gets water above field capacity, as much as it draws the rest from before that drains
    away (a green space does not: it may dry between runs).
    """

    watering_weekdays: tuple[int, ...] = (0, 3)  # Monday = 0; a run on a holiday moves to the next working day
    rules: BalanceRules = MEASURED_BALANCE_RULES

    def __post_init__(self) -> None:
        if not self.watering_weekdays or not set(self.watering_weekdays) <= set(range(7)):
            raise SchedulerError(f"watering_weekdays must name weekdays 0-6, got {self.watering_weekdays}")
        self.watering_input([], {})  # the balance's own checks name a knob out of range for the shortest horizon

    def is_watering_day(self, day: date, calendar: TownCalendar | None = None) -> bool:
        """Whether the tanker goes on `day` (with a calendar: a run on a holiday goes on the next working day)."""
        return is_round_day(day, self.watering_weekdays, calendar)

    def horizon_days(self, day: date, calendar: TownCalendar | None = None) -> int:
        """Days from `day` to the tanker's next run: what a site watered on `day` must last."""
        return watering_horizon_days(day, self.watering_weekdays, calendar)

    def watering_input(
        self,
        sites: Sequence[WateringSite],
        weather: Mapping[str, TownWeather],
        *,
        soil: Mapping[str, Sequence[SoilObservation]] | None = None,
        watered_litres: Mapping[str, Mapping[date, float]] | None = None,
        horizon_days: int = 1,
    ) -> WateringInput:
        """The balance's input for these sites under this policy (`plan_day` sets the horizon to the next run when
        its settings name the watering weekdays)."""
        return WateringInput(
            sites=sites,
            weather=weather,
            soil=soil or {},
            watered_litres=watered_litres or {},
            horizon_days=horizon_days,
            rules=self.rules,
        )


MEASURED_WATERING = WateringPolicy()

# Collection as measured against fixed rounds: one regular round a week per town and waste type (Wednesday) that
# takes every bin forecast to pass 100 % before the next round, optional bins of its type from 99 % expected (worth
# up to 0.5 km of detour), and on other workdays extra runs only to villages whose urgent bins of a type (past 110 %
# by the next workday's end, 1.5 km each, more the further past) outweigh the trip. The tanker's weekdays are the
# watering policy's.
MEASURED_PLAN_SETTINGS = PlanSettings(
    collection_weekdays=(2,),
    watering_weekdays=MEASURED_WATERING.watering_weekdays,
    forecast_must_fill=1.0,
    forecast_may_fill=0.99,
    max_prize_km=0.5,
    prize_lookahead_days=0.0,
    emergency_fill=1.1,
    emergency_prize_km=1.5,
)


@dataclass(frozen=True)
class PlanningPolicy:
    """The planner's settings and the watering policy, as one value the bench and the cloud share."""

    settings: PlanSettings = MEASURED_PLAN_SETTINGS
    watering: WateringPolicy = field(default=MEASURED_WATERING)

    def __post_init__(self) -> None:
        if self.settings.watering_weekdays != self.watering.watering_weekdays:
            raise SchedulerError(
                f"the planner's watering weekdays {self.settings.watering_weekdays} differ from the watering "
                f"policy's {self.watering.watering_weekdays}"
            )


MEASURED_POLICY = PlanningPolicy()

__all__ = [
    "MEASURED_BALANCE_RULES",
    "MEASURED_PLAN_SETTINGS",
    "MEASURED_POLICY",
    "MEASURED_WATERING",
    "PlanningPolicy",
    "WateringPolicy",
]
