"""CVRPLIB instance files (.vrp, TSPLIB style) read into a routing problem, so the route engine can be checked against
the published best-known solutions (http://vrp.galgos.inf.puc-rio.br)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloud.scheduler.routing_vrp import RouteDepot, RoutingProblem, Stop, TravelTable, Vehicle

MAX_INSTANCE_BYTES = 16 * 1024 * 1024
MAX_DIMENSION = 5001  # one depot and as many customers as the route engine takes (routing_vrp.MAX_STOPS)
MAX_COORDINATE = 1e6
MAX_DEMAND = 10_000_000

_SECTIONS = ("NODE_COORD_SECTION", "DEMAND_SECTION", "DEPOT_SECTION")


class CvrplibFormatError(ValueError):
    """A .vrp file is not a CVRPLIB CVRP instance this reader understands; the message names the line."""


@dataclass(frozen=True, eq=False)
class CvrplibInstance:
    """A capacitated VRP: node 0.. in file order, one depot, integer demands, one vehicle capacity."""

    name: str
    comment: str
    capacity: int
    coordinates: np.ndarray  # (n, 2) float
    demands: np.ndarray  # (n,) int
    depot: int  # 0-based node index

    @property
    def customers(self) -> list[int]:
        return [node for node in range(len(self.demands)) if node != self.depot]

    def distances(self) -> np.ndarray:
        """EUC_2D as the benchmarks define it: Euclidean distance rounded to the nearest integer (TSPLIB's nint)."""
        delta = self.coordinates[:, None, :] - self.coordinates[None, :, :]
        return np.floor(np.sqrt((delta**2).sum(axis=2)) + 0.5).astype(np.int64)

    def route_cost(self, routes: Sequence[Sequence[int]]) -> int:
        """Total distance of routes given as node indices (customers only; each route starts and ends at the depot)."""
        distances = self.distances()
        total = 0
        for route in routes:
            path = [self.depot, *route, self.depot]
            total += int(sum(distances[a, b] for a, b in itertools.pairwise(path)))
        return total

    def to_routing_problem(self, vehicle_count: int | None = None) -> RoutingProblem:
        """The instance as a RoutingProblem: stop ids are the node numbers of the file ("2", "3", …), the depot "1".

        CVRPLIB's best-known costs assume an unlimited fleet; the default offers one vehicle per customer.
        """
        ids = [str(node + 1) for node in range(len(self.demands))]
        depot = RouteDepot(ids[self.depot])
        stops = tuple(Stop(ids[node], pickup=int(self.demands[node])) for node in self.customers)
        count = vehicle_count if vehicle_count is not None else max(len(stops), 1)
        vehicle = Vehicle("vehicle", depot.id, capacity=self.capacity, count=count)
        # CVRP has no time: every leg takes zero seconds, so no shift or window can bind.
        distances = self.distances()
        table = TravelTable(tuple(ids), distances, np.zeros_like(distances))
        return RoutingProblem((depot,), (vehicle,), stops, travel_table=table)


def read_cvrplib(path: str | Path) -> CvrplibInstance:
    """Read a CVRPLIB .vrp file (see `parse_cvrplib`)."""
    file = Path(path)
    size = file.stat().st_size
    if size > MAX_INSTANCE_BYTES:
        raise CvrplibFormatError(f"{file}: {size} bytes; at most {MAX_INSTANCE_BYTES} are read")
    return parse_cvrplib(file.read_text(encoding="utf-8"))


def parse_cvrplib(text: str) -> CvrplibInstance:
    """Parse a CVRP instance: TYPE CVRP, EDGE_WEIGHT_TYPE EUC_2D, NODE_COORD_SECTION, DEMAND_SECTION, DEPOT_SECTION.

    Header lines are `KEY : VALUE` (spaces or tabs); sections list one node per line, numbered 1..DIMENSION.
    """
    if len(text) > MAX_INSTANCE_BYTES:
        raise CvrplibFormatError(f"instance is {len(text)} characters; at most {MAX_INSTANCE_BYTES} are read")
    header: dict[str, str] = {}
    sections: dict[str, list[tuple[int, list[str]]]] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        keyword = line.split()[0].rstrip(":").upper()
        if keyword == "EOF":
            break
        if keyword in _SECTIONS:
            if keyword in sections:
                raise CvrplibFormatError(f"line {number}: {keyword} appears twice")
            current = keyword
            sections[current] = []
        elif ":" in line and not _is_numeric_row(line):
            key, _, value = line.partition(":")
            header[key.strip().upper()] = value.strip().strip('"').strip()
            current = None
        elif current is not None:
            sections[current].append((number, line.split()))
        else:
            raise CvrplibFormatError(f"line {number}: expected `KEY : VALUE` or a section name, got {line[:60]!r}")

    name = header.get("NAME", "")
    problem_type = header.get("TYPE", "CVRP").upper()
    if problem_type != "CVRP":
        raise CvrplibFormatError(f"TYPE is {problem_type!r}; only CVRP instances are read")
    weight_type = header.get("EDGE_WEIGHT_TYPE", "").upper()
    if weight_type != "EUC_2D":
        raise CvrplibFormatError(f"EDGE_WEIGHT_TYPE is {weight_type!r}; only EUC_2D is supported")
    dimension = _header_int(header, "DIMENSION", 2, MAX_DIMENSION)
    capacity = _header_int(header, "CAPACITY", 1, MAX_DEMAND)
    for section in _SECTIONS:
        if section not in sections:
            raise CvrplibFormatError(f"{section} is missing")

    coordinates = np.empty((dimension, 2), dtype=float)
    for node, (x, y) in _node_rows(sections["NODE_COORD_SECTION"], "NODE_COORD_SECTION", dimension, 2):
        coordinates[node] = (_number(x, node, "x"), _number(y, node, "y"))
    demands = np.empty(dimension, dtype=np.int64)
    for node, (demand,) in _node_rows(sections["DEMAND_SECTION"], "DEMAND_SECTION", dimension, 1):
        value = _number(demand, node, "demand")
        if value != int(value) or not 0 <= value <= MAX_DEMAND:
            raise CvrplibFormatError(f"DEMAND_SECTION node {node + 1}: demand {demand!r} is not an integer 0..")
        demands[node] = int(value)

    depots = []
    for number, fields in sections["DEPOT_SECTION"]:
        for token in fields:
            if token == "-1":
                break
            if not token.isdigit() or not 1 <= int(token) <= dimension:
                raise CvrplibFormatError(f"line {number}: depot {token!r} is not a node number 1..{dimension}")
            depots.append(int(token) - 1)
    if len(depots) != 1:
        raise CvrplibFormatError(f"DEPOT_SECTION must name exactly one depot, got {len(depots)}")
    if demands[depots[0]] != 0:
        raise CvrplibFormatError(f"the depot (node {depots[0] + 1}) has demand {demands[depots[0]]}, expected 0")
    too_large = np.flatnonzero(demands > capacity)
    if too_large.size:
        raise CvrplibFormatError(f"node {too_large[0] + 1} demands more than the capacity {capacity}")
    return CvrplibInstance(name, header.get("COMMENT", ""), capacity, coordinates, demands, depots[0])


def _is_numeric_row(line: str) -> bool:
    return all(_is_number(token) for token in line.replace(":", " ").split())


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _header_int(header: dict[str, str], key: str, low: int, high: int) -> int:
    if key not in header:
        raise CvrplibFormatError(f"header {key} is missing")
    value = header[key]
    if not value.isdigit() or not low <= int(value) <= high:
        raise CvrplibFormatError(f"header {key} must be an integer {low}..{high}, got {value!r}")
    return int(value)


def _node_rows(
    rows: list[tuple[int, list[str]]], section: str, dimension: int, width: int
) -> list[tuple[int, list[str]]]:
    if len(rows) != dimension:
        raise CvrplibFormatError(f"{section} has {len(rows)} rows for DIMENSION {dimension}")
    seen: set[int] = set()
    result = []
    for number, fields in rows:
        if len(fields) != width + 1 or not fields[0].isdigit():
            raise CvrplibFormatError(f"line {number}: {section} rows are `node {' '.join(['value'] * width)}`")
        node = int(fields[0]) - 1
        if not 0 <= node < dimension or node in seen:
            raise CvrplibFormatError(f"line {number}: node {fields[0]} is out of 1..{dimension} or repeated")
        seen.add(node)
        result.append((node, fields[1:]))
    return result


def _number(token: str, node: int, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise CvrplibFormatError(f"node {node + 1}: {what} {token!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > MAX_COORDINATE * 10:
        raise CvrplibFormatError(f"node {node + 1}: {what} {token!r} is out of range")
    return value
