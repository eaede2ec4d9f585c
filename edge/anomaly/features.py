"""Features of one reading against its device's recent history, at three scales (6, 24, 96 readings), and of the
same reading once the next one is known: the same function feeds training and the gateway.

Plain float arithmetic (`StreamingFeatures` keeps the windows); any finite series gives finite features.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from flurfunk.contracts import Quantity

WINDOW = 96  # readings of history per device and quantity: four days for hourly sensors, 16 h for stations
SHORT, MEDIUM = 6, 24
SLOPE_SPAN = 12
MAX_ABS_VALUE = 1e9  # values beyond are clipped before any arithmetic, so nothing overflows

# The quantity the learned model of each sensor family scores, and the unit steps features are measured in
# (about the sensor's noise): a bin's ultrasonic distance, a soil probe's water content, a station's air temperature.
FAMILY_OF_QUANTITY: dict[Quantity, str] = {
    Quantity.DISTANCE_M: "bin",
    Quantity.SOIL_VWC: "soil",
    Quantity.AIR_TEMPERATURE_C: "weather",
}
STEP: dict[str, float] = {"bin": 0.01, "soil": 0.005, "weather": 0.2}
LEVEL: dict[str, float] = {"bin": 1.0, "soil": 0.3, "weather": 20.0}

INSTANT_FEATURES: tuple[str, ...] = (
    "step",  # change since the previous reading
    "from_median_6",  # distance from the median of the last 6 readings
    "from_median_24",  # ... of the last 24
    "from_median_96",  # ... of the whole window
    "spread_24",  # median absolute deviation of the last 24
    "roughness_24",  # median step size over the last 24 steps
    "roughness_6",  # median step size over the last 6 steps (a noise burst)
    "recent_roughness",  # mean step size over the last 4 steps
    "run_length",  # identical values in a row, this one included
    "is_zero",  # the firmware's "no value"
    "zeros_before",  # share of zeros in the window
    "level",  # the value itself, scaled
    "slope_12",  # least-squares slope over the last 12 readings
    "slope_24",  # ... over the last 24 (a slow drift)
    "fit_error",  # how far the last 12 readings are from their straight line
    "monotone_run",  # steps in the same direction in a row
    "above_max_24",  # how far above the maximum of the last 24
    "below_min_24",  # how far below their minimum
    "above_ceiling",  # how far above the third largest value of the window (a bin's empty level)
    "below_floor",  # how far below the third smallest value of the window
    "rise_24",  # how far above the minimum of the last 24, by the window's robust scale
    "context_temperature",  # soil temperature of the same uplink (0 when there is none)
    "context_frozen",  # that temperature is at or below 0 °C
    "history",  # how full the window is
)
# Known one reading later: a spike returns, a burst goes on, a real jump (emptying, rain) stays.
LATE_FEATURES: tuple[str, ...] = (
    "has_next",  # 1 when the next reading is known (the late verdict), else 0 and the others are 0
    "next_step",  # the next reading's change from this one
    "next_from_previous",  # the next reading against the one before this one
    "next_from_median_6",  # the next reading against the last 6 before this one
    "spike_depth",  # how far this reading stands out from both neighbours
    "next_equal",  # the next reading repeats this one exactly
)
FEATURE_NAMES: tuple[str, ...] = INSTANT_FEATURES + LATE_FEATURES
N_INSTANT = len(INSTANT_FEATURES)
N_FEATURES = len(FEATURE_NAMES)


def _slog(value: float) -> float:
    """Signed log: keeps small steps linear and huge ones finite and comparable."""
    return math.copysign(math.log1p(abs(value)), value)


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])


def _clip(value: float) -> float:
    return min(max(float(value), -MAX_ABS_VALUE), MAX_ABS_VALUE)


def _slope(tail: list[float], step: float) -> tuple[float, float]:
    """Least-squares slope (in steps per reading) and the RMS residual of `tail`."""
    m = len(tail)
    t_mean = (m - 1) / 2.0
    tail_mean = sum(tail) / m
    centred = [(v - tail_mean) / step for v in tail]
    t_var = sum((i - t_mean) ** 2 for i in range(m))
    slope = sum((i - t_mean) * c for i, c in enumerate(centred)) / t_var
    error = math.sqrt(sum((c - slope * (i - t_mean)) ** 2 for i, c in enumerate(centred)) / m)
    return slope, error


def instant_features(
    history: Sequence[float] | np.ndarray, value: float, family: str, context_temperature_c: float | None = None
) -> list[float]:
    """The INSTANT_FEATURES of `value` after `history` (oldest first, at most WINDOW values used)."""
    if family not in STEP:
        raise ValueError(f"unknown sensor family {family!r}; known: {', '.join(STEP)}")
    step, level = STEP[family], LEVEL[family]
    h = [float(v) for v in history[-WINDOW:]] if isinstance(history, np.ndarray) else list(history)[-WINDOW:]
    if h and (max(h) > MAX_ABS_VALUE or min(h) < -MAX_ABS_VALUE):
        h = [_clip(v) for v in h]
    x = _clip(value)
    n = len(h)
    out = [0.0] * N_INSTANT
    if n:
        ordered = sorted(h)
        medium = h[-MEDIUM:]
        medium_sorted = sorted(medium)
        median_24 = _median(medium_sorted)
        out[0] = _slog((x - h[-1]) / step)
        out[1] = _slog((x - _median(sorted(h[-SHORT:]))) / step)
        out[2] = _slog((x - median_24) / step)
        out[3] = _slog((x - _median(ordered)) / step)
        spread = _median(sorted(abs(v - median_24) for v in medium))
        out[4] = _slog(spread / step)
        out[16] = _slog(max(x - medium_sorted[-1], 0.0) / step)
        out[17] = _slog(max(medium_sorted[0] - x, 0.0) / step)
        out[18] = _slog(max(x - ordered[-min(3, n)], 0.0) / step)
        out[19] = _slog(max(ordered[min(3, n) - 1] - x, 0.0) / step)
        out[20] = _slog((x - medium_sorted[0]) / (step + spread))
        out[10] = h.count(0.0) / WINDOW
    series = [*h[-MEDIUM:], x]
    steps = [abs(b - a) for a, b in itertools.pairwise(series)]
    if steps:
        out[5] = _slog(_median(sorted(steps)) / step)
        out[6] = _slog(_median(sorted(steps[-SHORT:])) / step)
        recent = steps[-4:]
        out[7] = _slog(sum(recent) / len(recent) / step)
        last_step = x - series[-2]
        if last_step:
            run = 0
            previous = x
            for v in reversed(series[:-1]):
                if (previous - v) * last_step <= 0:
                    break
                run += 1
                previous = v
            out[15] = math.log1p(run)
    equal = 1
    for v in reversed(h):
        if v != x:
            break
        equal += 1
    out[8] = math.log1p(equal)
    out[9] = 1.0 if x == 0.0 else 0.0
    out[11] = _slog(x / level)
    if len(series) >= 3:
        slope, error = _slope(series[-SLOPE_SPAN:], step)
        out[12] = _slog(slope)
        out[14] = _slog(error)
        out[13] = _slog(_slope(series, step)[0] * 4.0)  # per four readings: small slopes stay visible
    if context_temperature_c is not None and math.isfinite(context_temperature_c):
        temperature = min(max(float(context_temperature_c), -100.0), 100.0)
        out[21] = temperature / 10.0
        out[22] = 1.0 if temperature <= 0.0 else 0.0
    out[23] = n / WINDOW
    return out


def late_features(history: Sequence[float], value: float, next_value: float, family: str) -> list[float]:
    """The LATE_FEATURES of `value` (after `history`) once `next_value` is known."""
    step = STEP[family]
    x, following = _clip(value), _clip(next_value)
    h = list(history)[-SHORT:]
    previous = _clip(h[-1]) if h else x
    baseline = _median(sorted(_clip(v) for v in h)) if h else x
    return [
        1.0,
        _slog((following - x) / step),
        _slog((following - previous) / step),
        _slog((following - baseline) / step),
        _slog(min(abs(x - previous), abs(x - following)) / step),
        1.0 if following == x else 0.0,
    ]


NO_NEXT: tuple[float, ...] = (0.0,) * len(LATE_FEATURES)


def window_features(
    history: Sequence[float] | np.ndarray,
    value: float,
    family: str,
    context_temperature_c: float | None = None,
    next_value: float | None = None,
) -> np.ndarray:
    """All FEATURE_NAMES of `value` after `history`; the late part is zero unless `next_value` is given."""
    instant = instant_features(history, value, family, context_temperature_c)
    if next_value is None:
        return np.array(instant + list(NO_NEXT), dtype=np.float64)
    h = [float(v) for v in history] if isinstance(history, np.ndarray) else list(history)
    return np.array(instant + late_features(h, value, next_value, family), dtype=np.float64)


class StreamingFeatures:
    """The windows of every (device, quantity) a gateway hears; `push` gives a reading's instant features and
    remembers it. Memory is bounded: at most `max_series` windows of WINDOW floats; the least recently heard go."""

    def __init__(self, max_series: int = 50_000) -> None:
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {max_series}")
        self.max_series = max_series
        self._windows: dict[tuple[str, Quantity], deque[float]] = {}

    def __len__(self) -> int:
        return len(self._windows)

    def history(self, device: str, quantity: Quantity) -> np.ndarray:
        window = self._windows.get((device, quantity))
        return np.array(window if window is not None else (), dtype=np.float64)

    def window(self, device: str, quantity: Quantity) -> tuple[float, ...]:
        return tuple(self._windows.get((device, quantity), ()))

    def push(
        self,
        device: str,
        quantity: Quantity,
        value: float,
        family: str,
        context_temperature_c: float | None = None,
        *,
        compute: bool = True,
    ) -> list[float] | None:
        """The reading's INSTANT_FEATURES (None when `compute` is false: rules only need the window)."""
        key = (device, quantity)
        window = self._windows.pop(key, None)  # re-inserted last: dict order is recency order
        if window is None:
            window = deque(maxlen=WINDOW)
            while len(self._windows) >= self.max_series:
                del self._windows[next(iter(self._windows))]
        features = instant_features(window, value, family, context_temperature_c) if compute else None
        window.append(float(value))
        self._windows[key] = window
        return features
