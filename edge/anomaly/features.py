"""Features of one reading against its device's recent history: the same function feeds training and the gateway.

Plain arithmetic over a sliding window per device and quantity (`StreamingFeatures` keeps the windows); any finite
series gives finite features.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from flurfunk.contracts import Quantity

WINDOW = 24  # readings of history per device and quantity: a day for hourly sensors
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

FEATURE_NAMES: tuple[str, ...] = (
    "step",  # change since the previous reading
    "from_median",  # distance from the window's median
    "from_old_median",  # distance from the median of the window's older half
    "spread",  # median absolute deviation of the window
    "roughness",  # typical step size in the window
    "recent_roughness",  # mean step size over the last four steps
    "run_length",  # identical values in a row, this one included
    "is_zero",  # the firmware's "no value"
    "zeros_before",  # share of zeros in the window
    "level",  # the value itself, scaled
    "slope",  # least-squares slope over the last readings
    "fit_error",  # how far the last readings are from that straight line
    "monotone_run",  # steps in the same direction in a row
    "above_max",  # how far above the window's maximum
    "below_min",  # how far below the window's minimum
    "context_temperature",  # soil temperature of the same uplink (0 when there is none)
    "context_frozen",  # that temperature is at or below 0 °C
    "history",  # how full the window is
)
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


def window_features(
    history: Sequence[float] | np.ndarray, value: float, family: str, context_temperature_c: float | None = None
) -> np.ndarray:
    """Features (FEATURE_NAMES order) of `value` after `history` (oldest first, at most WINDOW values used).

    Plain float arithmetic over a window of two dozen values: on a gateway that is several times faster than
    numpy's per-call overhead, and the result is the same numbers.
    """
    if family not in STEP:
        raise ValueError(f"unknown sensor family {family!r}; known: {', '.join(STEP)}")
    step, level = STEP[family], LEVEL[family]
    h = [float(v) for v in history[-WINDOW:]] if isinstance(history, np.ndarray) else list(history)[-WINDOW:]
    if h and (max(h) > MAX_ABS_VALUE or min(h) < -MAX_ABS_VALUE):
        h = [_clip(v) for v in h]
    x = _clip(value)
    n = len(h)
    out = [0.0] * N_FEATURES
    if n:
        median = _median(sorted(h))
        old_median = _median(sorted(h[: max(1, n // 2)]))
        out[0] = _slog((x - h[-1]) / step)
        out[1] = _slog((x - median) / step)
        out[2] = _slog((x - old_median) / step)
        out[3] = _slog(_median(sorted(abs(v - median) for v in h)) / step)
        out[13] = _slog(max(x - max(h), 0.0) / step)
        out[14] = _slog(max(min(h) - x, 0.0) / step)
        out[8] = h.count(0.0) / WINDOW
    series = [*h, x]
    steps = [b - a for a, b in itertools.pairwise(series)]
    if steps:
        out[4] = _slog(_median(sorted(abs(d) for d in steps)) / step)
        recent = steps[-4:]
        out[5] = _slog(sum(abs(d) for d in recent) / len(recent) / step)
        direction = (steps[-1] > 0) - (steps[-1] < 0)
        if direction:
            run = 0
            for d in reversed(steps):
                if (d > 0) - (d < 0) != direction:
                    break
                run += 1
            out[12] = math.log1p(run)
    equal = 0
    for v in reversed(series):
        if v != x:
            break
        equal += 1
    out[6] = math.log1p(equal)
    out[7] = 1.0 if x == 0.0 else 0.0
    out[9] = _slog(x / level)
    tail = series[-SLOPE_SPAN:]
    m = len(tail)
    if m >= 3:
        t_mean = (m - 1) / 2.0
        tail_mean = sum(tail) / m
        centred = [(v - tail_mean) / step for v in tail]
        t_var = sum((i - t_mean) ** 2 for i in range(m))
        slope = sum((i - t_mean) * c for i, c in enumerate(centred)) / t_var
        out[10] = _slog(slope)
        out[11] = _slog(math.sqrt(sum((c - slope * (i - t_mean)) ** 2 for i, c in enumerate(centred)) / m))
    if context_temperature_c is not None and math.isfinite(context_temperature_c):
        temperature = min(max(float(context_temperature_c), -100.0), 100.0)
        out[15] = temperature / 10.0
        out[16] = 1.0 if temperature <= 0.0 else 0.0
    out[17] = n / WINDOW
    return np.array(out, dtype=np.float64)


class StreamingFeatures:
    """The windows of every (device, quantity) a gateway hears; `push` gives a reading's features and remembers it.

    Memory is bounded: at most `max_series` windows of WINDOW floats; the least recently heard are forgotten.
    """

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
    ) -> np.ndarray | None:
        """The reading's features (None when `compute` is false: the rules-only path only needs the window)."""
        key = (device, quantity)
        window = self._windows.pop(key, None)  # re-inserted last: dict order is recency order
        if window is None:
            window = deque(maxlen=WINDOW)
            while len(self._windows) >= self.max_series:
                del self._windows[next(iter(self._windows))]
        features = window_features(window, value, family, context_temperature_c) if compute else None
        window.append(float(value))
        self._windows[key] = window
        return features
