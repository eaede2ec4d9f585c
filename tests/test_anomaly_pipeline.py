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
from edge.anomaly.features import FEATURE_NAMES, MIN_HISTORY, N_FEATURES
from flurfunk.contracts import Quantity, Reading
from gateway.buffer import DurableBuffer
from gateway.pipeline import Pipeline
from tests.test_gateway_pipeline import BIN_SENSOR, NOW, make_pipeline, mm, stored, uplink


def _late_only_bundle(path: Path) -> Path:
    """A bin model that is unsure on arrival (score 0.5) and sure of a spike once the next reading is known."""
    weights = np.zeros((N_FEATURES, 2), np.float32)
    weights[FEATURE_NAMES.index("has_next"), 1] = 20.0
    biases = np.zeros(2, np.float32)
    path.mkdir(parents=True)
    np.savez(path / "bin.npz", w0=weights, b0=biases)
    (path / "bin.tflite").write_bytes(dense_softmax_tflite([weights], [biases]))
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
