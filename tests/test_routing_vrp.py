"""The PyVRP route engine on hand-checkable cases, the OSRM road table, and the CVRPLIB reader."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.scheduler.cvrplib import CvrplibFormatError, parse_cvrplib, read_cvrplib
from cloud.scheduler.routing_vrp import (
    RouteDepot,
    RoutingInputError,
    RoutingProblem,
    RoutingSettings,
    RoutingSolution,
    Stop,
    TravelTable,
    TravelTableError,
    UnservedReason,
    Vehicle,
    load_osrm_table,
    osrm_table_url,
    parse_osrm_table,
    solve_routes,
    travel_matrices,
)

CVRPLIB = Path(__file__).resolve().parents[1] / "bench" / "data" / "cvrplib"

# Bad Orb's Bauhof, roughly; 0.01° of longitude is ~710 m here, 0.01° of latitude ~1,110 m.
LAT, LON = 50.227, 9.348
HOUR = 3600
# Iteration limits keep these small cases fast and the same on every machine; the time limit is only a backstop.
ITERATIONS = 1500
BACKSTOP_S = 30.0


def solve(problem: RoutingProblem, seed: int = 7) -> RoutingSolution:
    return solve_routes(problem, BACKSTOP_S, seed, max_iterations=ITERATIONS)


def bauhof(depot_id: str = "bauhof", lat: float = LAT, lon: float = LON, unload_s: int = 0) -> RouteDepot:
    return RouteDepot(depot_id, lat, lon, unload_s=unload_s)


def bin_stop(stop_id: str, east: float, north: float = 0.0, **fields: object) -> Stop:
    """A bin `east`/`north` hundredths of a degree from the Bauhof."""
    return Stop(stop_id, LAT + north * 0.01, LON + east * 0.01, **fields)  # type: ignore[arg-type]


def visit_order(solution: RoutingSolution) -> list[list[str]]:
    return [[visit.stop_id for visit in route.visits] for route in solution.routes]


def served(solution: RoutingSolution) -> set[str]:
    return {visit.stop_id for route in solution.routes for visit in route.visits}


def test_capacity_forces_a_disposal_trip_when_the_truck_may_reload() -> None:
    depots = (bauhof(), bauhof("deponie", lon=LON + 0.06, unload_s=900))
    stops = tuple(bin_stop(f"bin{i}", east=i + 1, pickup=400, service_s=60) for i in range(4))
    truck = Vehicle("truck", "bauhof", capacity=1000, reload_depot_ids=("deponie",))
    solution = solve(RoutingProblem(depots, (truck,), stops))

    assert solution.feasible and not solution.unserved
    (route,) = solution.routes
    assert served(solution) == {stop.id for stop in stops}
    # 1,600 l in a 1,000 l truck: at least one trip to the landfill, and no trip carries more than the truck holds.
    assert len(route.reloads) >= 1
    assert all(reload.depot_id == "deponie" and reload.load_after == 0 for reload in route.reloads)
    assert all(reload.departure_s - reload.arrival_s >= 900 for reload in route.reloads)
    assert max(visit.load_after for visit in route.visits) <= 1000
    for reload in route.reloads:
        trip_visits = [visit for visit in route.visits if visit.trip == reload.trip]
        assert reload.load_before == sum(400 for _ in trip_visits)
    assert route.pickup == 1600


def test_capacity_without_reloads_takes_two_vehicles() -> None:
    stops = tuple(bin_stop(f"bin{i}", east=i + 1, pickup=400) for i in range(4))
    trucks = Vehicle("truck", "bauhof", capacity=1000, count=2)
    solution = solve(RoutingProblem((bauhof(),), (trucks,), stops))

    assert solution.feasible
    assert len(solution.routes) == 2
    assert sorted(route.vehicle_index for route in solution.routes) == [0, 1]
    assert all(route.pickup <= 1000 and not route.reloads for route in solution.routes)
    assert served(solution) == {stop.id for stop in stops}


def test_a_time_window_forces_the_order() -> None:
    # Near and far bin lie on one road out of town: both orders drive the same km, so only the windows decide.
    # Far (2.8 road km, 500 s at 20 km/h) must be emptied by 6:10; going to the near bin first (166 s + 300 s of
    # service + 333 s on) would arrive at 6:13.
    def bins(far_window_end_s: int, near_window_end_s: int) -> tuple[Stop, Stop]:
        return (
            bin_stop("near", east=1, service_s=300, window_end_s=near_window_end_s),
            bin_stop("far", east=3, service_s=300, window_end_s=far_window_end_s),
        )

    truck = Vehicle("truck", "bauhof", capacity=1000, shift_start_s=6 * HOUR, shift_end_s=8 * HOUR)
    far_first = solve(RoutingProblem((bauhof(),), (truck,), bins(6 * HOUR + 600, 8 * HOUR), speed_kmh=20.0))
    near_first = solve(RoutingProblem((bauhof(),), (truck,), bins(8 * HOUR, 6 * HOUR + 300), speed_kmh=20.0))

    assert far_first.feasible and near_first.feasible
    assert visit_order(far_first) == [["far", "near"]]
    assert visit_order(near_first) == [["near", "far"]]
    far_visit = far_first.routes[0].visits[0]
    assert far_visit.arrival_s == far_visit.service_start_s <= 6 * HOUR + 600
    assert far_first.routes[0].distance_m == near_first.routes[0].distance_m


def test_a_far_optional_stop_with_a_small_prize_is_skipped_and_a_near_one_taken() -> None:
    stops = (
        bin_stop("route1", east=2, pickup=100),
        bin_stop("route2", east=4, pickup=100),
        bin_stop("near_optional", east=3, north=0.1, pickup=100, required=False, prize_m=1000),
        bin_stop("far_optional", east=3, north=8, pickup=100, required=False, prize_m=1000),
    )
    solution = solve(RoutingProblem((bauhof(),), (Vehicle("truck", "bauhof", capacity=1000),), stops))

    assert served(solution) == {"route1", "route2", "near_optional"}
    (skipped,) = solution.unserved
    assert skipped.stop_id == "far_optional"
    assert skipped.reason is UnservedReason.NOT_WORTH_DETOUR
    # ~8.9 km north and back, times the road factor: far more than the 1 km it is worth.
    assert skipped.detour_m is not None and skipped.detour_m > 10 * skipped.prize_m


def test_must_go_stops_are_served_however_far() -> None:
    stops = (
        bin_stop("close", east=1, pickup=100),
        bin_stop("remote_must_go", east=0, north=15, pickup=100, prize_m=0),
        bin_stop("remote_optional", east=0.5, north=-15, pickup=100, required=False, prize_m=10),
    )
    solution = solve(RoutingProblem((bauhof(),), (Vehicle("truck", "bauhof", capacity=1000),), stops))
    assert {"close", "remote_must_go"} <= served(solution)
    assert [unserved.stop_id for unserved in solution.unserved] == ["remote_optional"]


def test_two_depots_each_serve_their_own_town() -> None:
    # Two yards 20 km apart, three bins around each: each yard's truck takes its own town and comes home.
    west, east = bauhof("bauhof_west", lon=LON), bauhof("bauhof_east", lon=LON + 0.28)
    stops = tuple(bin_stop(f"west{i}", east=0.5 * (i + 1), north=0.3 * i, pickup=100) for i in range(3))
    stops += tuple(bin_stop(f"east{i}", east=28 + 0.5 * (i + 1), north=0.3 * i, pickup=100) for i in range(3))
    trucks = (Vehicle("truck_west", "bauhof_west", capacity=1000), Vehicle("truck_east", "bauhof_east", capacity=1000))
    solution = solve(RoutingProblem((west, east), trucks, stops))

    assert solution.feasible and len(solution.routes) == 2
    for route in solution.routes:
        town = route.vehicle_id.removeprefix("truck_")
        assert route.start_depot_id == route.end_depot_id == f"bauhof_{town}"
        assert {visit.stop_id.rstrip("012") for visit in route.visits} == {town}
        assert route.km < 6.0  # a local round, not a drive across to the other town


def test_waste_types_are_kept_apart_and_a_type_without_truck_is_reported() -> None:
    stops = (
        bin_stop("rest1", east=1, pickup=100, waste_type="restmuell"),
        bin_stop("glass1", east=1.2, pickup=100, waste_type="glas"),
        bin_stop("rest2", east=2, pickup=100, waste_type="restmuell"),
        bin_stop("paper_optional", east=2.5, pickup=100, waste_type="papier", required=False, prize_m=5000),
        bin_stop("paper_must_go", east=3, pickup=100, waste_type="papier"),
    )
    trucks = (
        Vehicle("rest_truck", "bauhof", capacity=1000, waste_type="restmuell"),
        Vehicle("glass_truck", "bauhof", capacity=1000, waste_type="glas"),
    )
    solution = solve(RoutingProblem((bauhof(),), trucks, stops))

    routes = {route.vehicle_id: {visit.stop_id for visit in route.visits} for route in solution.routes}
    assert routes == {"rest_truck": {"rest1", "rest2"}, "glass_truck": {"glass1"}}
    assert [(u.stop_id, u.reason) for u in solution.unserved] == [("paper_optional", UnservedReason.NO_VEHICLE)]
    assert solution.unroutable_required == ("paper_must_go",)
    assert not solution.feasible


def test_unserved_reasons_capacity_and_time_window() -> None:
    stops = (
        bin_stop("fills_the_truck", east=1, pickup=900),
        bin_stop("no_room", east=1.1, pickup=300, required=False, prize_m=50_000),
        bin_stop(
            "too_late", east=1.2, required=False, prize_m=50_000, window_start_s=20 * HOUR, window_end_s=21 * HOUR
        ),
    )
    solution = solve(RoutingProblem((bauhof(),), (Vehicle("truck", "bauhof", capacity=1000),), stops))

    reasons = {unserved.stop_id: unserved.reason for unserved in solution.unserved}
    assert reasons == {"no_room": UnservedReason.CAPACITY, "too_late": UnservedReason.TIME_WINDOW}
    assert served(solution) == {"fills_the_truck"}


def test_the_same_seed_gives_the_same_routes() -> None:
    rng = np.random.default_rng(3)
    stops = tuple(
        bin_stop(f"bin{i}", east=float(x), north=float(y), pickup=int(p), service_s=90, required=bool(i % 3))
        if i % 3
        else bin_stop(f"bin{i}", east=float(x), north=float(y), pickup=int(p), required=False, prize_m=int(p) * 10)
        for i, (x, y, p) in enumerate(
            zip(rng.uniform(-5, 5, 30), rng.uniform(-5, 5, 30), rng.integers(50, 300, 30), strict=True)
        )
    )
    problem = RoutingProblem((bauhof(),), (Vehicle("truck", "bauhof", capacity=1500, count=4),), stops)
    first, second = solve(problem, seed=11), solve(problem, seed=11)
    assert first.routes == second.routes
    assert first.unserved == second.unserved
    assert first.iterations == second.iterations == ITERATIONS


def test_a_road_table_file_replaces_coordinates(tmp_path: Path) -> None:
    # Straight lines say A-B-C along the valley; the road table knows the bridge between A and B is closed.
    ids = ["bauhof", "A", "B", "C"]
    distances = [
        [0, 1000, 2000, 3000],
        [1000, 0, 9000, 2000],
        [2000, 9000, 0, 1000],
        [3000, 2000, 1000, 0],
    ]
    durations = [[round(d / 8.0, 1) for d in row] for row in distances]
    table_file = tmp_path / "osrm-table.json"
    table_file.write_text(json.dumps({"code": "Ok", "durations": durations, "distances": distances, "place_ids": ids}))
    table = load_osrm_table(table_file)
    problem = RoutingProblem(
        (RouteDepot("bauhof"),),  # no coordinates at all: the table is the only travel source
        (Vehicle("truck", "bauhof", capacity=1000),),
        tuple(Stop(stop_id, pickup=100) for stop_id in "ABC"),
        travel_table=table,
    )
    solution = solve(problem)
    # Along the valley (A, B, C) would drive over the closed bridge: 1,000 + 9,000 + 1,000 + 3,000 m.
    assert visit_order(solution) in ([["A", "C", "B"]], [["B", "C", "A"]])
    assert solution.distance_m == 1000 + 2000 + 1000 + 2000
    distances_m, durations_s = travel_matrices(problem)
    assert distances_m[1, 2] == 9000 and durations_s[1, 2] == 1125


def test_settings_read_the_road_table_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table_file = tmp_path / "table.json"
    table_file.write_text(json.dumps({"distances": [[0, 7]], "durations": [[0, 1]], "place_ids": ["a"]}))
    assert RoutingSettings().travel_table([bauhof()]) is None
    with pytest.raises(TravelTableError, match="distances row 0 must have 1 entries"):
        RoutingSettings(osrm_table=str(table_file)).travel_table([bauhof()])
    table_file.write_text(
        json.dumps({"distances": [[0, 7], [7, 0]], "durations": [[0, 1], [1, 0]], "place_ids": ["a", "b"]})
    )
    monkeypatch.setenv("FLURFUNK_ROUTING_OSRM_TABLE", str(table_file))
    table = RoutingSettings().travel_table([bauhof()])
    assert table is not None and table.distances_m[0, 1] == 7


def test_settings_ask_an_osrm_server_for_the_problems_places() -> None:
    requested: list[str] = []

    class OsrmTable(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            body = json.dumps({"code": "Ok", "distances": [[0, 1500], [1400, 0]], "durations": [[0, 120], [110, 0]]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), OsrmTable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings_ = RoutingSettings(osrm_table=f"http://127.0.0.1:{server.server_port}")
        table = settings_.travel_table([bauhof(), bin_stop("bin", east=1)])
    finally:
        server.shutdown()
    assert table is not None and table.place_ids == ("bauhof", "bin")
    assert table.distances_m.tolist() == [[0, 1500], [1400, 0]]
    assert requested == [
        f"/table/v1/driving/{LON:.6f},{LAT:.6f};{LON + 0.01:.6f},{LAT:.6f}?annotations=duration,distance"
    ]


def test_coordinates_give_road_factor_times_great_circle_metres() -> None:
    problem = RoutingProblem((bauhof(),), (), (bin_stop("x", east=0, north=1),), road_factor=1.25, speed_kmh=36.0)
    distances, durations = travel_matrices(problem)
    great_circle_m = 0.01 * np.pi / 180 * 6371008.8
    assert distances[0, 1] == round(1.25 * great_circle_m)
    assert durations[0, 1] == round(distances[0, 1] / 10.0)


def test_osrm_table_rejects_what_it_cannot_use() -> None:
    good = {"durations": [[0, 1], [1, 0]], "distances": [[0, 5], [5, 0]]}
    assert parse_osrm_table(json.dumps(good), ["a", "b"]).distances_m.tolist() == [[0, 5], [5, 0]]
    with_null = {"durations": [[0, None], [1, 0]], "distances": [[0, None], [5, 0]]}
    assert parse_osrm_table(json.dumps(with_null), ["a", "b"]).distances_m[0, 1] >= 1_000_000
    cases = {
        "not valid JSON": b"{",
        "code 'NoRoute'": json.dumps({"code": "NoRoute", "message": "Impossible route"}),
        "no 'distances'": json.dumps({"durations": good["durations"]}),
        "must have 3 rows": json.dumps(good),
        "outside 0..": json.dumps({**good, "distances": [[0, -5], [5, 0]]}),
        "a number or null": json.dumps({**good, "distances": [[0, "5"], [5, 0]]}),
    }
    for message, document in cases.items():
        ids = ["a", "b", "c"] if "3 rows" in message else ["a", "b"]
        with pytest.raises(TravelTableError, match=message):
            parse_osrm_table(document, ids)
    with pytest.raises(TravelTableError, match="no 'place_ids'"):
        parse_osrm_table(json.dumps(good))
    with pytest.raises(TravelTableError, match="no row for 1 place"):
        TravelTable(("a", "b"), np.zeros((2, 2)), np.zeros((2, 2))).submatrices(["a", "zz"])


def test_osrm_table_url_puts_longitude_first() -> None:
    url = osrm_table_url("http://localhost:5000/", [(50.2, 9.3), (50.3, 9.4)])
    assert (
        url
        == "http://localhost:5000/table/v1/driving/9.300000,50.200000;9.400000,50.300000?annotations=duration,distance"
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.lists(st.lists(st.integers(0, 100_000), min_size=n, max_size=n), min_size=n, max_size=n)
    )
)
def test_osrm_table_round_trips_any_square_table(rows: list[list[int]]) -> None:
    ids = [f"p{i}" for i in range(len(rows))]
    table = parse_osrm_table(json.dumps({"distances": rows, "durations": rows, "place_ids": ids}))
    assert table.distances_m.tolist() == rows and table.place_ids == tuple(ids)


def test_bad_problems_are_refused_with_the_reason() -> None:
    with pytest.raises(RoutingInputError, match="reload depot 'dump' is not among the depots"):
        RoutingProblem((bauhof(),), (Vehicle("t", "bauhof", capacity=1, reload_depot_ids=("dump",)),), ())
    with pytest.raises(RoutingInputError, match="used by more than one"):
        RoutingProblem((bauhof(),), (), (bin_stop("bauhof", east=1),))
    with pytest.raises(RoutingInputError, match="no coordinates and there is no road table"):
        RoutingProblem((bauhof(),), (), (Stop("x"),))
    with pytest.raises(RoutingInputError, match="window_end_s"):
        bin_stop("x", east=1, window_start_s=10 * HOUR, window_end_s=9 * HOUR)
    with pytest.raises(RoutingInputError, match="pickup must be an integer"):
        bin_stop("x", east=1, pickup=1.5)
    with pytest.raises(RoutingInputError, match="time_limit_s"):
        solve_routes(RoutingProblem((bauhof(),), (), ()), 0.0, 1)


# --- CVRPLIB ---------------------------------------------------------------------------------------------------------

# The optimal routes published with E-n22-k4 (CVRPLIB; PyVRP/VRPLIB data/CVRPLIB/E/E-n22-k4.sol): nodes numbered from 0
# at the depot, i.e. file node number minus one.
E_N22_K4_OPTIMUM = [[17, 20, 18, 15, 12], [16, 19, 21, 14], [13, 11, 4, 3, 8, 10], [9, 7, 5, 2, 1, 6]]


def test_cvrplib_reader_matches_the_published_optimum_of_e_n22_k4() -> None:
    instance = read_cvrplib(CVRPLIB / "E-n22-k4.vrp")
    assert (instance.name, instance.capacity, instance.depot, len(instance.demands)) == ("E-n22-k4", 6000, 0, 22)
    assert instance.demands.sum() == 22_500
    assert instance.coordinates[21].tolist() == [139.0, 182.0]
    # Rounded Euclidean distances, as the benchmark defines them: the optimal routes cost exactly 375.
    assert instance.route_cost(E_N22_K4_OPTIMUM) == 375


def test_solver_gets_within_a_few_percent_of_e_n22_k4_quickly() -> None:
    instance = read_cvrplib(CVRPLIB / "E-n22-k4.vrp")
    solution = solve_routes(instance.to_routing_problem(), BACKSTOP_S, 1, max_iterations=1000)
    routes = [[int(visit.stop_id) - 1 for visit in route.visits] for route in solution.routes]
    assert solution.feasible and sorted(node for route in routes for node in route) == instance.customers
    cost = instance.route_cost(routes)
    assert cost == solution.distance_m
    assert 375 <= cost <= 375 * 1.03


@pytest.mark.parametrize(("name", "dimension", "capacity"), [("A-n32-k5", 32, 100), ("X-n101-k25", 101, 206)])
def test_cvrplib_reader_reads_the_bench_instances(name: str, dimension: int, capacity: int) -> None:
    instance = read_cvrplib(CVRPLIB / f"{name}.vrp")
    assert (instance.name, len(instance.demands), instance.capacity) == (name, dimension, capacity)
    assert instance.demands[instance.depot] == 0 and (instance.demands[instance.customers] > 0).all()


def _instance_text(coordinates: list[tuple[int, int]], demands: list[int], capacity: int) -> str:
    lines = ["NAME : t", "TYPE : CVRP", f"DIMENSION : {len(demands)}", "EDGE_WEIGHT_TYPE : EUC_2D"]
    lines += [f"CAPACITY : {capacity}", "NODE_COORD_SECTION"]
    lines += [f"{i + 1}\t{x}\t{y}" for i, (x, y) in enumerate(coordinates)]
    lines += ["DEMAND_SECTION", *(f"{i + 1} {d}" for i, d in enumerate(demands)), "DEPOT_SECTION", " 1", " -1", "EOF"]
    return "\n".join(lines) + "\n"


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000), st.integers(1, 50)), min_size=1, max_size=30),
)
def test_cvrplib_reader_round_trips_generated_instances(nodes: list[tuple[int, int, int]]) -> None:
    coordinates = [(500, 500), *((x, y) for x, y, _ in nodes)]
    demands = [0, *(d for _, _, d in nodes)]
    instance = parse_cvrplib(_instance_text(coordinates, demands, capacity=50))
    assert instance.coordinates.tolist() == [list(map(float, point)) for point in coordinates]
    assert instance.demands.tolist() == demands
    distances = instance.distances()
    x, y = coordinates[1]
    assert distances[0, 1] == int(np.floor(np.hypot(x - 500, y - 500) + 0.5)) == distances[1, 0]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_cvrplib_reader_fails_only_with_its_own_error(text: str) -> None:
    with contextlib.suppress(CvrplibFormatError):
        parse_cvrplib(text)


def test_cvrplib_reader_names_what_is_wrong() -> None:
    good = _instance_text([(0, 0), (3, 4)], [0, 5], capacity=10)
    assert parse_cvrplib(good).route_cost([[1]]) == 10
    cases = {
        "EDGE_WEIGHT_TYPE is 'EUC_3D'": good.replace("EUC_2D", "EUC_3D"),
        "TYPE is 'VRPTW'": good.replace("TYPE : CVRP", "TYPE : VRPTW"),
        "DEMAND_SECTION is missing": good.replace("DEMAND_SECTION\n1 0\n2 5\n", ""),
        "demands more than the capacity": good.replace("2 5", "2 11"),
        "has demand 3": good.replace("1 0\n", "1 3\n"),
        "NODE_COORD_SECTION has 1 rows": good.replace("2\t3\t4\n", ""),
        "header DIMENSION must be": good.replace("DIMENSION : 2", "DIMENSION : many"),
        "exactly one depot": good.replace(" 1\n -1", " 1 2\n -1"),
        "is not a number": good.replace("2\t3\t4", "2\t3\tfour"),
    }
    for message, text in cases.items():
        with pytest.raises(CvrplibFormatError, match=message):
            parse_cvrplib(text)
