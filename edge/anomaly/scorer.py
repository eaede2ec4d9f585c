"""Score one uplink's readings on the gateway: rules first, then the family's network; flags name the fault.

Readings are never dropped: a suspect one comes back with its anomaly score and flags ("sensor_fault" plus
"fault_<type>"), everything else with its score only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.anomaly.bundle import Bundle, BundleError, FamilyModel, load_bundle, shipped_bundle_path
from edge.anomaly.features import FAMILY_OF_QUANTITY, StreamingFeatures
from edge.anomaly.flags import SENSOR_FAULT, fault_flag
from edge.anomaly.rules import OUT_OF_RANGE, rule_fault
from edge.anomaly.runtime import ModelRunner
from flurfunk.contracts import Quantity, Reading

RULES_ONLY = "rules-only"


class AnomalyScorer:
    """Keeps each device's recent readings and scores new ones; `model_version` is what the gateway reports."""

    def __init__(self, bundle: Bundle | None = None, backend: str = "auto", max_series: int = 50_000) -> None:
        self.bundle = bundle
        self._features = StreamingFeatures(max_series)
        self._models: dict[str, tuple[FamilyModel, ModelRunner]] = {}
        if bundle is not None:
            for name, model in bundle.families.items():
                self._models[name] = (model, model.runner(backend))

    @property
    def model_version(self) -> str:
        return self.bundle.version if self.bundle is not None else RULES_ONLY

    def score(self, readings: Sequence[Reading]) -> list[Reading]:
        """The readings of one uplink, scored and flagged (same order, nothing dropped)."""
        context_temperature: float | None = None
        for reading in readings:
            if reading.quantity is Quantity.SOIL_TEMPERATURE_C:
                context_temperature = reading.value
        return [self._score_one(reading, context_temperature) for reading in readings]

    def _score_one(self, reading: Reading, context_temperature: float | None) -> Reading:
        family = FAMILY_OF_QUANTITY.get(reading.quantity)
        if family is None:
            return reading
        history = self._features.history(reading.device, reading.quantity)
        features = self._features.push(
            reading.device,
            reading.quantity,
            reading.value,
            family,
            context_temperature if family == "soil" else None,
            compute=family in self._models,
        )
        flags: list[str] = []
        score = 0.0
        fault = rule_fault(family, history, reading.value)
        if fault is not None:
            score = 1.0
            flags = [SENSOR_FAULT, OUT_OF_RANGE if fault == OUT_OF_RANGE else fault_flag(fault)]
        elif features is not None:
            model, runner = self._models[family]
            probabilities = runner.probabilities(model.standardise(features)[np.newaxis, :])[0]
            score = float(min(max(1.0 - float(probabilities[0]), 0.0), 1.0))
            if score >= model.threshold:
                flags = [SENSOR_FAULT, fault_flag(model.classes[1 + int(np.argmax(probabilities[1:]))])]
        if not flags and score == 0.0:
            return reading
        # model_copy skips validation: the score is finite in [0, 1] and the flags are valid names, sorted here.
        return reading.model_copy(
            update={"anomaly_score": round(score, 6), "flags": tuple(sorted(set(reading.flags) | set(flags)))}
        )


def default_scorer(bundle_path: str | None = None, backend: str = "auto") -> AnomalyScorer:
    """A scorer with the bundle at `bundle_path` (BundleError if it is broken), else the shipped bundle if any,
    else rules only."""
    if bundle_path is not None:
        return AnomalyScorer(load_bundle(bundle_path), backend)
    shipped = shipped_bundle_path()
    if shipped is None:
        return AnomalyScorer(None)
    try:
        return AnomalyScorer(load_bundle(shipped), backend)
    except (BundleError, ImportError):
        return AnomalyScorer(None)
