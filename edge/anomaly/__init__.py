"""Edge anomaly checks: features over a sliding window, rules, and small per-family networks run with LiteRT or numpy.

Entry points: `load_bundle(path)`, `AnomalyScorer(bundle).score(readings)`, `default_scorer()`.
"""

from edge.anomaly.bundle import Bundle, BundleError, FamilyModel, load_bundle, shipped_bundle_path
from edge.anomaly.features import FEATURE_NAMES, StreamingFeatures, window_features
from edge.anomaly.flags import SENSOR_FAULT, fault_flag, fault_types_in
from edge.anomaly.scorer import RULES_ONLY, AnomalyScorer, default_scorer

__all__ = [
    "FEATURE_NAMES",
    "RULES_ONLY",
    "SENSOR_FAULT",
    "AnomalyScorer",
    "Bundle",
    "BundleError",
    "FamilyModel",
    "StreamingFeatures",
    "default_scorer",
    "fault_flag",
    "fault_types_in",
    "load_bundle",
    "shipped_bundle_path",
    "window_features",
]
