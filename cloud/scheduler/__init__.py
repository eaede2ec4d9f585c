"""The scheduler: turns each asset's latest state into a day's tasks and one route per town and kind."""

from cloud.scheduler.geo import EARTH_RADIUS_KM, distance_matrix_km, haversine_km
from cloud.scheduler.planning import (
    DayPlan,
    LatestValue,
    MissingDepotError,
    PlanSettings,
    Route,
    SchedulerError,
    fixed_schedule_km,
    plan_day,
    route_id,
    task_id,
    watering_litres,
    work_window,
)
from cloud.scheduler.routing import MAX_ROUTE_STOPS, RouteInputError, build_route, route_km

__all__ = [
    "EARTH_RADIUS_KM",
    "MAX_ROUTE_STOPS",
    "DayPlan",
    "LatestValue",
    "MissingDepotError",
    "PlanSettings",
    "Route",
    "RouteInputError",
    "SchedulerError",
    "build_route",
    "distance_matrix_km",
    "fixed_schedule_km",
    "haversine_km",
    "plan_day",
    "route_id",
    "route_km",
    "task_id",
    "watering_litres",
    "work_window",
]
