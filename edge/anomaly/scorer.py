"""Score readings on the gateway: rules first, then the family's network; flags name the fault.

Every reading gets a verdict when it arrives. One reading later the verdict can change: a spike is a value that
returns, a noise burst one that goes on, an emptied bin one that stays. `take_revisions()` hands out the earlier
readings whose verdict changed (same device, quantity, time and value; new score and flags), to be stored and sent
again: the cloud's series stores overwrite a point of the same time. Readings are never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.anomaly.bundle import Bundle, BundleError, FamilyModel, load_bundle, shipped_bundle_path
from edge.anomaly.features import FAMILY_OF_QUANTITY, NO_NEXT, SHORT, StreamingFeatures, late_features
from edge.anomaly.flags import SENSOR_FAULT, fault_flag
from edge.anomaly.rules import OUT_OF_RANGE, rule_fault
from edge.anomaly.runtime import ModelRunner
from flurfunk.contracts import Quantity, Reading

RULES_ONLY = "rules-only"
MAX_REVISIONS = 100_000  # revisions nobody takes are forgotten oldest first


@dataclass
class _Pending:
    """The newest scored reading of a series, kept until the next one gives its late verdict."""

    reading: Reading  # as handed out (with its instant verdict)
    instant: list[float] | None  # instant features; None when a rule decided (rules are final)
    tail: list[float]  # the SHORT values before it
    where: tuple[int, int] | None = None  # uplink and position in the current call; None once handed out


class AnomalyScorer:
    """Keeps each device's recent readings and scores new ones; `model_version` is what the gateway reports."""

    def __init__(self, bundle: Bundle | None = None, backend: str = "auto", max_series: int = 50_000) -> None:
        self.bundle = bundle
        self._features = StreamingFeatures(max_series)
        self._max_series = max_series
        self._models: dict[str, tuple[FamilyModel, ModelRunner]] = {}
        self._pending: dict[tuple[str, Quantity], _Pending] = {}
        self._revisions: list[Reading] = []
        if bundle is not None:
            for name, model in bundle.families.items():
                self._models[name] = (model, model.runner(backend))

    @property
    def model_version(self) -> str:
        return self.bundle.version if self.bundle is not None else RULES_ONLY

    def score(self, readings: Sequence[Reading]) -> list[Reading]:
        """The readings of one uplink, scored and flagged (same order, nothing dropped)."""
        return self.score_many([readings])[0]

    def take_revisions(self) -> list[Reading]:
        """Readings handed out earlier whose verdict the next reading changed, oldest first (then forgotten)."""
        revisions, self._revisions = self._revisions, []
        return revisions

    def score_many(self, uplinks: Sequence[Sequence[Reading]]) -> list[list[Reading]]:
        """The readings of several uplinks (in arrival order), scored with one model call per family."""
        results = [list(readings) for readings in uplinks]
        rows: dict[str, list[list[float]]] = {}
        instant_jobs: list[tuple[int, int, str, int, _Pending]] = []  # uplink, position, family, row, pending
        late_jobs: list[tuple[_Pending, str, int]] = []
        created: list[_Pending] = []
        for u, readings in enumerate(uplinks):
            context_temperature: float | None = None
            tilted = False
            for reading in readings:
                if reading.quantity is Quantity.SOIL_TEMPERATURE_C:
                    context_temperature = reading.value
                elif reading.quantity is Quantity.TILT and reading.value >= 0.5:
                    tilted = True
            for p, reading in enumerate(readings):
                family = FAMILY_OF_QUANTITY.get(reading.quantity)
                if family is None or (tilted and family == "bin"):
                    continue  # a knocked-over bin measures the street, not a fault: kept out of the window
                key = (reading.device, reading.quantity)
                window = self._features.window(reading.device, reading.quantity)
                fault = rule_fault(family, window, reading.value)
                model = family in self._models
                instant = self._features.push(
                    reading.device,
                    reading.quantity,
                    reading.value,
                    family,
                    context_temperature if family == "soil" else None,
                    compute=model and fault is None,
                )
                earlier = self._pending.pop(key, None)
                if earlier is not None and earlier.instant is not None and model:
                    late = late_features(earlier.tail, earlier.reading.value, reading.value, family)
                    late_jobs.append((earlier, family, len(rows.setdefault(family, []))))
                    rows[family].append(earlier.instant + late)
                pending = _Pending(reading, instant, list(window[-SHORT:]), (u, p))
                created.append(pending)
                if fault is not None:
                    flags = [SENSOR_FAULT, OUT_OF_RANGE if fault == OUT_OF_RANGE else fault_flag(fault)]
                    pending.reading = results[u][p] = _with_verdict(reading, 1.0, flags)
                elif instant is not None:
                    instant_jobs.append((u, p, family, len(rows.setdefault(family, [])), pending))
                    rows[family].append(instant + list(NO_NEXT))
                self._remember(key, pending)
        probabilities = {
            family: self._models[family][1].probabilities(self._models[family][0].standardise(np.array(batch)))
            for family, batch in rows.items()
        }
        for u, p, family, row, pending in instant_jobs:
            model = self._models[family][0]
            pending.reading = results[u][p] = _verdict(pending.reading, model, probabilities[family][row], False)
        for pending, family, row in late_jobs:
            model = self._models[family][0]
            revised = _verdict(pending.reading, model, probabilities[family][row], True)
            if revised.flags == pending.reading.flags and revised.anomaly_score == pending.reading.anomaly_score:
                continue
            if pending.where is None:
                self._revisions.append(revised)
                if len(self._revisions) > MAX_REVISIONS:
                    del self._revisions[: len(self._revisions) - MAX_REVISIONS]
            else:  # the reading is in this same call: hand out the late verdict straight away
                results[pending.where[0]][pending.where[1]] = revised
            pending.reading = revised
        for pending in created:
            pending.where = None
        return results

    def _remember(self, key: tuple[str, Quantity], pending: _Pending) -> None:
        self._pending[key] = pending
        if len(self._pending) > self._max_series:
            del self._pending[next(iter(self._pending))]


def _verdict(reading: Reading, model: FamilyModel, probabilities: np.ndarray, late: bool) -> Reading:
    """`reading` with the network's score and, at or above the threshold, the flags of the likeliest fault."""
    score = float(min(max(1.0 - float(probabilities[0]), 0.0), 1.0))
    threshold = model.threshold if late else model.instant_threshold
    flags: list[str] = []
    if score >= threshold:
        flags = [SENSOR_FAULT, fault_flag(model.classes[1 + int(np.argmax(probabilities[1:]))])]
    return _with_verdict(reading, score, flags)


def _with_verdict(reading: Reading, score: float, flags: list[str]) -> Reading:
    # model_copy skips validation: the score is finite in [0, 1] and the flags are valid names, sorted here.
    own = {flag for flag in reading.flags if flag != SENSOR_FAULT and not flag.startswith("fault_")}
    return reading.model_copy(update={"anomaly_score": round(score, 6), "flags": tuple(sorted(own | set(flags)))})


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
