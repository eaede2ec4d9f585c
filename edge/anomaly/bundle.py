"""Model bundles: a versioned directory with one small network per sensor family, its feature normalisation,
threshold and classes, described by `bundle.json`. Gateways get it with their config and load it with
`load_bundle(path)`.

    <dir>/bundle.json        format, version, feature names, per family: quantity, classes, threshold (the
                             final verdict, LOOK_AHEAD readings later), instant_threshold (on arrival),
                             next_threshold (one reading later), feature_mean, feature_scale, files
    <dir>/<family>.tflite    the network for LiteRT
    <dir>/<family>.npz       the same weights for the numpy path (w0, b0, w1, b1, ...)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edge.anomaly.features import FAMILY_OF_QUANTITY, FEATURE_NAMES, LOOK_AHEAD, N_FEATURES, transform
from edge.anomaly.runtime import LiteRtRunner, ModelRunner, NumpyRunner, litert_interpreter_class
from flurfunk.contracts import Quantity

BUNDLE_FORMAT = "flurfunk-anomaly-bundle"
BUNDLE_FORMAT_VERSION = 3  # 3: raw features, signed log applied in standardise
MANIFEST = "bundle.json"
MAX_MANIFEST_BYTES = 1_000_000
MAX_MODEL_BYTES = 5_000_000
MAX_LAYERS = 8
SHIPPED_MODELS = Path(__file__).parent / "models"


class BundleError(ValueError):
    """A model bundle is missing, malformed or inconsistent; the message names the file and the field."""


@dataclass(frozen=True)
class FamilyModel:
    """The network of one sensor family and what it needs around it."""

    family: str
    quantity: Quantity
    classes: tuple[str, ...]  # classes[0] is "clean"
    threshold: float  # 1 - p(clean) at or above which a reading is flagged in the final verdict (LOOK_AHEAD later)
    instant_threshold: float  # the same for the verdict given when the reading arrives
    next_threshold: float  # the same once the next reading is known
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    tflite_path: Path | None

    @cached_property  # read per verdict: built once
    def thresholds(self) -> tuple[float, ...]:
        """By readings known after the scored one (0 to LOOK_AHEAD; the scorer asks at 0 and REVISE_AT)."""
        return (self.instant_threshold, *(self.next_threshold,) * (LOOK_AHEAD - 1), self.threshold)

    def standardise(self, features: np.ndarray) -> np.ndarray:
        """The network's input for raw feature rows: signed log, then centred and scaled as in training."""
        return ((transform(features) - self.feature_mean) / self.feature_scale).astype(np.float32)

    def runner(self, backend: str = "auto") -> ModelRunner:
        """ "numpy", "litert" (raises ImportError without it) or "auto" (LiteRT when importable)."""
        if backend not in {"auto", "numpy", "litert"}:
            raise ValueError(f"backend must be auto, numpy or litert, got {backend!r}")
        use_litert = backend == "litert" or (backend == "auto" and litert_interpreter_class() is not None)
        if use_litert and self.tflite_path is not None:
            return LiteRtRunner(self.tflite_path)
        if backend == "litert":
            raise ImportError(f"family {self.family}: the bundle has no .tflite file")
        return NumpyRunner(self.weights, self.biases)


@dataclass(frozen=True)
class Bundle:
    version: str
    path: Path
    families: dict[str, FamilyModel]
    metadata: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        return sum(file.stat().st_size for file in self.path.iterdir() if file.is_file())


def shipped_bundle_path() -> Path | None:
    """The newest bundle shipped in the package (edge/anomaly/models/<version>/), or None."""
    if not SHIPPED_MODELS.is_dir():
        return None
    candidates = sorted(p for p in SHIPPED_MODELS.iterdir() if (p / MANIFEST).is_file())
    return candidates[-1] if candidates else None


def write_manifest(
    directory: Path, version: str, families: dict[str, dict[str, Any]], metadata: dict[str, Any]
) -> dict[str, Any]:
    """Write `bundle.json` for the family files already in `directory`: the one writer of what `load_bundle` reads."""
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "version": version,
        "feature_names": list(FEATURE_NAMES),
        "families": families,
        "metadata": metadata,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def load_bundle(path: str | Path) -> Bundle:
    """The bundle in directory `path`; BundleError says what is wrong with it."""
    directory = Path(path)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: no bundle manifest")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{manifest_path}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{manifest_path}: not JSON: {error}") from error
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT or manifest.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: format {manifest.get('format')!r} v{manifest.get('format_version')!r} is not "
            f"{BUNDLE_FORMAT} v{BUNDLE_FORMAT_VERSION}"
        )
    version = manifest.get("version")
    if not isinstance(version, str) or not 0 < len(version) <= 64:
        raise BundleError(f"{manifest_path}: version must be a string of 1 to 64 characters")
    if tuple(manifest.get("feature_names", ())) != FEATURE_NAMES:
        raise BundleError(f"{manifest_path}: feature_names differ from this gateway's features; retrain the bundle")
    families_raw = manifest.get("families")
    if not isinstance(families_raw, dict) or not families_raw:
        raise BundleError(f"{manifest_path}: families must be a non-empty object")
    families = {name: _family(directory, name, spec) for name, spec in families_raw.items()}
    return Bundle(version=version, path=directory, families=families, metadata=manifest.get("metadata", {}))


def _family(directory: Path, name: str, spec: Any) -> FamilyModel:
    where = f"{directory / MANIFEST}: families.{name}"
    if not isinstance(spec, dict):
        raise BundleError(f"{where}: expected an object")
    try:
        quantity = Quantity(spec["quantity"])
        classes = tuple(str(c) for c in spec["classes"])
        threshold = float(spec["threshold"])
        instant_threshold = float(spec.get("instant_threshold", threshold))
        next_threshold = float(spec.get("next_threshold", threshold))
        mean = np.asarray(spec["feature_mean"], dtype=np.float64)
        scale = np.asarray(spec["feature_scale"], dtype=np.float64)
        weights_file = str(spec["weights"])
        tflite_file = spec.get("tflite")
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{where}: {type(error).__name__}: {error}") from error
    if FAMILY_OF_QUANTITY.get(quantity) != name:
        raise BundleError(f"{where}: quantity {quantity.value} is not the {name} family's")
    if len(classes) < 2 or classes[0] != "clean":
        raise BundleError(f"{where}: classes must start with 'clean' and name at least one fault")
    if not 0.0 < threshold <= 1.0:
        raise BundleError(f"{where}: threshold must be in (0, 1], got {threshold}")
    for name, value in (("instant_threshold", instant_threshold), ("next_threshold", next_threshold)):
        if not 0.0 < value <= 1.0:
            raise BundleError(f"{where}: {name} must be in (0, 1], got {value}")
    if mean.shape != (N_FEATURES,) or scale.shape != (N_FEATURES,) or not np.all(np.isfinite(mean)):
        raise BundleError(f"{where}: feature_mean and feature_scale need {N_FEATURES} finite numbers")
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise BundleError(f"{where}: feature_scale must be positive")
    weights, biases = _weights(directory / Path(weights_file).name, where)
    if weights[0].shape[0] != N_FEATURES or weights[-1].shape[1] != len(classes):
        raise BundleError(f"{where}: the network maps {weights[0].shape[0]} features to {weights[-1].shape[1]} "
                          f"classes; expected {N_FEATURES} to {len(classes)}")  # fmt: skip
    tflite_path = None
    if tflite_file is not None:
        tflite_path = directory / Path(str(tflite_file)).name
        if not tflite_path.is_file() or tflite_path.stat().st_size > MAX_MODEL_BYTES:
            raise BundleError(f"{where}: {tflite_path.name} is missing or larger than {MAX_MODEL_BYTES} bytes")
    return FamilyModel(
        name, quantity, classes, threshold, instant_threshold, next_threshold, mean, scale, weights, biases, tflite_path
    )


def _weights(path: Path, where: str) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    if not path.is_file() or path.stat().st_size > MAX_MODEL_BYTES:
        raise BundleError(f"{where}: {path.name} is missing or larger than {MAX_MODEL_BYTES} bytes")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            layers = len([key for key in arrays.files if key.startswith("w")])
            if not 1 <= layers <= MAX_LAYERS:
                raise BundleError(f"{where}: {path.name} has {layers} layers; 1 to {MAX_LAYERS} are allowed")
            weights = tuple(np.asarray(arrays[f"w{i}"], dtype=np.float32) for i in range(layers))
            biases = tuple(np.asarray(arrays[f"b{i}"], dtype=np.float32) for i in range(layers))
    except BundleError:
        raise
    except Exception as error:  # a corrupt npz raises many kinds of errors; all mean the same here
        raise BundleError(f"{where}: {path.name} is not a weights file: {type(error).__name__}: {error}") from error
    for i, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        if weight.ndim != 2 or bias.shape != (weight.shape[1],) or not np.all(np.isfinite(weight)):
            raise BundleError(f"{where}: {path.name} layer {i} has inconsistent or non-finite weights")
        if i and weights[i - 1].shape[1] != weight.shape[0]:
            raise BundleError(f"{where}: {path.name} layer {i} does not fit layer {i - 1}")
    return weights, biases
