"""Features of one reading against its device's recent history (6, 24 and 96 readings), and of the same reading
once the next one is known: the same code feeds training and the gateway.

`StreamingFeatures` keeps per series what the features need, updated per reading (sorted windows kept with bisect,
no re-sorting or rescanning of the 96-reading window): a reading costs the same however long the series runs.
`window_features` computes the same numbers from scratch; tests hold the two equal. Features are raw numbers in
units of the family's step; `transform` (a signed log) is applied to whole batches before the network.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice, pairwise
from operator import mul

import numpy as np

from flurfunk.contracts import Quantity

WINDOW = 96  # readings of history per device and quantity: four days for hourly sensors, 16 h for stations
SHORT, MEDIUM, SLOPE_SPAN, TREND_SPAN = 6, 24, 12, 12
MAX_ABS_VALUE = 1e9  # values beyond are clipped before any arithmetic, so nothing overflows
BIG_STEP = 4.0  # a step this many noise scales wide is not sensor noise
NOISY_STEP = 3.0  # a step this many sensor steps wide is unusual for a calm sensor
# Readings a series' window needs before the network judges a reading on arrival (rules judge from the first). The
# readings after an early one judge it later all the same: its `history` feature tells the network how little the
# window held (with none before 6, the first readings of the series held 15 of the 24 spikes the held-out district
# missed).
MIN_HISTORY = 6

# The quantity the learned model of each sensor family scores, and the unit steps features are measured in
# (about the sensor's noise): a bin's ultrasonic distance, a soil probe's water content, a station's air temperature.
FAMILY_OF_QUANTITY: dict[Quantity, str] = {
    Quantity.DISTANCE_M: "bin",
    Quantity.SOIL_VWC: "soil",
    Quantity.AIR_TEMPERATURE_C: "weather",
}
STEP: dict[str, float] = {"bin": 0.01, "soil": 0.005, "weather": 0.2}
LEVEL: dict[str, float] = {"bin": 1.0, "soil": 0.3, "weather": 20.0}
# Families whose firmware sends exactly 0 for "no value": such readings stay out of the windows (a rule flags them).
ZERO_IS_NO_VALUE = frozenset({"bin", "soil"})

INSTANT_FEATURES: tuple[str, ...] = (
    "step",  # change since the previous reading
    "jump_z",  # that change against the series' typical step (median over the window): MAD-scaled jump
    "from_median_6",  # distance from the median of the last 6 readings
    "from_median_24",  # ... of the last 24
    "from_median_96",  # ... of the whole window
    "residual_24_z",  # distance from the median of the last 24, by their robust spread (IQR)
    "residual_96_z",  # ... of the whole window
    "spread_24",  # interquartile range of the last 24
    "roughness_96",  # median step size over the window (the sensor's own noise)
    "roughness_24",  # median step size over the last 24 steps
    "roughness_6",  # median step size over the last 6 steps (a noise burst)
    "burst_ratio",  # mean step of the last 6 against the window's median step: short vs long variance
    "big_steps_6",  # steps among the last 6 wider than BIG_STEP noise scales
    "deviant_6",  # readings among the last 6 more than BIG_STEP noise scales from the median of 24: a lone spike
    # counts once, a burst many times
    "skip_jump_z",  # change since the reading before the previous one, by the noise scale (past a lone spike)
    "run_length",  # identical values in a row, this one included
    "level",  # the value itself, scaled
    "slope_12",  # least-squares slope over the last 12 readings (per reading)
    "slope_24",  # ... over the last 24, per four readings
    "slope_96",  # ... over the window, per four readings: the sensor's long baseline
    "slope_excess",  # slope_24 minus slope_96: a trend the series did not have before (drift)
    "fit_error",  # how far the last 12 readings are from their straight line
    "trend_share",  # (steps up - steps down) among the last 12: a drift moves one way
    "monotone_run",  # steps in the same direction in a row
    "above_max_24",  # how far above the maximum of the last 24
    "below_min_24",  # how far below their minimum
    "above_ceiling",  # how far above the third largest value of the window (a bin's empty level)
    "below_floor",  # how far below the third smallest value of the window
    "rise_24",  # how far above the minimum of the last 24, by the robust spread
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
    "next_residual_z",  # the next reading against the median of the 24 before this one, by their spread
    "next_jump_z",  # the next change against the typical step
    "spike_depth",  # how far this reading stands out from both neighbours
    "spike_depth_z",  # the same against the typical step
    "next_big",  # the next reading is also far (BIG_STEP) from the one before this one: the disturbance goes on
    "next_deviant",  # the next reading is far (BIG_STEP) from the median of the 24 before this one
    "next_equal",  # the next reading repeats this one exactly
    # Known two readings later: a burst scatters on, a spike's neighbours agree, a level shift holds.
    "has_next_2",  # 1 when the reading after the next is known too (the final verdict)
    "next_2_from_this",  # that reading against this one, by the noise scale
    "next_2_residual_z",  # ... against the median of the 24 before this one, by their spread
    "next_2_step_z",  # ... against the next reading, by the noise scale
    "next_2_deviant",  # it is far (BIG_STEP) from the median of the 24 before this one
    "neighbours_agree_z",  # the previous reading against the mean of the two after: they agree around a spike
    # Over what is known around the reading (AROUND readings before it, up to LOOK_AHEAD after): a burst scatters the
    # readings beside a reading too, even one that the noise happened to leave near the truth.
    "known_share",  # readings known after this one, as a share of LOOK_AHEAD
    "ahead_from_this_z",  # the median of the readings after against this one, by the noise scale
    "ahead_residual_z",  # ... against the median of the 24 before this one, by their spread
    "ahead_scatter_z",  # median distance of the readings after from their median, by the noise scale
    "ahead_rough_z",  # median step from this reading on, by the noise scale
    "around_scatter_z",  # median distance of the neighbours (this one left out) from their median, by the noise scale
    "around_rough_z",  # median step over the neighbours and this one, by the noise scale
    "around_big_steps",  # steps among them wider than BIG_STEP noise scales: a spike makes two, a burst many
    "around_deviant",  # neighbours far (BIG_STEP) from the median of the 24 before this one
    # The same neighbourhood by the family's known sensor step, which a burst cannot inflate (the window's own noise
    # scale can: a burst at a series' start fills the window): a burst is a run of scattered readings, a spike one.
    "around_scatter_step",  # median distance of the neighbours and this one from their median, by the step
    "around_rough_step",  # median step over the neighbours and this one, by the step
    "around_rough_steps",  # steps among them wider than NOISY_STEP sensor steps
    "around_peak_share",  # largest distance from their median against the median distance: a spike is one peak
)
LOOK_AHEAD = 4  # readings after a reading that its final verdict waits for
# Readings after a reading at which its verdict is revised: the next one, then the final verdict (each revision costs
# a network row per reading; the ones in between changed nothing final).
REVISE_AT = (1, LOOK_AHEAD)
AROUND = 3  # readings before a reading that the features over its neighbourhood look at
FEATURE_NAMES: tuple[str, ...] = INSTANT_FEATURES + LATE_FEATURES
N_INSTANT = len(INSTANT_FEATURES)
N_FEATURES = len(FEATURE_NAMES)
NO_NEXT: tuple[float, ...] = (0.0,) * len(LATE_FEATURES)


def transform(rows: np.ndarray) -> np.ndarray:
    """Signed log of raw features, over a whole batch: small steps stay linear, huge ones finite and comparable."""
    rows = np.asarray(rows, dtype=np.float64)
    return np.sign(rows) * np.log1p(np.abs(rows))


@dataclass(frozen=True)
class LateContext:
    """What the late features of a reading need from the history before it (kept until the next reading)."""

    value: float
    previous: float
    median_6: float
    median_24: float
    scale_24: float  # step + robust spread of the last 24
    noise: float  # step + median step size: the series' noise scale
    before: tuple[float, ...]  # the last AROUND values before it, oldest first


def _clip(value: float) -> float:
    return min(max(float(value), -MAX_ABS_VALUE), MAX_ABS_VALUE)


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])


def _iqr(ordered: Sequence[float]) -> float:
    n = len(ordered)
    return ordered[(3 * n) // 4] - ordered[n // 4] if n >= 4 else 0.0


_LINES: dict[int, tuple[tuple[float, ...], float]] = {}


def _slope(tail: Sequence[float]) -> float:
    """Least-squares slope per reading of `tail` (at least 3 values)."""
    m = len(tail)
    known = _LINES.get(m)
    if known is None:
        t_mean = (m - 1) / 2.0
        t_var = sum((i - t_mean) ** 2 for i in range(m))
        known = _LINES.setdefault(m, (tuple((i - t_mean) / t_var for i in range(m)), t_var / m))
    return sum(map(mul, known[0], tail))


def _line(tail: Sequence[float]) -> tuple[float, float]:
    """`_slope` of `tail` and the RMS residual of its straight line."""
    slope = _slope(tail)
    m = len(tail)
    mean = sum(tail) / m
    spread = sum((v - mean) ** 2 for v in tail) / m
    return slope, math.sqrt(max(spread - slope * slope * _LINES[m][1], 0.0))


def _features(
    family: str,
    x: float,
    h: list[float],  # the window before x, oldest first (at most WINDOW values)
    all_sorted: Sequence[float],
    medium_sorted: Sequence[float],
    steps: list[float],  # signed steps between the window's values, oldest first
    steps_sorted: Sequence[float],  # their sizes, sorted
    medium_steps_sorted: Sequence[float],  # sizes of the last MEDIUM steps, sorted
    context_temperature_c: float | None,
) -> tuple[list[float], LateContext]:
    """The raw INSTANT_FEATURES of x and what its late features will need; both implementations end here."""
    step = STEP[family]
    n = len(h)
    out = [0.0] * N_INSTANT
    previous = h[-1] if n else x
    median_6 = median_24 = x
    scale_24 = step
    noise = step + (_median(steps_sorted) if steps_sorted else 0.0)
    if n:
        median_6 = _median(sorted(h[-SHORT:]))
        median_24 = _median(medium_sorted)
        median_96 = _median(all_sorted)
        spread_24 = _iqr(medium_sorted)
        scale_24 = step + spread_24
        out[0] = (x - previous) / step
        out[1] = (x - previous) / noise
        out[2] = (x - median_6) / step
        out[3] = (x - median_24) / step
        out[4] = (x - median_96) / step
        out[5] = (x - median_24) / scale_24
        out[6] = (x - median_96) / (step + _iqr(all_sorted))
        out[7] = spread_24 / step
        out[8] = (noise - step) / step
        out[24] = max(x - medium_sorted[-1], 0.0) / step
        out[25] = max(medium_sorted[0] - x, 0.0) / step
        out[26] = max(x - all_sorted[-min(3, n)], 0.0) / step
        out[27] = max(all_sorted[min(3, n) - 1] - x, 0.0) / step
        out[28] = (x - medium_sorted[0]) / scale_24
        current = abs(x - previous)
        recent = [abs(s) for s in steps[-(SHORT - 1) :]] + [current]
        out[9] = _median(_with(medium_steps_sorted, current, MEDIUM, steps)) / step
        out[10] = _median(sorted(recent)) / step
        out[11] = sum(recent) / len(recent) / noise
        far = BIG_STEP * noise
        out[12] = sum(1.0 for s in recent if s > far)
        out[13] = sum(1.0 for v in h[-SHORT:] if abs(v - median_24) > far)
        out[14] = (x - (h[-2] if n >= 2 else previous)) / noise
        signed = [*steps[-(TREND_SPAN - 1) :], x - previous]
        out[22] = (sum(1.0 for s in signed if s > 0) - sum(1.0 for s in signed if s < 0)) / TREND_SPAN
        last_step = x - previous
        if last_step:
            run = 0
            for s in reversed(signed):
                if s * last_step <= 0:
                    break
                run += 1
            if run == len(signed):  # the run may go on beyond the trend span
                for s in islice(reversed(steps), len(signed) - 1, None):
                    if s * last_step <= 0:
                        break
                    run += 1
            out[23] = float(run)
    equal = 1
    for v in reversed(h):
        if v != x:
            break
        equal += 1
    out[15] = float(equal)
    out[16] = x / LEVEL[family]
    if n >= 2:
        series = [*h[-(WINDOW - 1) :], x]
        slope, error = _line(series[-SLOPE_SPAN:])
        out[17] = slope / step
        out[21] = error / step
        slope_24 = _slope(series[-MEDIUM:]) / step * 4.0
        slope_96 = _slope(series) / step * 4.0
        out[18], out[19], out[20] = slope_24, slope_96, slope_24 - slope_96
    if context_temperature_c is not None and math.isfinite(context_temperature_c):
        temperature = min(max(float(context_temperature_c), -100.0), 100.0)
        out[29] = temperature / 10.0
        out[30] = 1.0 if temperature <= 0.0 else 0.0
    out[31] = n / WINDOW
    return out, LateContext(x, previous, median_6, median_24, scale_24, noise, tuple(h[-AROUND:]))


def _with(medium_steps_sorted: Sequence[float], current: float, size: int, steps: Sequence[float]) -> list[float]:
    """The sizes of the last `size` steps including the current one, sorted (the oldest of the window's leaves)."""
    ordered = list(medium_steps_sorted)
    if len(ordered) >= size:
        del ordered[bisect_left(ordered, abs(steps[-size]))]
    insort(ordered, current)
    return ordered


def late_features(context: LateContext, following: Sequence[float], family: str) -> list[float]:
    """The raw LATE_FEATURES of a reading (its LateContext) once 1 to LOOK_AHEAD readings after it are known."""
    step, noise, median_24 = STEP[family], context.noise, context.median_24
    x, previous = context.value, context.previous
    after = [_clip(v) for v in following[:LOOK_AHEAD]]
    y = after[0]
    far = BIG_STEP * noise
    depth = min(abs(x - previous), abs(x - y))
    out = [
        1.0,
        (y - x) / step,
        (y - previous) / step,
        (y - context.median_6) / step,
        (y - median_24) / context.scale_24,
        (y - x) / noise,
        depth / step,
        depth / noise,
        1.0 if abs(y - previous) > far and abs(x - previous) > far else 0.0,
        1.0 if abs(y - median_24) > far else 0.0,
        1.0 if y == x else 0.0,
    ]
    if len(after) >= 2:
        z = after[1]
        out += [
            1.0,
            (z - x) / noise,
            (z - median_24) / context.scale_24,
            (z - y) / noise,
            1.0 if abs(z - median_24) > far else 0.0,
            (previous - 0.5 * (y + z)) / noise,
        ]
    else:
        out += [0.0] * 6
    ahead_median = _median(sorted(after))
    neighbours = [*context.before, *after]
    neighbours_median = _median(sorted(neighbours))
    ahead_steps = sorted(abs(b - a) for a, b in pairwise([x, *after]))
    around_steps = [abs(b - a) for a, b in pairwise([*context.before, x, *after])]
    around_step_median = _median(sorted(around_steps))
    out += [
        len(after) / LOOK_AHEAD,
        (ahead_median - x) / noise,
        (ahead_median - median_24) / context.scale_24,
        _median(sorted(abs(v - ahead_median) for v in after)) / noise,
        _median(ahead_steps) / noise,
        _median(sorted(abs(v - neighbours_median) for v in neighbours)) / noise,
        around_step_median / noise,
        float(sum(1 for s in around_steps if s > far)),
        float(sum(1 for v in neighbours if abs(v - median_24) > far)),
    ]
    known = [*neighbours, x]
    known_median = _median(sorted(known))
    distances = sorted(abs(v - known_median) for v in known)
    typical = _median(distances)
    out += [
        typical / step,
        around_step_median / step,
        float(sum(1 for s in around_steps if s > NOISY_STEP * step)),
        distances[-1] / (typical + step),
    ]
    return out


def window_features(
    history: Sequence[float] | np.ndarray,
    value: float,
    family: str,
    context_temperature_c: float | None = None,
    following: Sequence[float] = (),
) -> np.ndarray:
    """All raw FEATURE_NAMES of `value` after `history` (oldest first; the window the gateway would keep: the last
    WINDOW values, no-value zeros left out), computed from scratch; the late part is zero without `following` (the
    real readings after it, at most LOOK_AHEAD count)."""
    if family not in STEP:
        raise ValueError(f"unknown sensor family {family!r}; known: {', '.join(STEP)}")
    values = [_clip(v) for v in np.asarray(history, dtype=np.float64).tolist()]
    if family in ZERO_IS_NO_VALUE:
        values = [v for v in values if v != 0.0]
    h = values[-WINDOW:]
    steps = [b - a for a, b in pairwise(h)]
    sizes = [abs(s) for s in steps]
    instant, context = _features(
        family,
        _clip(value),
        h,
        sorted(h),
        sorted(h[-MEDIUM:]),
        steps,
        sorted(sizes),
        sorted(sizes[-MEDIUM:]),
        context_temperature_c,
    )
    late = late_features(context, following, family) if len(following) else NO_NEXT
    return np.array([*instant, *late], dtype=np.float64)


class _Series:
    """One series' window and its sorted views, updated per reading."""

    __slots__ = ("all_sorted", "medium_sorted", "medium_steps_sorted", "steps", "steps_sorted", "values")

    def __init__(self) -> None:
        self.values: deque[float] = deque(maxlen=WINDOW)
        self.steps: deque[float] = deque(maxlen=WINDOW - 1)
        self.all_sorted: list[float] = []
        self.medium_sorted: list[float] = []
        self.steps_sorted: list[float] = []
        self.medium_steps_sorted: list[float] = []

    def append(self, value: float) -> None:
        values, steps = self.values, self.steps
        if values:
            if len(steps) == steps.maxlen:
                del self.steps_sorted[bisect_left(self.steps_sorted, abs(steps[0]))]
            if len(steps) >= MEDIUM:
                del self.medium_steps_sorted[bisect_left(self.medium_steps_sorted, abs(steps[-MEDIUM]))]
            size = abs(value - values[-1])
            steps.append(value - values[-1])
            insort(self.steps_sorted, size)
            insort(self.medium_steps_sorted, size)
        if len(values) == WINDOW:
            del self.all_sorted[bisect_left(self.all_sorted, values[0])]
        if len(values) >= MEDIUM:
            del self.medium_sorted[bisect_left(self.medium_sorted, values[-MEDIUM])]
        values.append(value)
        insort(self.all_sorted, value)
        insort(self.medium_sorted, value)


class StreamingFeatures:
    """The windows of every (device, quantity) a gateway hears; `push` gives a reading's instant features and
    remembers it. Memory is bounded: at most `max_series` windows of WINDOW floats; the least recently heard go."""

    def __init__(self, max_series: int = 50_000) -> None:
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {max_series}")
        self.max_series = max_series
        self._series: dict[tuple[str, Quantity], _Series] = {}

    def __len__(self) -> int:
        return len(self._series)

    def window(self, device: str, quantity: Quantity) -> deque[float] | tuple[()]:
        """The values kept for a series, oldest first (read only)."""
        series = self._series.get((device, quantity))
        return series.values if series is not None else ()

    def push(
        self,
        device: str,
        quantity: Quantity,
        value: float,
        family: str,
        context_temperature_c: float | None = None,
        *,
        compute: bool = True,
        remember: bool = True,
    ) -> tuple[list[float], LateContext] | None:
        """The reading's raw INSTANT_FEATURES and late context (None when `compute` is false: rules only need the
        window). A no-value zero is not remembered, nor any value when `remember` is false."""
        key = (device, quantity)
        series = self._series.pop(key, None)  # re-inserted last: dict order is recency order
        if series is None:
            series = _Series()
            while len(self._series) >= self.max_series:
                del self._series[next(iter(self._series))]
        x = _clip(value)
        result = None
        if compute:
            result = _features(
                family,
                x,
                list(series.values),
                series.all_sorted,
                series.medium_sorted,
                list(series.steps),
                series.steps_sorted,
                series.medium_steps_sorted,
                context_temperature_c,
            )
        if remember and not (x == 0.0 and family in ZERO_IS_NO_VALUE):
            series.append(x)
        self._series[key] = series
        return result
