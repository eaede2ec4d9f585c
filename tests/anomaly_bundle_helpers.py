"""Small edge anomaly bundles for the bundle-shipping tests, written in the bundle format the code in this tree
reads (numpy weights and the same network as .tflite), so the tests do not depend on which trained bundle is
shipped today."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cloud.anomaly.tflite import dense_softmax_tflite
from edge.anomaly.bundle import write_manifest
from edge.anomaly.features import FAMILY_OF_QUANTITY, N_FEATURES
from flurfunk.bundle_archive import pack_bundle

HIDDEN = 8


def write_test_bundle(directory: Path, version: str, seed: int = 0) -> Path:
    """A bundle folder with one small random network per sensor family; a different seed gives other weights."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    families = {}
    for quantity, family in FAMILY_OF_QUANTITY.items():
        classes = ["clean", "spike"]
        weights = [
            rng.normal(0, 0.1, (N_FEATURES, HIDDEN)).astype(np.float32),
            rng.normal(0, 0.1, (HIDDEN, len(classes))).astype(np.float32),
        ]
        # clean by a wide margin: the tests are about shipping bundles, not about scores
        biases = [np.zeros(HIDDEN, np.float32), np.array([4.0, 0.0], np.float32)]
        np.savez(directory / f"{family}.npz", w0=weights[0], b0=biases[0], w1=weights[1], b1=biases[1])
        (directory / f"{family}.tflite").write_bytes(dense_softmax_tflite(weights, biases))
        families[family] = {
            "quantity": quantity.value,
            "classes": classes,
            "threshold": 0.99,
            "instant_threshold": 0.99,
            "feature_mean": [0.0] * N_FEATURES,
            "feature_scale": [1.0] * N_FEATURES,
            "weights": f"{family}.npz",
            "tflite": f"{family}.tflite",
        }
    write_manifest(directory, version, families, {"trained_on": "tests"})
    return directory


def packed_test_bundle(directory: Path, version: str, seed: int = 0) -> bytes:
    return pack_bundle(write_test_bundle(directory, version, seed))
