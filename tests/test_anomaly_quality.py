"""Quality of the shipped anomaly bundle on a small held-out simulated district: another seed and another season
than the training districts (full figures: bench/anomaly.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from cloud.anomaly.data import Record, featurise, simulate_records
from cloud.anomaly.train import Evaluation, evaluate
from edge.anomaly import AnomalyScorer, load_bundle, shipped_bundle_path
from edge.anomaly.runtime import LiteRtRunner, NumpyRunner, litert_interpreter_class


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return simulate_records(2024, 6, 0.15, start=datetime(2026, 9, 7, tzinfo=UTC))


@pytest.fixture(scope="module")
def held_out(records: list[Record]) -> Evaluation:
    path = shipped_bundle_path()
    assert path is not None, "no bundle shipped in edge/anomaly/models/"
    evaluation, _ = evaluate(AnomalyScorer(load_bundle(path), backend="numpy"), records)
    return evaluation


@pytest.mark.skipif(litert_interpreter_class() is None, reason="neither ai_edge_litert nor tflite_runtime importable")
def test_the_shipped_bundle_scores_the_same_with_litert_and_numpy(records: list[Record]) -> None:
    """On every row the held-out district gives each family's network (arrival and every revision)."""
    path = shipped_bundle_path()
    assert path is not None
    bundle = load_bundle(path)
    for family, data in featurise(records).items():
        model = bundle.families[family]
        rows = model.standardise(data.arrays()[0])
        assert len(rows) > 1000
        numpy_path = NumpyRunner(model.weights, model.biases).probabilities(rows)
        assert model.tflite_path is not None
        litert = LiteRtRunner(model.tflite_path).probabilities(rows)
        assert np.max(np.abs(litert - numpy_path)) <= 1e-5, family


def test_at_most_one_percent_of_clean_readings_is_flagged(held_out: Evaluation) -> None:
    assert held_out.clean_readings > 3000
    assert held_out.clean_flag_rate <= 0.01


@pytest.mark.parametrize("fault", ["dropout", "frozen_soil", "stuck_at", "lid_reflection", "drift", "spike"])
def test_faults_the_bundle_catches_reach_f1_09(held_out: Evaluation, fault: str) -> None:
    assert held_out.per_type[fault]["f1"] >= 0.9


@pytest.mark.xfail(strict=True, reason="issue 8 target not met yet: noise_burst ~0.89 (others >= 0.9)")
def test_every_fault_type_reaches_f1_09(held_out: Evaluation) -> None:
    assert set(held_out.per_type) >= {"spike", "stuck_at", "drift", "dropout", "noise_burst", "lid_reflection",
                                      "frozen_soil"}  # fmt: skip
    assert held_out.f1_min >= 0.9, {fault: round(m["f1"], 3) for fault, m in held_out.per_type.items()}
