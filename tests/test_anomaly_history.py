"""Training on the towns' own history: readings read back from a real influxd (and the operational database the
cloud keeps its inventory in), faults injected, and a bundle trained on them that the gateway loads."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cloud.anomaly.data import CLEAN, simulate_records
from cloud.anomaly.train import history_records, softmax_layers, train_bundle
from cloud.settings import CloudSettings
from cloud.store.influx_v1 import InfluxV1SeriesStore
from cloud.store.migrations import upgrade_to_head
from cloud.store.operational import OperationalStore
from edge.anomaly import AnomalyScorer, load_bundle
from edge.anomaly.runtime import NumpyRunner
from flurfunk.contracts import Asset, AssetKind, Device, Quantity, Reading

START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 6
ASSETS = [
    Asset(id="bin-1", kind=AssetKind.BIN, municipality="Birstein", village="Birstein", latitude=50.35,
          longitude=9.30, capacity_l=240, waste_type="residual", sensor_to_bottom_m=1.0, sensor_to_full_m=0.1),
    Asset(id="tree-1", kind=AssetKind.TREE, municipality="Birstein", village="Birstein", latitude=50.35,
          longitude=9.31, planting_year=2024),
]  # fmt: skip
DEVICES = [  # a model the simulator does not use: the family comes from what it measures
    Device(dev_eui="a84041000181c001", model_id="dragino/ldds75", asset="bin-1", report_interval_s=3600),
    Device(dev_eui="a84041000181c003", model_id="dragino/lse01", asset="tree-1", report_interval_s=3600),
]


def _history() -> list[Reading]:
    readings = []
    for hour in range(DAYS * 24):
        when = START + timedelta(hours=hour)
        distance = 0.95 - 0.8 * ((hour % 120) / 120)  # fills over five days, then emptied
        vwc = 0.30 - 0.01 * (hour % 72) / 24 + 0.002 * math.sin(hour)
        readings += [
            Reading(device=DEVICES[0].dev_eui, asset="bin-1", quantity=Quantity.DISTANCE_M, value=distance, time=when),
            Reading(device=DEVICES[1].dev_eui, asset="tree-1", quantity=Quantity.SOIL_VWC, value=vwc, time=when),
            Reading(device=DEVICES[1].dev_eui, asset="tree-1", quantity=Quantity.SOIL_TEMPERATURE_C, value=15.0,
                    time=when),
        ]  # fmt: skip
    return readings


def test_training_reads_the_towns_history_from_influxdb_and_the_bundle_it_makes_loads(
    influxd: object, tmp_path: Path
) -> None:
    database = f"history_{uuid.uuid4().hex[:8]}"
    with InfluxV1SeriesStore(influxd.url, database) as series:  # type: ignore[attr-defined]
        series.write(_history())
    host_port = influxd.url.removeprefix("http://")  # type: ignore[attr-defined]
    settings = CloudSettings(
        database_url=f"sqlite:///{tmp_path / 'cloud.sqlite'}", series_url=f"influx-v1://{host_port}/{database}"
    )
    store = OperationalStore.from_url(settings.database_url)
    upgrade_to_head(store.engine)
    store.upsert_assets(ASSETS)
    store.upsert_devices(DEVICES)
    store.engine.dispose()

    records = history_records(settings, START, START + timedelta(days=DAYS), seed=3)

    assert Counter(record.family for record in records) == {"bin": DAYS * 24, "soil": DAYS * 24}
    soil = [record for record in records if record.family == "soil"]
    assert all(Quantity.SOIL_TEMPERATURE_C in record.values for record in soil)  # the context frozen soil needs
    faults = Counter(record.label for record in records if record.label != CLEAN)
    assert faults, "faults are injected into the history"
    # the history is the base: outside fault events a reading is the stored value (drift below its label threshold
    # is the only unlabelled change), a labelled one is the injected fault's value
    stored = {(r.asset, r.time.timestamp()): r.value for r in _history() if r.quantity is Quantity.DISTANCE_M}
    bins = [record for record in records if record.family == "bin"]
    clean = [r.values[Quantity.DISTANCE_M] == stored[(r.asset, r.time_s)] for r in bins if r.label == CLEAN]
    assert sum(clean) >= 0.8 * len(clean)
    faulty = [r.values[Quantity.DISTANCE_M] != stored[(r.asset, r.time_s)] for r in bins if r.label != CLEAN]
    assert faulty and sum(faulty) >= 0.8 * len(faulty)

    training = [*simulate_records(1, 2, 0.05, start=START), *records]
    train_bundle(training, tmp_path / "bundle", "history-test", seed=1)
    scorer = AnomalyScorer(load_bundle(tmp_path / "bundle"), backend="numpy")
    assert scorer.model_version == "history-test"


def test_a_history_range_without_readings_is_refused_by_name(influxd: object, tmp_path: Path) -> None:
    host_port = influxd.url.removeprefix("http://")  # type: ignore[attr-defined]
    settings = CloudSettings(
        database_url=f"sqlite:///{tmp_path / 'cloud.sqlite'}",
        series_url=f"influx-v1://{host_port}/empty_{uuid.uuid4().hex[:8]}",
    )
    store = OperationalStore.from_url(settings.database_url)
    upgrade_to_head(store.engine)
    store.upsert_assets(ASSETS)
    store.upsert_devices(DEVICES)
    store.engine.dispose()
    with pytest.raises(ValueError, match="no readings of a known sensor family between 2026-06-01 and 2026-06-07"):
        history_records(settings, START, START + timedelta(days=DAYS), seed=3)
    with pytest.raises(ValueError, match="must be before"):
        history_records(settings, START, START, seed=3)
    never_migrated = CloudSettings(database_url=f"sqlite:///{tmp_path / 'new.sqlite'}", series_url=settings.series_url)
    with pytest.raises(ValueError, match="run `flurfunk cloud migrate`"):
        history_records(never_migrated, START, START + timedelta(days=1), seed=3)


@pytest.mark.parametrize("classes", [2, 3])
def test_the_exported_layers_give_scikit_learns_probabilities(classes: int) -> None:
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(5)
    features = rng.normal(size=(300, 4))
    target = (features[:, 0] > 0).astype(int) + (classes == 3) * (features[:, 1] > 1).astype(int)
    network = MLPClassifier(hidden_layer_sizes=(6,), max_iter=300, random_state=1).fit(features, target)
    weights, biases = softmax_layers(network)
    assert weights[-1].shape[1] == biases[-1].shape[0] == classes
    assert np.allclose(NumpyRunner(weights, biases).probabilities(features), network.predict_proba(features),
                       atol=1e-5)  # fmt: skip


def test_a_device_is_scored_in_the_family_of_what_its_model_measures() -> None:
    from cloud.anomaly.data import device_family

    assert device_family("dragino/ldds75") == "bin"  # distance: a fill sensor
    assert device_family("sensecap/sensecaps2105-soll-moisture-temp-ec", AssetKind.BIN) == "soil"  # not the asset's
    assert device_family("decentlab/dl-smtp", AssetKind.TREE) is None  # soil temperature only: no family to score
    assert device_family("flurfunk/cbor-sensor", AssetKind.BIN) == "bin"  # a multi-sensor: by the asset it watches
    assert device_family("flurfunk/cbor-sensor", AssetKind.TREE) == "soil"
    assert device_family("flurfunk/cbor-sensor") is None  # several families, no asset to decide
    assert device_family("nobody/unknown") is None
