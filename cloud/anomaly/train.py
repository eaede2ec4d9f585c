"""Train the per-family networks with scikit-learn, export the bundle (.tflite + numpy weights + manifest) and
measure it on held-out data through the gateway's own scorer."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cloud.anomaly.data import CLEAN, TILTED, Record, featurise, simulate_records, store_records
from cloud.anomaly.tflite import dense_softmax_tflite
from edge.anomaly.bundle import load_bundle, write_manifest
from edge.anomaly.features import FEATURE_NAMES, LOOK_AHEAD, transform
from edge.anomaly.flags import SENSOR_FAULT, fault_types_in
from edge.anomaly.scorer import AnomalyScorer
from edge.sim.faults import FAMILY_FAULTS, FAMILY_QUANTITY
from flurfunk.contracts import Quantity, Reading

if TYPE_CHECKING:
    from cloud.settings import CloudSettings

log = logging.getLogger(__name__)

HIDDEN_LAYERS = (48, 24)
MAX_EPOCHS = 100
# Shares of clean validation readings a network may flag (final verdict, the earlier ones); rules add a little more.
CLEAN_BUDGET = 0.004
INSTANT_CLEAN_BUDGET = 0.01
# Training districts: one per season, each its own seed, so no season's weather is the only one the model knows.
SEASON_STARTS = ((1, 12), (4, 6), (6, 1), (10, 19))
HELD_OUT_START = datetime(2026, 8, 3, tzinfo=UTC)
HELD_OUT_SEED_OFFSET = 1000
MIN_CLASS_ROWS = 20
MAX_CLEAN_ROWS = 20_000
# Clean rows with a step or a deviation beyond ~3 noise scales (signed log of 3) are kept whole in training.
UNUSUAL_COLUMNS = [
    FEATURE_NAMES.index(name)
    for name in ("jump_z", "residual_24_z", "burst_ratio", "next_jump_z", "next_residual_z", "next_2_step_z")
]
UNUSUAL_AT = float(np.log1p(3.0))


@dataclass(frozen=True)
class TrainOptions:
    seed: int = 1
    days: int = 28  # spread over the four training seasons
    test_days: int = 7
    scale: float = 0.3
    version: str | None = None
    # Faults in the training districts come every 36 h on average (the held-out district keeps 60 h): more distinct
    # examples of each fault for the same simulated days; thresholds still come from clean validation readings.
    mean_gap_h: float = 36.0


@dataclass(frozen=True)
class Evaluation:
    """Held-out results: per fault type precision, recall, F1 and support; the share of clean readings flagged."""

    per_type: dict[str, dict[str, float]]
    clean_flag_rate: float
    clean_readings: int
    confusion: dict[str, dict[str, int]]

    @property
    def f1_min(self) -> float:
        return min(metrics["f1"] for metrics in self.per_type.values()) if self.per_type else 0.0


def training_records(options: TrainOptions) -> list[Record]:
    """The simulated training districts: `days` split over the seasons, seeds seed .. seed + 3."""
    per_season = max(2, options.days // len(SEASON_STARTS))
    records: list[Record] = []
    for i, (month, day) in enumerate(SEASON_STARTS):
        start = datetime(2026, month, day, tzinfo=UTC)
        records.extend(
            simulate_records(options.seed + i, per_season, options.scale, start=start, mean_gap_h=options.mean_gap_h)
        )
    return records


def train_bundle(records: Sequence[Record], out: Path, version: str, seed: int) -> dict[str, object]:
    """Fit one network per family on `records`, write the bundle to `out`; the manifest as written."""
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    out.mkdir(parents=True, exist_ok=True)
    families: dict[str, object] = {}
    counts: dict[str, dict[str, int]] = {}
    rng = np.random.default_rng([seed, 0x7A1])
    for family, data in sorted(featurise(records).items()):
        features, labels, devices, known_after = data.arrays()
        features = transform(features)  # as FamilyModel.standardise does with raw rows
        # Faults the rules decide alone (the firmware's zero) never reach the network: no class for them.
        seen = Counter(labels.tolist())
        classes = (CLEAN, *(fault for fault in FAMILY_FAULTS[family] if seen[fault] >= MIN_CLASS_ROWS))
        if len(classes) == 1:  # a network that knows only "clean" would flag nothing: the rules judge this family
            log.warning("%s: no fault type with %d examples: no network, the rules judge it", family, MIN_CLASS_ROWS)
            continue
        keep = np.isin(labels, classes)
        features, labels, devices, known_after = features[keep], labels[keep], devices[keep], known_after[keep]
        index = {name: i for i, name in enumerate(classes)}
        target = np.array([index[label] for label in labels])
        counts[family] = dict(Counter(labels[known_after == 0].tolist()))
        unique_devices = np.unique(devices)
        validation_devices = set(rng.choice(unique_devices, size=max(1, len(unique_devices) // 5), replace=False))
        is_validation = np.array([device in validation_devices for device in devices])
        mean = features[~is_validation].mean(axis=0)
        scale = features[~is_validation].std(axis=0)
        scale = np.where(scale > 1e-6, scale, 1.0)
        standardised = (features - mean) / scale
        network = MLPClassifier(
            hidden_layer_sizes=HIDDEN_LAYERS, max_iter=MAX_EPOCHS, alpha=1e-4, batch_size=256, random_state=seed
        )
        train_rows = np.flatnonzero(~is_validation)
        clean_train = train_rows[target[train_rows] == 0]
        if clean_train.size > MAX_CLEAN_ROWS:  # calm clean rows are alike; more of them only slow the fit down
            # Unusual clean rows (an emptied bin, rain, a front) are where faults are confused with life: all kept.
            unusual = np.any(np.abs(features[clean_train][:, UNUSUAL_COLUMNS]) > UNUSUAL_AT, axis=1)
            calm = clean_train[~unusual]
            keep_calm = max(MAX_CLEAN_ROWS - int(unusual.sum()), MAX_CLEAN_ROWS // 2)
            if calm.size > keep_calm:
                dropped = rng.choice(calm, size=calm.size - keep_calm, replace=False)
                train_rows = np.setdiff1d(train_rows, dropped)
        # One BLAS thread: on a shared machine more threads wait for each other (a 2-minute fit took 20 minutes).
        with threadpool_limits(1):
            network.fit(*_balanced(standardised[train_rows], target[train_rows], rng))
        log.info("%s: fitted on %d rows, classes %s", family, train_rows.size, ", ".join(classes))
        if list(network.classes_) != list(range(len(classes))):
            raise ValueError(f"{family}: the training data lacks classes; train on more days or a larger scale")
        weights, biases = softmax_layers(network)
        clean_validation = is_validation & (target == 0)
        thresholds = []  # final, on arrival, one reading later
        for known, budget in ((LOOK_AHEAD, CLEAN_BUDGET), (0, INSTANT_CLEAN_BUDGET), (1, INSTANT_CLEAN_BUDGET)):
            rows = clean_validation & (known_after == known)
            clean_scores = 1.0 - network.predict_proba(standardised[rows])[:, 0]
            quantile = np.quantile(clean_scores, 1.0 - budget) if clean_scores.size else 0.5
            thresholds.append(float(np.clip(quantile, 0.05, 0.99)))
        np.savez(out / f"{family}.npz", **{f"w{i}": w for i, w in enumerate(weights)},
                 **{f"b{i}": b for i, b in enumerate(biases)})  # fmt: skip
        (out / f"{family}.tflite").write_bytes(dense_softmax_tflite(weights, biases))
        families[family] = {
            "quantity": FAMILY_QUANTITY[family].value,
            "classes": list(classes),
            "threshold": round(thresholds[0], 6),
            "instant_threshold": round(thresholds[1], 6),
            "next_threshold": round(thresholds[2], 6),
            "feature_mean": mean.tolist(),
            "feature_scale": scale.tolist(),
            "weights": f"{family}.npz",
            "tflite": f"{family}.tflite",
        }
    metadata = {"seed": seed, "training_readings": counts, "hidden_layers": list(HIDDEN_LAYERS)}
    return write_manifest(out, version, families, metadata)


def softmax_layers(network: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A fitted MLPClassifier's layers as float32 with a softmax output over every class, as the gateway runs them:
    with two classes scikit-learn has one logistic output z, and softmax over (0, z) gives the same probabilities."""
    weights = [w.astype(np.float32) for w in network.coefs_]
    biases = [b.astype(np.float32) for b in network.intercepts_]
    if weights[-1].shape[1] == 1:
        weights[-1] = np.hstack([np.zeros_like(weights[-1]), weights[-1]])
        biases[-1] = np.concatenate([np.zeros_like(biases[-1]), biases[-1]])
    return weights, biases


def _balanced(features: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Faults repeated until each class has a fifth of the clean rows: rare faults (spikes) weigh as much as common."""
    clean_rows = int(np.count_nonzero(target == 0))
    rows = [np.arange(target.size)]
    for label in np.unique(target):
        members = np.flatnonzero(target == label)
        want = clean_rows // 5
        if label != 0 and 0 < members.size < want:
            rows.append(rng.choice(members, size=want - members.size, replace=True))
    chosen = np.concatenate(rows)
    return features[chosen], target[chosen]


def readings_of(record: Record) -> list[Reading]:
    """The readings the gateway would score for one record: the family quantity and its context."""
    quantity = FAMILY_QUANTITY[record.family]
    time = datetime.fromtimestamp(record.time_s, UTC)
    wanted = [quantity]
    if record.family == "soil" and Quantity.SOIL_TEMPERATURE_C in record.values:
        wanted.append(Quantity.SOIL_TEMPERATURE_C)
    if record.family == "bin" and Quantity.TILT in record.values:
        wanted.append(Quantity.TILT)
    return [
        Reading(device=record.dev_eui, asset=record.asset, quantity=q, value=record.values[q], time=time)
        for q in wanted
    ]


def predicted_fault(reading: Reading) -> str:
    """The fault type the flags name ("clean" when none; "out_of_range" from the range rule)."""
    if SENSOR_FAULT not in reading.flags:
        return CLEAN
    types = fault_types_in(reading.flags)
    return types[0] if types else "out_of_range"


def evaluate(
    scorer: AnomalyScorer, records: Sequence[Record], late: bool = True
) -> tuple[Evaluation, list[tuple[Record, Reading]]]:
    """Run `records` through the scorer in time order; metrics per fault type over all families, on the final
    verdicts (`late`: revised once the next reading is known) or on the verdicts given on arrival."""
    verdicts: dict[tuple[str, float], Reading] = {}
    ordered = sorted(records, key=lambda r: (r.time_s, r.dev_eui))
    for record in ordered:
        quantity = FAMILY_QUANTITY[record.family]
        verdicts[(record.dev_eui, record.time_s)] = next(
            r for r in scorer.score(readings_of(record)) if r.quantity is quantity
        )
        for revised in scorer.take_revisions():
            if late and revised.quantity is quantity:
                verdicts[(revised.device, revised.time.timestamp())] = revised
    scored = [(record, verdicts[(record.dev_eui, record.time_s)]) for record in ordered if record.label != TILTED]
    truth = [record.label for record, _ in scored]
    predicted = [predicted_fault(reading) for _, reading in scored]
    confusion: dict[str, Counter[str]] = {}
    for t, p in zip(truth, predicted, strict=True):
        confusion.setdefault(t, Counter())[p] += 1
    per_type: dict[str, dict[str, float]] = {}
    for fault in sorted({t for t in truth if t != CLEAN}):
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == fault and p == fault)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != fault and p == fault)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == fault and p != fault)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_type[fault] = {"precision": precision, "recall": recall, "f1": f1, "support": float(tp + fn)}
    clean = [p for t, p in zip(truth, predicted, strict=True) if t == CLEAN]
    clean_rate = sum(1 for p in clean if p != CLEAN) / len(clean) if clean else 0.0
    evaluation = Evaluation(
        per_type=per_type,
        clean_flag_rate=clean_rate,
        clean_readings=len(clean),
        confusion={t: dict(c) for t, c in sorted(confusion.items())},
    )
    return evaluation, scored


def history_records(settings: CloudSettings, start: datetime, end: datetime, seed: int) -> list[Record]:
    """The towns' own history for training: every known device's family quantity in [start, end) from the cloud's
    series store (InfluxDB or SQLite, as `settings.series_url` names it), inventory from its operational database,
    with faults injected as in the simulated districts (the history itself is taken as clean)."""
    from cloud.store import open_series_store
    from cloud.store.migrations import SchemaNotAtHeadError, check_at_head
    from cloud.store.operational import OperationalStore

    if not start < end:
        raise ValueError(f"history: start {start.isoformat()} must be before end {end.isoformat()}")
    store = OperationalStore.from_url(settings.database_url)
    try:
        check_at_head(store.engine)  # the inventory is read from it: a database the cloud never migrated has none
    except SchemaNotAtHeadError as error:
        store.engine.dispose()
        raise ValueError(f"history: {error}") from None
    series = open_series_store(settings.series_url, token=settings.series_token)
    try:
        records = store_records(series, store.assets(), store.devices(), start, end, seed, TrainOptions.mean_gap_h)
    finally:
        series.close()
        store.engine.dispose()
    if not records:
        raise ValueError(f"history: no readings of a known sensor family between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
    return records


def train_and_report(
    options: TrainOptions, out: Path, plots: bool = True, history: Sequence[Record] = ()
) -> Evaluation:
    """Simulate, train (with the towns' `history` added, if given), export to `out`, evaluate on a held-out
    district (other seed, other season) and write report.json (and PNG plots) next to the bundle."""
    version = options.version or f"sim-s{options.seed}-d{options.days}"
    training = [*training_records(options), *history]
    held_out = simulate_records(
        options.seed + HELD_OUT_SEED_OFFSET, options.test_days, options.scale, start=HELD_OUT_START
    )
    log.info("simulated %d training and %d held-out uplinks", len(training), len(held_out))
    train_bundle(training, out, version, options.seed)
    bundle = load_bundle(out)
    evaluation, scored = evaluate(AnomalyScorer(bundle, backend="numpy"), held_out)
    on_arrival, _ = evaluate(AnomalyScorer(bundle, backend="numpy"), held_out, late=False)
    report = {
        "version": version,
        "options": options.__dict__,
        "training": {
            "seeds": [options.seed + i for i in range(len(SEASON_STARTS))],
            "starts": [f"2026-{m:02d}-{d:02d}" for m, d in SEASON_STARTS],
        },
        "history": {
            "readings": len(history),
            "families": dict(sorted(Counter(record.family for record in history).items())),
            "faults_injected": sum(record.label != CLEAN for record in history),
        },
        "held_out": {
            "seed": options.seed + HELD_OUT_SEED_OFFSET,
            "days": options.test_days,
            "start": HELD_OUT_START.date().isoformat(),
        },
        "per_type": evaluation.per_type,
        "f1_min": evaluation.f1_min,
        "clean_flag_rate": evaluation.clean_flag_rate,
        "clean_readings": evaluation.clean_readings,
        "confusion": evaluation.confusion,
        "on_arrival": {
            "per_type": on_arrival.per_type,
            "f1_min": on_arrival.f1_min,
            "clean_flag_rate": on_arrival.clean_flag_rate,
        },
        "model_bytes": sum(p.stat().st_size for p in out.glob("*.tflite")),
    }
    reports = out / "report"
    reports.mkdir(exist_ok=True)
    (reports / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if plots:
        from cloud.anomaly.plots import write_plots

        write_plots(evaluation, scored, reports)
    return evaluation
