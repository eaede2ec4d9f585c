"""Score readings on the gateway: rules first, then the family's network; flags name the fault.

Every reading gets a verdict when it arrives; the next reading can change it, and the LOOK_AHEAD-th reading after
it gives the final verdict (REVISE_AT): a spike is a value that returns, a noise burst one whose neighbours scatter
too, an emptied bin one that stays. A noise burst is a run: readings between two final noise-burst verdicts of a
series (at most BURST_GAP of them) are judged part of the burst once the second one is final, which is up to
LOOK_AHEAD + BURST_GAP readings after them. `take_revisions()` hands out the earlier
readings whose verdict (flags) changed (same device, quantity, time and value; new score and flags), to be stored and
sent again: the cloud's series stores overwrite a point of the same time. Readings are never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from edge.anomaly.bundle import Bundle, BundleError, FamilyModel, load_bundle, shipped_bundle_path
from edge.anomaly.features import (
    FAMILY_OF_QUANTITY,
    LOOK_AHEAD,
    MIN_HISTORY,
    NO_NEXT,
    REVISE_AT,
    ZERO_IS_NO_VALUE,
    LateContext,
    StreamingFeatures,
    late_features,
)
from edge.anomaly.flags import FAULT_FLAG_PREFIX, SENSOR_FAULT, fault_flag
from edge.anomaly.rules import OUT_OF_RANGE, rule_fault
from edge.anomaly.runtime import ModelRunner
from flurfunk.contracts import Quantity, Reading

RULES_ONLY = "rules-only"
NOISE_BURST = fault_flag("noise_burst")
# A noise burst is a run of readings; the noise leaves some of them near the truth, and those look calm. Readings
# between two final noise-burst verdicts of a series, at most BURST_GAP of them, belong to the burst.
BURST_GAP = 2
MAX_REVISIONS = 100_000  # revisions nobody takes are forgotten oldest first
NO_NEXT_LIST = list(NO_NEXT)


@dataclass
class _Pending:
    """A recent scored reading of a series, kept until LOOK_AHEAD readings after it have given its final verdict."""

    reading: Reading  # as handed out (with its newest verdict)
    instant: list[float]  # raw instant features
    context: LateContext  # what its late features need
    where: tuple[int, int] | None = None  # uplink and position in the current call; None once handed out
    following: list[float] = field(default_factory=list)  # values heard after it


class AnomalyScorer:
    """Keeps each device's recent readings and scores new ones; `model_version` is what the gateway reports."""

    def __init__(self, bundle: Bundle | None = None, backend: str = "auto", max_series: int = 50_000) -> None:
        self.bundle = bundle
        self._features = StreamingFeatures(max_series)
        self._max_series = max_series
        self._models: dict[str, tuple[FamilyModel, ModelRunner]] = {}
        self._pending: dict[tuple[str, Quantity], list[_Pending]] = {}
        # per series, the newest readings with a final verdict since its last final noise-burst verdict (inclusive)
        self._settled: dict[tuple[str, Quantity], list[_Pending]] = {}
        self._revisions: list[Reading] = []
        self._newest: dict[tuple[str, Quantity], datetime] = {}  # newest reading time per series, recency order
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
                # A reading not newer than the series' newest (a retry, a replay, a clock gone back) gets the rules'
                # verdict only and stays out of the window: the series stays in time order, each reading once.
                newer = self._note_time(key, reading.time)
                history = len(window)  # before the push adds this reading
                computed = self._features.push(
                    reading.device,
                    reading.quantity,
                    reading.value,
                    family,
                    context_temperature if family == "soil" else None,
                    compute=model and fault is None and newer,
                    remember=newer,
                )
                if fault is not None:
                    flags = [SENSOR_FAULT, OUT_OF_RANGE if fault == OUT_OF_RANGE else fault_flag(fault)]
                    results[u][p] = _with_verdict(reading, 1.0, flags)
                if not newer:
                    continue
                if reading.value == 0.0 and family in ZERO_IS_NO_VALUE:
                    continue  # no value: the reading before waits for the next real one to get its late verdict
                waiting = self._pending.pop(key, [])
                if model:
                    for earlier in waiting:
                        earlier.following.append(reading.value)
                        if len(earlier.following) not in REVISE_AT:
                            continue
                        late = late_features(earlier.context, earlier.following, family)
                        late_jobs.append((earlier, family, len(rows.setdefault(family, []))))
                        rows[family].append(earlier.instant + late)
                waiting = [earlier for earlier in waiting if len(earlier.following) < LOOK_AHEAD]
                if computed is not None:
                    pending = _Pending(results[u][p], computed[0], computed[1], (u, p))
                    created.append(pending)
                    if history >= MIN_HISTORY:  # earlier, the rules' verdict stands until the readings after it come
                        instant_jobs.append((u, p, family, len(rows.setdefault(family, [])), pending))
                        rows[family].append(computed[0] + NO_NEXT_LIST)
                    waiting.append(pending)
                if waiting:
                    self._remember(key, waiting)
        probabilities = {
            family: self._models[family][1].probabilities(self._models[family][0].standardise(np.array(batch)))
            for family, batch in rows.items()
        }
        for u, p, family, row, pending in instant_jobs:
            model = self._models[family][0]
            pending.reading = results[u][p] = _verdict(pending.reading, model, probabilities[family][row], 0)
        for pending, family, row in late_jobs:
            model = self._models[family][0]
            score, flags = _judge(model, probabilities[family][row], len(pending.following))
            if _fault_flags(pending.reading.flags) != flags:  # else the score given on arrival stands
                self._hand_out(pending, _with_verdict(pending.reading, score, flags), results)
            if len(pending.following) == LOOK_AHEAD:
                self._settle(pending, model.thresholds[LOOK_AHEAD], results)
        for pending in created:
            pending.where = None
        return results

    def _hand_out(self, pending: _Pending, revised: Reading, results: list[list[Reading]]) -> None:
        """`revised` as the reading's verdict: in this call's results if it is one of them, else as a revision."""
        if pending.where is None:
            self._revisions.append(revised)
            if len(self._revisions) > MAX_REVISIONS:
                del self._revisions[: len(self._revisions) - MAX_REVISIONS]
        else:  # the reading is in this same call: hand out the late verdict straight away
            results[pending.where[0]][pending.where[1]] = revised
        pending.reading = revised

    def _settle(self, pending: _Pending, threshold: float, results: list[list[Reading]]) -> None:
        """Note the final verdict of `pending`; a final noise burst closes the gap since the series' previous one."""
        key = (pending.reading.device, pending.reading.quantity)
        settled = self._settled.pop(key, [])
        if NOISE_BURST in pending.reading.flags:
            if settled and len(settled) <= BURST_GAP + 1 and NOISE_BURST in settled[0].reading.flags:
                for between in settled[1:]:
                    score = max(between.reading.anomaly_score, threshold)
                    self._hand_out(between, _with_verdict(between.reading, score, [SENSOR_FAULT, NOISE_BURST]), results)
            settled = [pending]
        elif settled and len(settled) <= BURST_GAP:
            settled.append(pending)
        else:
            return  # no noise burst within reach before it: nothing to remember
        self._settled[key] = settled
        if len(self._settled) > self._max_series:
            del self._settled[next(iter(self._settled))]

    def _note_time(self, key: tuple[str, Quantity], time: datetime) -> bool:
        """Whether `time` is newer than the series' newest reading so far (then it is the newest)."""
        newest = self._newest.pop(key, None)
        if newest is not None and time <= newest:
            self._newest[key] = newest
            return False
        self._newest[key] = time
        if len(self._newest) > self._max_series:
            del self._newest[next(iter(self._newest))]
        return True

    def _remember(self, key: tuple[str, Quantity], pending: list[_Pending]) -> None:
        self._pending[key] = pending
        if len(self._pending) > self._max_series:
            del self._pending[next(iter(self._pending))]


def _judge(model: FamilyModel, probabilities: np.ndarray, known_after: int) -> tuple[float, list[str]]:
    """The network's score and, at or above the threshold for what is known after the reading (0 to LOOK_AHEAD
    readings), the flags of the likeliest fault."""
    score = float(min(max(1.0 - float(probabilities[0]), 0.0), 1.0))
    if score < model.thresholds[known_after]:
        return score, []
    return score, [SENSOR_FAULT, fault_flag(model.classes[1 + int(np.argmax(probabilities[1:]))])]


def _fault_flags(flags: tuple[str, ...]) -> list[str]:
    """The flags a verdict sets, in the order `_judge` gives them."""
    faults = [flag for flag in flags if flag.startswith(FAULT_FLAG_PREFIX)]
    return [SENSOR_FAULT, *faults] if SENSOR_FAULT in flags else faults


def _verdict(reading: Reading, model: FamilyModel, probabilities: np.ndarray, known_after: int) -> Reading:
    """`reading` with the network's verdict."""
    return _with_verdict(reading, *_judge(model, probabilities, known_after))


def _with_verdict(reading: Reading, score: float, flags: list[str]) -> Reading:
    # from_trusted skips pydantic's machinery (a hot path): the score is finite in [0, 1], the flags valid names.
    own = {flag for flag in reading.flags if flag != SENSOR_FAULT and not flag.startswith(FAULT_FLAG_PREFIX)}
    return Reading.from_trusted(
        reading.device,
        reading.asset,
        reading.quantity,
        reading.value,
        reading.time,
        round(score, 6),
        tuple(sorted(own.union(flags))),
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
