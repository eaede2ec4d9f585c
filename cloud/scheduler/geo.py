"""Distances on the earth for route building: great-circle km, scaled to road km by a factor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Mean earth radius (IUGG); good to ~0.5 % for haversine, far below the uncertainty of the road factor.
EARTH_RADIUS_KM = 6371.0088


def haversine_km(latitude_a: float, longitude_a: float, latitude_b: float, longitude_b: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    points = np.array([[latitude_a, longitude_a], [latitude_b, longitude_b]], dtype=float)
    return float(distance_matrix_km(points)[0, 1])


def distance_matrix_km(points: Sequence[tuple[float, float]] | np.ndarray, road_factor: float = 1.0) -> np.ndarray:
    """Symmetric matrix of haversine km × road_factor between (latitude, longitude) points in degrees."""
    if road_factor <= 0 or not np.isfinite(road_factor):
        raise ValueError(f"road_factor must be a positive finite number, got {road_factor!r}")
    coordinates = np.radians(np.asarray(points, dtype=float).reshape(-1, 2))
    latitudes = coordinates[:, 0][:, None]
    longitudes = coordinates[:, 1][:, None]
    half_dlat = (latitudes - latitudes.T) / 2.0
    half_dlon = (longitudes - longitudes.T) / 2.0
    chord = np.sin(half_dlat) ** 2 + np.cos(latitudes) * np.cos(latitudes.T) * np.sin(half_dlon) ** 2
    # Rounding can push chord a hair outside [0, 1]; arcsin would then return NaN.
    central_angle = 2.0 * np.arcsin(np.sqrt(np.clip(chord, 0.0, 1.0)))
    return EARTH_RADIUS_KM * central_angle * road_factor
