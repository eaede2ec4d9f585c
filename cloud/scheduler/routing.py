"""One vehicle's route from a depot through stops and back: nearest neighbour, then 2-opt (numpy).

`build_route` is the one entry the planner uses, so a stronger solver (PyVRP) can replace it later.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from cloud.scheduler.geo import distance_matrix_km
from flurfunk.contracts import Asset, Depot

# A day's route is dozens to a few hundred stops; the cap keeps a bad input from running 2-opt for minutes.
MAX_ROUTE_STOPS = 3000

# Moves must gain more than this (km) so rounding noise cannot make 2-opt cycle.
_MIN_GAIN_KM = 1e-9


class RouteInputError(ValueError):
    """The stops handed to the route builder cannot form one route (duplicates, too many)."""


def build_route(depot: Depot, stops: Sequence[Asset], road_factor: float) -> tuple[list[Asset], float]:
    """Stops in driving order for depot → stops → depot, and the route's road km.

    The result depends only on the set of stops, not on their order in `stops`.
    """
    ordered_input = _checked_stops(stops)
    if not ordered_input:
        return [], 0.0
    distances = distance_matrix_km(_points(depot, ordered_input), road_factor)
    order = two_opt(distances, nearest_neighbour(distances))
    return [ordered_input[node - 1] for node in order], tour_km(distances, order)


def route_km(depot: Depot, stops: Sequence[Asset], road_factor: float) -> float:
    """Road km of depot → stops (in the given order) → depot."""
    if not stops:
        return 0.0
    distances = distance_matrix_km(_points(depot, stops), road_factor)
    return tour_km(distances, np.arange(1, len(stops) + 1))


def nearest_neighbour(distances: np.ndarray) -> np.ndarray:
    """Visiting order of nodes 1..n from depot node 0, always driving to the nearest unvisited node."""
    node_count = distances.shape[0]
    unvisited = np.ones(node_count, dtype=bool)
    unvisited[0] = False
    order = np.empty(node_count - 1, dtype=np.intp)
    current = 0
    for position in range(node_count - 1):
        candidates = np.where(unvisited, distances[current], np.inf)
        current = int(np.argmin(candidates))  # ties go to the lower index: deterministic
        order[position] = current
        unvisited[current] = False
    return order


def two_opt(distances: np.ndarray, order: np.ndarray) -> np.ndarray:
    """`order` improved by 2-opt moves (reverse a stretch) until none shortens the closed tour through node 0."""
    path = np.concatenate(([0], np.asarray(order, dtype=np.intp), [0]))
    stop_count = len(path) - 2
    improved = True
    while improved:
        improved = False
        for first in range(1, stop_count):
            # Reversing path[first..last] swaps edges (first-1, first) and (last, last+1) for two new ones.
            lasts = np.arange(first + 1, stop_count + 1)
            before, head = path[first - 1], path[first]
            tails, afters = path[lasts], path[lasts + 1]
            gain = (
                distances[before, head] + distances[tails, afters] - distances[before, tails] - distances[head, afters]
            )
            best = int(np.argmax(gain))
            if gain[best] > _MIN_GAIN_KM:
                last = int(lasts[best])
                path[first : last + 1] = path[first : last + 1][::-1].copy()
                improved = True
    return path[1:-1]


def tour_km(distances: np.ndarray, order: np.ndarray) -> float:
    """Length of the closed tour 0 → order → 0."""
    path = np.concatenate(([0], np.asarray(order, dtype=np.intp), [0]))
    return float(distances[path[:-1], path[1:]].sum())


def insertion_detours(
    distances: np.ndarray, order: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate node: the cheapest extra km to insert it into tour 0 → order → 0, and where.

    The position p means "insert before order[p]" (p == len(order): just before returning to the depot).
    """
    path = np.concatenate(([0], np.asarray(order, dtype=np.intp), [0]))
    starts, ends = path[:-1], path[1:]
    candidates = np.asarray(candidates, dtype=np.intp)
    detours = (
        distances[np.ix_(starts, candidates)] + distances[np.ix_(candidates, ends)].T - distances[starts, ends][:, None]
    )
    positions = np.argmin(detours, axis=0)
    return detours[positions, np.arange(len(candidates))], positions


def route_points(depot: Depot, stops: Sequence[Asset]) -> list[tuple[float, float]]:
    """(latitude, longitude) of depot, stops in order, depot: the route's polyline (straight legs)."""
    return [*_points(depot, stops), (depot.latitude, depot.longitude)]


def _points(depot: Depot, stops: Sequence[Asset]) -> list[tuple[float, float]]:
    return [(depot.latitude, depot.longitude), *((stop.latitude, stop.longitude) for stop in stops)]


def _checked_stops(stops: Sequence[Asset]) -> list[Asset]:
    if len(stops) > MAX_ROUTE_STOPS:
        raise RouteInputError(f"a route may have at most {MAX_ROUTE_STOPS} stops, got {len(stops)}")
    by_id = sorted(stops, key=lambda stop: stop.id)
    for previous, current in itertools.pairwise(by_id):
        if previous.id == current.id:
            raise RouteInputError(f"stop {current.id!r} appears more than once in one route")
    return by_id
