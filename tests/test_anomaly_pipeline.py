"""The gateway stores the scorer's revised verdicts: a reading whose verdict changes one reading later is stored
again with its new flags (and its fill ratio), in the next commit, and nothing of the first verdict is lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from cloud.anomaly.tflite import dense_softmax_tflite
from edge.anomaly import AnomalyScorer, load_bundle
from edge.anomaly.features import FEATURE_NAMES, MIN_HISTORY, N_FEATURES, WINDOW
from flurfunk.contracts import Quantity, Reading
from gateway.buffer import DurableBuffer
from gateway.pipeline import Pipeline
from tests.test_gateway_pipeline import BIN_SENSOR, NOW, make_pipeline, mm, stored, uplink


def _late_only_bundle(path: Path) -> Path:
    """A bin model that is unsure on arrival (score 0.5) and sure of a spike once the next reading is known, for
    readings after the warm-up (MIN_HISTORY readings in the window); the warm-up readings stay unsure (0.5)."""
    warm = np.log1p(np.array([MIN_HISTORY - 1, MIN_HISTORY]) / WINDOW)  # the `history` feature, signed log
    sharp = 1.5 / (warm[1] - warm.mean())
    first = np.zeros((N_FEATURES, 3), np.float32)
    first[FEATURE_NAMES.index("history"), :2] = sharp  # two units whose difference steps from 0 to 1 at MIN_HISTORY
    first[FEATURE_NAMES.index("has_next"), 2] = 1.0 / np.log1p(1.0)  # 1 once the next reading is known
    first_bias = np.array([-sharp * warm.mean(), -sharp * warm.mean() - 1.0, 0.0], np.float32)
    both = np.array([[1.0], [-1.0], [1.0]], np.float32)  # relu(warm + has_next - 1): both
    weights = [first, both, np.array([[0.0, 20.0]], np.float32)]
    biases = [first_bias, np.array([-1.0], np.float32), np.zeros(2, np.float32)]
    path.mkdir(parents=True)
    np.savez(path / "bin.npz", **{f"w{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})  # fmt: skip
    (path / "bin.tflite").write_bytes(dense_softmax_tflite(weights, biases))
    manifest = {
        "format": "flurfunk-anomaly-bundle", "format_version": 3, "version": "late-only",
        "feature_names": list(FEATURE_NAMES),
        "families": {"bin": {"quantity": "distance_m", "classes": ["clean", "spike"], "threshold": 0.9,
                             "instant_threshold": 0.9, "feature_mean": [0.0] * N_FEATURES,
                             "feature_scale": [1.0] * N_FEATURES, "weights": "bin.npz", "tflite": "bin.tflite"}},
    }  # fmt: skip
    (path / "bundle.json").write_text(json.dumps(manifest))
    return path


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[DurableBuffer]:
    with DurableBuffer(tmp_path / "buffer.db", quota_bytes=10_000_000) as store:
        yield store


def _at(hour: int, distance_m: float, f_cnt: int):  # type: ignore[no-untyped-def]
    return uplink(BIN_SENSOR, f_cnt=f_cnt, payload=mm(distance_m), received_at=NOW - timedelta(hours=10 - hour))


def _warm_up(pipeline: Pipeline) -> None:
    """The first MIN_HISTORY readings of a series fill its window; the network judges from the next one on."""
    pipeline.handle_many([_at(hour, 0.72 + 0.003 * hour, 100 + hour) for hour in range(MIN_HISTORY)])


def _of(readings: list[Reading], quantity: Quantity, hour: int) -> list[Reading]:
    return [r for r in readings if r.quantity is quantity and r.time == NOW - timedelta(hours=10 - hour)]


@pytest.mark.parametrize("backend", ["numpy", "litert"])
def test_a_verdict_revised_one_reading_later_is_stored_with_its_fill_ratio(
    tmp_path: Path, buffer: DurableBuffer, backend: str
) -> None:
    if backend == "litert":
        pytest.importorskip("ai_edge_litert")
    scorer = AnomalyScorer(load_bundle(_late_only_bundle(tmp_path / "bundle")), backend=backend)
    pipeline = make_pipeline(buffer, scorer=scorer)
    _warm_up(pipeline)
    pipeline.handle_many([_at(7, 0.70, 1)])
    first = stored(buffer)[2 * MIN_HISTORY :]
    assert [r.flags for r in first] == [(), ()]  # distance and fill ratio, unflagged on arrival
    assert 0.4 < first[0].anomaly_score < 0.6  # judged by the network: unsure
    report = pipeline.handle_many([_at(8, 0.69, 2)])
    assert report.accepted == 1 and report.readings == 2
    after = stored(buffer)
    # One entry per uplink: the revision travels in the entry of the uplink whose reading revised it.
    entries = buffer.pending(100)
    assert len(entries) == MIN_HISTORY + 2 and len(entries[-1].readings) == 4
    # The first reading is there twice: as first judged, then revised (same time and value, new flags).
    distance_1 = _of(after, Quantity.DISTANCE_M, 7)
    assert [r.flags for r in distance_1] == [(), ("fault_spike", "sensor_fault")]
    assert distance_1[0].value == distance_1[1].value == 0.70 and distance_1[1].anomaly_score > 0.99
    fill_1 = _of(after, Quantity.FILL_RATIO, 7)
    assert [r.flags for r in fill_1] == [(), ("fault_spike", "sensor_fault")]
    assert fill_1[0].value == fill_1[1].value
    # The newest reading waits for its own next one; nothing is revised twice.
    assert [r.flags for r in _of(after, Quantity.DISTANCE_M, 8)] == [()]
    assert scorer.take_revisions() == []


def test_within_one_call_the_late_verdict_is_handed_out_directly(buffer: DurableBuffer, tmp_path: Path) -> None:
    scorer = AnomalyScorer(load_bundle(_late_only_bundle(tmp_path / "bundle")), backend="numpy")
    pipeline = make_pipeline(buffer, scorer=scorer)
    _warm_up(pipeline)
    pipeline.handle_many([_at(7, 0.70, 1), _at(8, 0.69, 2), _at(9, 0.68, 3)])
    readings = stored(buffer)[2 * MIN_HISTORY :]
    assert len(readings) == 6  # no second copy: the late verdicts were known before the commit
    assert [r.flags for r in readings if r.quantity is Quantity.DISTANCE_M] == [
        ("fault_spike", "sensor_fault"),
        ("fault_spike", "sensor_fault"),
        (),
    ]


def test_revisions_the_full_buffer_refuses_wait_and_are_stored_later(tmp_path: Path) -> None:
    scorer = AnomalyScorer(load_bundle(_late_only_bundle(tmp_path / "bundle")), backend="numpy")
    with DurableBuffer(tmp_path / "small.db", quota_bytes=1_000_000) as small:
        pipeline = make_pipeline(small, scorer=scorer)
        _warm_up(pipeline)
        pipeline.handle_many([_at(7, 0.70, 1)])
        small.quota_bytes = small.stats().bytes  # full: the next uplink and the revision do not fit
        report = pipeline.handle_many([_at(8, 0.69, 2)])
        assert report.dropped == {"buffer_full": 1}
        assert len(_of(stored(small), Quantity.DISTANCE_M, 7)) == 1
        small.quota_bytes = 1_000_000
        pipeline.handle_many([_at(8, 0.69, 2)])  # the source sends the refused uplink again
        revised = _of(stored(small), Quantity.DISTANCE_M, 7)
        assert [r.flags for r in revised] == [(), ("fault_spike", "sensor_fault")]


def test_a_series_first_readings_are_judged_by_the_readings_after_them(tmp_path: Path, buffer: DurableBuffer) -> None:
    """Before the window holds MIN_HISTORY readings the rules alone judge on arrival; the network judges those
    readings once the readings after them come (the first reading of a series can be a spike)."""
    path = tmp_path / "bundle"
    _late_only_bundle(path)
    weights = np.zeros((N_FEATURES, 2), np.float32)  # sure of a spike once the next reading is known, from the first
    weights[FEATURE_NAMES.index("has_next"), 1] = 20.0
    np.savez(path / "bin.npz", w0=weights, b0=np.zeros(2, np.float32))
    (path / "bin.tflite").write_bytes(dense_softmax_tflite([weights], [np.zeros(2, np.float32)]))
    scorer = AnomalyScorer(load_bundle(path), backend="numpy")
    pipeline = make_pipeline(buffer, scorer=scorer)
    pipeline.handle_many([_at(1, 1.4, 1)])
    (first,) = _of(stored(buffer), Quantity.DISTANCE_M, 1)
    assert first.flags == () and first.anomaly_score == 0.0  # rules only on arrival
    pipeline.handle_many([_at(2, 0.7, 2)])
    assert [r.flags for r in _of(stored(buffer), Quantity.DISTANCE_M, 1)] == [(), ("fault_spike", "sensor_fault")]
