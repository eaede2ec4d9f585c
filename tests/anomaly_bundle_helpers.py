"""Small edge anomaly bundles for the bundle-shipping tests, written in the bundle format the code in this tree
reads (numpy weights, no .tflite), so the tests do not depend on which trained bundle is shipped today."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge.anomaly.bundle import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, MANIFEST
from edge.anomaly.features import FAMILY_OF_QUANTITY, FEATURE_NAMES, N_FEATURES
from flurfunk.bundle_archive import pack_bundle

HIDDEN = 8


def write_test_bundle(directory: Path, version: str, seed: int = 0) -> Path:
    """A bundle folder with one small random network per sensor family; a different seed gives other weights."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    families = {}
    for quantity, family in FAMILY_OF_QUANTITY.items():
        classes = ["clean", "spike"]
        np.savez(
            directory / f"{family}.npz",
            w0=rng.normal(0, 0.1, (N_FEATURES, HIDDEN)).astype(np.float32),
            b0=np.zeros(HIDDEN, np.float32),
            w1=rng.normal(0, 0.1, (HIDDEN, len(classes))).astype(np.float32),
            b1=np.array([4.0, 0.0], np.float32),  # clean by a wide margin: the tests are about shipping, not scores
        )
        families[family] = {
            "quantity": quantity.value,
            "classes": classes,
            "threshold": 0.99,
            "instant_threshold": 0.99,
            "feature_mean": [0.0] * N_FEATURES,
            "feature_scale": [1.0] * N_FEATURES,
            "weights": f"{family}.npz",
        }
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "version": version,
        "feature_names": list(FEATURE_NAMES),
        "families": families,
        "metadata": {"trained_on": "tests"},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def packed_test_bundle(directory: Path, version: str, seed: int = 0) -> bytes:
    return pack_bundle(write_test_bundle(directory, version, seed))
