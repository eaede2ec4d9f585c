"""Quality of the shipped anomaly bundle on a small held-out simulated district: another seed and another season
than the training districts (full figures: bench/anomaly.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

import edge.anomaly.scorer as scorer_module
from cloud.anomaly.data import Record, featurise, simulate_records
from cloud.anomaly.train import Evaluation, evaluate, predicted_fault, readings_of
from edge.anomaly import AnomalyScorer, load_bundle, shipped_bundle_path
from edge.anomaly.runtime import LiteRtRunner, NumpyRunner, litert_interpreter_class
from flurfunk.contracts import Reading


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return simulate_records(2024, 6, 0.15, start=datetime(2026, 9, 7, tzinfo=UTC))


@pytest.fixture(scope="module")
def final_verdicts(records: list[Record]) -> tuple[Evaluation, list[tuple[Record, Reading]]]:
    path = shipped_bundle_path()
    assert path is not None, "no bundle shipped in edge/anomaly/models/"
    return evaluate(AnomalyScorer(load_bundle(path), backend="numpy"), records)


@pytest.fixture(scope="module")
def held_out(final_verdicts: tuple[Evaluation, list[tuple[Record, Reading]]]) -> Evaluation:
    return final_verdicts[0]


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


def test_every_fault_type_reaches_f1_09(held_out: Evaluation) -> None:
    assert set(held_out.per_type) >= {"spike", "stuck_at", "drift", "dropout", "noise_burst", "lid_reflection",
                                      "frozen_soil"}  # fmt: skip
    assert held_out.f1_min >= 0.9, {fault: round(m["f1"], 3) for fault, m in held_out.per_type.items()}


def test_readings_between_two_noise_burst_verdicts_join_the_burst(
    records: list[Record],
    final_verdicts: tuple[Evaluation, list[tuple[Record, Reading]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway's burst-run rule against the same scorer without it: only readings lying between two noise-burst
    verdicts of their series, at most BURST_GAP apart, change, each to noise_burst, and mostly truly in a burst."""
    path = shipped_bundle_path()
    assert path is not None
    gap = scorer_module.BURST_GAP
    assert gap >= 1
    monkeypatch.setattr(scorer_module, "BURST_GAP", 0)
    alone, alone_scored = evaluate(AnomalyScorer(load_bundle(path), backend="numpy"), records)
    joined, joined_scored = final_verdicts
    series: dict[tuple[str, str], list[int]] = {}
    for i, (record, _) in enumerate(alone_scored):
        series.setdefault((record.dev_eui, record.family), []).append(i)
    before = [predicted_fault(reading) for _, reading in alone_scored]
    after = [predicted_fault(reading) for _, reading in joined_scored]
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    assert len(changed) >= 5
    for indices in series.values():
        for n, i in enumerate(indices):
            if before[i] == after[i]:
                continue
            assert after[i] == "noise_burst"
            assert any(before[j] == "noise_burst" for j in indices[max(0, n - gap) : n]), i
            assert any(before[j] == "noise_burst" for j in indices[n + 1 : n + 1 + gap]), i
    assert sum(1 for i in changed if alone_scored[i][0].label == "noise_burst") > 0.7 * len(changed)
    assert joined.per_type["noise_burst"]["f1"] > alone.per_type["noise_burst"]["f1"]
    assert joined.clean_flag_rate <= 0.01


def test_scoring_64_uplinks_per_call_gives_the_final_verdicts_of_one_per_call(
    records: list[Record], final_verdicts: tuple[Evaluation, list[tuple[Record, Reading]]]
) -> None:
    """The pipeline scores what one call holds at once: late verdicts (a burst's gap too) come in the results or as
    revisions, and each reading ends with the flags that scoring one uplink per call gives."""
    path = shipped_bundle_path()
    assert path is not None
    scorer = AnomalyScorer(load_bundle(path), backend="numpy")
    ordered = sorted(records, key=lambda r: (r.time_s, r.dev_eui))
    verdicts: dict[tuple[str, str, float], Reading] = {}
    for start in range(0, len(ordered), 64):
        for readings in scorer.score_many([readings_of(record) for record in ordered[start : start + 64]]):
            for reading in readings:
                verdicts[(reading.device, reading.quantity.value, reading.time.timestamp())] = reading
        for revised in scorer.take_revisions():
            verdicts[(revised.device, revised.quantity.value, revised.time.timestamp())] = revised
    _, scored = final_verdicts
    for record, reading in scored:
        batched = verdicts[(record.dev_eui, reading.quantity.value, record.time_s)]
        assert batched.flags == reading.flags, record
