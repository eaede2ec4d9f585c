"""Edge anomaly checks: fault labels, features, rules, bundles, LiteRT vs numpy, the pipeline seam, inspect tasks."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.anomaly.tflite import dense_softmax_tflite
from cloud.scheduler.planning import LatestValue, plan_day
from edge.anomaly import AnomalyScorer, BundleError, load_bundle, window_features
from edge.anomaly.features import (
    FEATURE_NAMES,
    LOOK_AHEAD,
    MIN_HISTORY,
    N_FEATURES,
    NO_NEXT,
    WINDOW,
    StreamingFeatures,
    late_features,
)
from edge.anomaly.rules import rule_fault
from edge.anomaly.runtime import LiteRtRunner, NumpyRunner, litert_interpreter_class
from edge.sim.faults import (
    DRIFT,
    DROPOUT,
    FROZEN_SOIL,
    LID_REFLECTION,
    SPIKE,
    STUCK_AT,
    FaultEvent,
    FaultInjector,
    random_plan,
)
from flurfunk.contracts import Asset, AssetKind, Depot, Quantity, Reading, TaskKind

DEV = "a84041000181c061"
HOUR = 3600.0


def _series(injector: FaultInjector, quantity: Quantity, truth: list[float], extra: dict | None = None) -> list[float]:
    return [injector.apply(DEV, i * HOUR, {quantity: v, **(extra or {})})[quantity] for i, v in enumerate(truth)]


def test_injected_faults_change_exactly_the_labelled_readings() -> None:
    truth = [0.5 + 0.001 * (i % 7) for i in range(40)]
    events = [
        FaultEvent(DEV, "bin", SPIKE, 4.5 * HOUR, 5.5 * HOUR, 0.5),
        FaultEvent(DEV, "bin", STUCK_AT, 9.5 * HOUR, 14.5 * HOUR, 0.0),
        FaultEvent(DEV, "bin", DROPOUT, 19.5 * HOUR, 21.5 * HOUR, 0.0),
        FaultEvent(DEV, "bin", LID_REFLECTION, 24.5 * HOUR, 27.5 * HOUR, 0.07),
        FaultEvent(DEV, "bin", DRIFT, 29.5 * HOUR, 39.5 * HOUR, 0.01),
    ]
    injector = FaultInjector(events, seed=3)
    reported = _series(injector, Quantity.DISTANCE_M, truth)
    labelled = {round(label.time_s / HOUR): label.fault for label in injector.labels}
    assert labelled[5] == SPIKE and reported[5] == pytest.approx(truth[5] + 0.5)
    assert all(labelled[i] == STUCK_AT and reported[i] == reported[9] for i in range(10, 15))
    assert reported[20] == reported[21] == 0.0 and labelled[20] == DROPOUT
    assert all(0.05 < reported[i] < 0.1 and labelled[i] == LID_REFLECTION for i in range(25, 28))
    # Drift is labelled only once its offset exceeds the sensor's tolerance (2 cm): from the 2nd hour on.
    assert 30 not in labelled and all(labelled[i] == DRIFT for i in range(32, 40))
    clean = [i for i in range(40) if i not in labelled]
    assert all(reported[i] == truth[i] for i in clean if not 29 < i < 40)


def test_frozen_soil_reads_low_water_and_sub_zero_temperature() -> None:
    injector = FaultInjector([FaultEvent(DEV, "soil", FROZEN_SOIL, 0.5 * HOUR, 3.5 * HOUR, 0.4)])
    out = [injector.apply(DEV, i * HOUR, {Quantity.SOIL_VWC: 0.3, Quantity.SOIL_TEMPERATURE_C: 2.0}) for i in range(5)]
    assert [o[Quantity.SOIL_VWC] for o in out] == [0.3, 0.12, 0.12, 0.12, 0.3]
    assert all(o[Quantity.SOIL_TEMPERATURE_C] < 0 for o in out[1:4]) and out[4][Quantity.SOIL_TEMPERATURE_C] == 2.0
    assert [label.fault for label in injector.labels] == [FROZEN_SOIL] * 3


def test_a_fault_of_another_family_is_refused_and_plans_are_seeded() -> None:
    with pytest.raises(ValueError, match="lid_reflection"):
        FaultInjector([FaultEvent(DEV, "soil", LID_REFLECTION, 0, HOUR, 0.07)])
    devices = [(DEV, "bin", 3600), ("a84041000181c062", "weather", 600)]
    assert random_plan(devices, 0, 30 * 86400, seed=5) == random_plan(devices, 0, 30 * 86400, seed=5)
    assert random_plan(devices, 0, 30 * 86400, seed=5) != random_plan(devices, 0, 30 * 86400, seed=6)


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(finite, max_size=120),
    finite,
    st.sampled_from(["bin", "soil", "weather"]),
    st.none() | finite,
    st.lists(finite, max_size=LOOK_AHEAD + 1),
)
def test_any_finite_series_gives_finite_features(
    history: list[float], value: float, family: str, temp, following: list[float]
) -> None:
    features = window_features(history, value, family, temp, following)
    assert features.shape == (N_FEATURES,) and np.all(np.isfinite(features))


def test_neighbourhood_features_tell_a_burst_reading_left_near_the_level_from_a_spike() -> None:
    """A burst can leave one reading near the true level; its neighbours still scatter. A spike's neighbours agree."""
    calm = [0.5 + 0.002 * (i % 3) for i in range(30)]
    burst = window_features([*calm, 0.62, 0.35], 0.501, "bin", following=[0.71, 0.28, 0.66, 0.4])
    spike = window_features(calm, 0.9, "bin", following=[0.501, 0.502, 0.5, 0.501])
    shift = window_features(calm, 0.2, "bin", following=[0.201, 0.2, 0.202, 0.2])  # an emptied bin
    at = FEATURE_NAMES.index
    assert burst[at("around_scatter_z")] > 10 * spike[at("around_scatter_z")] > 0
    assert burst[at("around_big_steps")] == 7 and spike[at("around_big_steps")] == 2
    assert shift[at("around_big_steps")] == 1 and abs(shift[at("ahead_from_this_z")]) < 1
    assert spike[at("ahead_from_this_z")] < -10 and spike[at("known_share")] == 1.0
    assert window_features(calm, 0.9, "bin", following=[0.5])[at("known_share")] == 1 / LOOK_AHEAD


def test_a_burst_at_a_series_start_shows_against_the_sensor_step_though_it_fills_the_window() -> None:
    """The window's own noise scale grows with a burst that fills it; the family's known step does not."""
    burst = [0.908, 0.189, 0.584, 0.386, 0.409, 0.457, 0.096, 0.454, 0.327, 1.165, 0.545, 0.429]
    in_burst = window_features(burst[:8], burst[8], "bin", following=burst[9:])
    calm = [0.5 + 0.002 * (i % 3) for i in range(30)]
    quiet = window_features(calm, 0.501, "bin", following=[0.502, 0.5, 0.501, 0.502])
    spike = window_features(calm, 0.9, "bin", following=[0.501, 0.502, 0.5, 0.501])
    at = FEATURE_NAMES.index
    # By the window's noise scale the burst looks hardly rougher than a calm series ...
    assert in_burst[at("around_big_steps")] == 0 and in_burst[at("around_scatter_z")] < 1
    # ... by the sensor's step it scatters by many steps, a calm series and a lone spike do not.
    calm_scatter = max(quiet[at("around_scatter_step")], spike[at("around_scatter_step")])
    assert in_burst[at("around_scatter_step")] > 5 > 1 > calm_scatter
    assert in_burst[at("around_rough_steps")] == 6 and quiet[at("around_rough_steps")] == 0
    assert spike[at("around_rough_steps")] == 2
    # A spike is one reading far from its neighbours' median; in a burst many are.
    assert spike[at("around_peak_share")] > 20 > 10 > in_burst[at("around_peak_share")]


def test_streaming_features_match_the_window_function_and_stay_bounded() -> None:
    streams = StreamingFeatures(max_series=2)
    values = [0.5, 0.51, 0.49, 0.5, 0.9]
    for i, v in enumerate(values):
        got = streams.push(DEV, Quantity.DISTANCE_M, v, "bin")
        assert got is not None
        assert np.array_equal(np.array(got[0] + list(NO_NEXT)), window_features(values[:i], v, "bin"))
    assert got[0][FEATURE_NAMES.index("step")] == pytest.approx(40)  # a 40 cm jump, in 1 cm steps
    streams.push("b", Quantity.DISTANCE_M, 1.0, "bin")
    streams.push("c", Quantity.DISTANCE_M, 1.0, "bin")
    assert len(streams) == 2 and streams.window(DEV, Quantity.DISTANCE_M) == ()


# Sensor-like series: a level, noise on the firmware's resolution, repeats, no-value zeros and wild values.
_series_values = st.lists(
    st.one_of(
        st.floats(0.2, 0.3).map(lambda v: round(v, 3)),
        st.sampled_from([0.0, 0.25, 0.25, 1.7]),
        st.floats(-1e12, 1e12, allow_nan=False),
    ),
    min_size=1,
    max_size=260,
)


@settings(max_examples=60, deadline=None)
@given(_series_values, st.sampled_from(["bin", "soil", "weather"]), st.none() | st.floats(-30, 30))
def test_streaming_features_equal_the_from_scratch_window_features(
    values: list[float], family: str, temperature: float | None
) -> None:
    """The incremental windows (sorted views kept with bisect, sliding past WINDOW) give the from-scratch numbers."""
    streams = StreamingFeatures()
    for i, value in enumerate(values):
        got = streams.push(DEV, Quantity.SOIL_VWC, value, family, temperature)
        assert got is not None
        instant, context = got
        expected = window_features(values[:i], value, family, temperature)
        assert np.allclose(np.array(instant + list(NO_NEXT)), expected, rtol=1e-9, atol=1e-9), i
        for known in range(1, LOOK_AHEAD + 1):
            after = values[i + 1 : i + 1 + known]
            if len(after) == known:
                late = window_features(values[:i], value, family, temperature, after)
                assert np.allclose(np.array(instant + late_features(context, after, family)), late, rtol=1e-9)
    assert len(streams.window(DEV, Quantity.SOIL_VWC)) <= WINDOW


def test_rules_name_dropout_range_stuck_and_impossible_steps() -> None:
    assert rule_fault("soil", np.array([0.3]), 0.0) == "dropout"
    assert rule_fault("bin", np.array([]), 7.0) == "out_of_range"
    assert rule_fault("soil", np.full(5, 0.2512), 0.2512) == "stuck_at"
    assert rule_fault("soil", np.full(4, 0.2512), 0.2512) is None
    assert rule_fault("weather", np.array([12.0]), 25.0) == "spike"
    assert rule_fault("weather", np.array([12.0]), 12.3) is None
    # The reading after a spike returns to the level before it: not a spike itself (it was flagged as one).
    assert rule_fault("weather", np.array([12.0, 12.2, 25.0]), 12.4) is None
    assert rule_fault("weather", np.array([12.0, 12.2, 12.4]), 25.0) == "spike"


def _tiny_bundle(path: Path, threshold: float = 0.5, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    classes = ["clean", "spike", "stuck_at", "noise_burst"]
    shapes = [(N_FEATURES, 16), (16, 8), (8, len(classes))]
    weights = [rng.normal(0, 0.5, s).astype(np.float32) for s in shapes]
    biases = [rng.normal(0, 0.1, s[1]).astype(np.float32) for s in shapes]
    path.mkdir(parents=True, exist_ok=True)
    np.savez(
        path / "weather.npz",
        **{f"w{i}": w for i, w in enumerate(weights)},
        **{f"b{i}": b for i, b in enumerate(biases)},
    )
    (path / "weather.tflite").write_bytes(dense_softmax_tflite(weights, biases))
    manifest = {
        "format": "flurfunk-anomaly-bundle", "format_version": 3, "version": "test-1",
        "feature_names": list(FEATURE_NAMES),
        "families": {"weather": {"quantity": "air_temperature_c", "classes": classes, "threshold": threshold,
                                 "feature_mean": [0.0] * N_FEATURES, "feature_scale": [1.0] * N_FEATURES,
                                 "weights": "weather.npz", "tflite": "weather.tflite"}},
    }  # fmt: skip
    (path / "bundle.json").write_text(json.dumps(manifest))
    return path


@pytest.mark.skipif(litert_interpreter_class() is None, reason="neither ai_edge_litert nor tflite_runtime importable")
def test_litert_and_numpy_paths_agree_to_1e_5(tmp_path: Path) -> None:
    bundle = load_bundle(_tiny_bundle(tmp_path / "b"))
    model = bundle.families["weather"]
    rows = model.standardise(np.random.default_rng(1).normal(0, 2, (300, N_FEATURES)))
    litert = LiteRtRunner(model.tflite_path).probabilities(rows)
    numpy_path = NumpyRunner(model.weights, model.biases).probabilities(rows)
    assert np.max(np.abs(litert - numpy_path)) <= 1e-5
    # One invoke per batch: odd sizes are padded, every size gives the same rows as the numpy path.
    runner = LiteRtRunner(model.tflite_path)
    for size in (1, 2, 3, 17):
        assert np.max(np.abs(runner.probabilities(rows[:size]) - numpy_path[:size])) <= 1e-5


def test_broken_bundles_are_refused_with_the_field_named(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle manifest"):
        load_bundle(tmp_path)
    path = _tiny_bundle(tmp_path / "b")
    manifest = json.loads((path / "bundle.json").read_text())
    manifest["families"]["weather"]["threshold"] = 2.0
    (path / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="threshold"):
        load_bundle(path)
    manifest["families"]["weather"]["threshold"] = 0.5
    manifest["feature_names"] = ["x"]
    (path / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="feature_names"):
        load_bundle(path)
    (path / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="not JSON"):
        load_bundle(path)


def _reading(value: float, minute: int, quantity: Quantity = Quantity.AIR_TEMPERATURE_C) -> Reading:
    time = datetime(2026, 7, 6, tzinfo=UTC) + timedelta(minutes=10 * minute)
    return Reading(device=DEV, asset="ws-1", quantity=quantity, value=value, time=time)


def test_scorer_keeps_every_reading_and_marks_faults(tmp_path: Path) -> None:
    scorer = AnomalyScorer(load_bundle(_tiny_bundle(tmp_path / "b", threshold=1.0)), backend="numpy")
    assert scorer.model_version == "test-1"
    outputs = [scorer.score([_reading(15.0 + 0.1 * (i % 3), i), _reading(60.0, i, Quantity.HUMIDITY_PCT)])
               for i in range(20)]  # fmt: skip
    assert all(len(out) == 2 and out[1].flags == () for out in outputs)
    assert all(0.0 <= out[0].anomaly_score <= 1.0 for out in outputs)
    jumped = scorer.score([_reading(40.0, 21)])[0]
    assert jumped.value == 40.0 and {"sensor_fault", "fault_spike"} <= set(jumped.flags) and jumped.anomaly_score == 1
    rules_only = AnomalyScorer(None)
    assert rules_only.model_version == "rules-only"
    stuck = [rules_only.score([_reading(0.25, i, Quantity.SOIL_VWC)])[0] for i in range(6)]
    assert stuck[4].flags == () and stuck[5].flags == ("fault_stuck_at", "sensor_fault")


def test_planner_raises_an_inspect_task_instead_of_acting_on_a_faulty_reading() -> None:
    day = date(2026, 7, 7)
    now = datetime(2026, 7, 7, 4, 0, tzinfo=UTC)
    depot = Depot(municipality="Birstein", name="Bauhof", latitude=50.35, longitude=9.30)
    tree = Asset(id="tree-1", kind=AssetKind.TREE, municipality="Birstein", village="Birstein", latitude=50.351,
                 longitude=9.301, planting_year=2024)  # fmt: skip
    faulty = LatestValue(0.02, now, flags=("fault_dropout", "sensor_fault"))
    plan = plan_day(day, [depot], [tree], {"tree-1": {Quantity.SOIL_VWC: faulty}}, language="en", as_of=now)
    assert [task.kind for task in plan.tasks] == [TaskKind.INSPECT]
    assert "dropout" in plan.tasks[0].reason and plan.tasks[0].evidence["faults"] == "dropout"
    assert plan.skipped and not plan.routes
    healthy = plan_day(day, [depot], [tree], {"tree-1": {Quantity.SOIL_VWC: LatestValue(0.02, now)}}, as_of=now)
    assert [task.kind for task in healthy.tasks] == [TaskKind.WATER]
    assert math.isfinite(healthy.routes[0].km)


def test_a_reading_not_newer_than_its_series_gets_the_rules_only_and_stays_out_of_the_window(tmp_path: Path) -> None:
    """A retry or replay (same time again) must not enter the window twice nor give the reading before a late
    verdict from a repeat of itself; the network judges a series once its window holds MIN_HISTORY readings."""
    scorer = AnomalyScorer(load_bundle(_tiny_bundle(tmp_path / "b", threshold=0.01)), backend="numpy")
    warm_up = [scorer.score([_reading(15.0 + 0.1 * i, i)])[0] for i in range(MIN_HISTORY)]
    assert all(r.anomaly_score == 0.0 and r.flags == () for r in warm_up)  # rules only while the window fills
    window = [15.0 + 0.1 * i for i in range(MIN_HISTORY)]
    first = scorer.score([_reading(16.0, 10)])[0]
    assert first.anomaly_score > 0  # the network judged it
    scorer.take_revisions()  # the warm-up readings' late verdicts, which 16.0 gave
    again = scorer.score([_reading(16.0, 10)])[0]
    earlier = scorer.score([_reading(14.0, 8)])[0]
    assert again.anomaly_score == earlier.anomaly_score == 0.0 and again.flags == earlier.flags == ()
    assert scorer.take_revisions() == []  # no late verdict came from the repeat
    assert list(scorer._features.window(DEV, Quantity.AIR_TEMPERATURE_C)) == [*window, 16.0]
    scorer.score([_reading(16.2, 11)])
    assert list(scorer._features.window(DEV, Quantity.AIR_TEMPERATURE_C)) == [*window, 16.0, 16.2]
