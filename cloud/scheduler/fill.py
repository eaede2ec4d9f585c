"""Bin fill forecasting: emptyings found in a noisy fill series, a robust fill rate with weekday and season
factors between them, and when the bin will reach a given level."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

LOCAL_ZONE = ZoneInfo("Europe/Berlin")
MAX_HISTORY_POINTS = 50_000  # a year of 10-minute readings; more is not one bin's history
DAY_S = 86_400.0

# Deposits per weekday (Monday first) seen across public bins: the prior each bin's own factors shrink towards.
DEFAULT_WEEKDAY_FACTORS = (1.25, 1.0, 0.9, 0.9, 1.0, 1.1, 0.85)
_WEEKDAY_PRIOR_DAYS = 4.0  # a bin's own weekday factor counts after about four weeks of that weekday
_MIN_RATE_PER_DAY = 0.005  # below this the bin is "never full"; keeps forecasts finite
_MAX_SEASON_TREND_PER_DAY = 0.02  # the rate may drift by at most 2 %/day (a season turning, not an event)
_MAX_FORECAST_DAYS = 120


class FillHistoryError(ValueError):
    """A fill series cannot be read (unsorted, non-finite, too long, times without zone)."""


@dataclass(frozen=True)
class BinHistory:
    """One bin's fill readings: epoch seconds (UTC) and fill ratios (0 empty, 1 full), oldest first."""

    asset: str
    times_s: np.ndarray
    fill_ratio: np.ndarray

    def __post_init__(self) -> None:
        times = np.asarray(self.times_s, dtype=float)
        fills = np.asarray(self.fill_ratio, dtype=float)
        if times.ndim != 1 or times.shape != fills.shape:
            raise FillHistoryError(f"bin {self.asset}: times and fill ratios must be 1-D of equal length")
        if times.size > MAX_HISTORY_POINTS:
            raise FillHistoryError(f"bin {self.asset}: at most {MAX_HISTORY_POINTS} readings, got {times.size}")
        if not (np.isfinite(times).all() and np.isfinite(fills).all()):
            raise FillHistoryError(f"bin {self.asset}: times and fill ratios must be finite numbers")
        if times.size > 1 and np.any(np.diff(times) < 0):
            raise FillHistoryError(f"bin {self.asset}: readings must be oldest first")
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "fill_ratio", fills)


@dataclass(frozen=True)
class FillModel:
    """How fast a bin fills: a base rate (fill ratio per day), weekday factors (mean 1) and a slow trend."""

    daily_rate: float
    weekday_factors: tuple[float, ...]
    trend_per_day: float  # relative change of the rate per day (season), from the history's own drift
    emptyings_s: tuple[float, ...]  # when the bin was emptied (epoch seconds)
    level: float  # the current fill ratio, robust to the last stray echo
    level_time_s: float
    utc_offset_s: float = 0.0  # local time's offset at the last reading; weekdays of the forecast follow it

    def rate_on(self, moment_s: float) -> float:
        """Fill ratio per day expected on the local day of `moment_s`."""
        weekday = _weekday_of_day_number(int((moment_s + self.utc_offset_s) // DAY_S))
        drift = self.trend_per_day * (moment_s - self.level_time_s) / DAY_S
        trend = math.exp(min(max(drift, -1.0), 1.0))
        return self.daily_rate * self.weekday_factors[weekday] * trend

    def fill_at(self, moment_s: float) -> float:
        """Expected fill ratio at `moment_s` (after the last reading), if nobody empties the bin."""
        fill = self.level
        t = self.level_time_s
        while t < moment_s:
            step = min(DAY_S / 4, moment_s - t)
            fill += self.rate_on(t) * step / DAY_S
            t += step
        return fill

    def days_until(self, level: float, from_s: float | None = None) -> float:
        """Days from `from_s` (default: the last reading) until the bin reaches `level`; 0 if already there,
        inf if not within the forecast horizon."""
        start = self.level_time_s if from_s is None else from_s
        fill = self.fill_at(start) if start > self.level_time_s else self.level
        if fill >= level:
            return 0.0
        t = start
        step = DAY_S / 8
        while t - start < _MAX_FORECAST_DAYS * DAY_S:
            gain = self.rate_on(t) * step / DAY_S
            if fill + gain >= level:
                return (t - start + step * (level - fill) / gain) / DAY_S
            fill += gain
            t += step
        return math.inf


def detect_emptyings(
    fill_ratio: np.ndarray, *, min_drop: float = 0.25, window: int = 5, min_gap: int = 5
) -> np.ndarray:
    """Indices of readings that are the first after an emptying.

    An emptying is a drop that persists: the median of the `window` readings from index i on lies at least
    `min_drop` below the median of the `window` readings before i. A single low echo (lid, bag edge) or a single
    high one moves neither median; a bag thrown on top after the drop does not hide it. Candidates closer than
    `min_gap` readings are one emptying: the index with the largest drop wins.
    """
    fills = np.asarray(fill_ratio, dtype=float)
    if window < 1 or min_gap < 1 or not 0 < min_drop < 2:
        raise FillHistoryError(
            f"need window >= 1, min_gap >= 1 and 0 < min_drop < 2, got {window}, {min_gap}, {min_drop}"
        )
    n = fills.size
    if n < 2 * window:
        return np.empty(0, dtype=np.intp)
    windows = np.lib.stride_tricks.sliding_window_view(fills, window)
    ordered = np.sort(windows, axis=1)  # medians[k] = median of fills[k : k + window]
    medians = (ordered[:, (window - 1) // 2] + ordered[:, window // 2]) / 2.0
    index = np.arange(window, n - window + 1)
    drops = medians[index - window] - medians[index]
    candidates = index[drops >= min_drop]
    if candidates.size == 0:
        return np.empty(0, dtype=np.intp)
    drop_of = dict(zip(index.tolist(), drops.tolist(), strict=True))
    chosen: list[int] = []
    group = [int(candidates[0])]
    for candidate in candidates[1:].tolist():
        if candidate - group[-1] < min_gap:
            group.append(candidate)
            continue
        chosen.append(max(group, key=lambda i: (drop_of[i], -i)))
        group = [candidate]
    chosen.append(max(group, key=lambda i: (drop_of[i], -i)))
    return np.array(chosen, dtype=np.intp)


def fit_fill_model(
    history: BinHistory,
    *,
    weekday_prior: tuple[float, ...] = DEFAULT_WEEKDAY_FACTORS,
    prior_rate_per_day: float = 0.1,
    min_drop: float = 0.25,
) -> FillModel:
    """A bin's fill model from its history: emptyings, then a robust rate between them.

    The series is cut at the emptyings; within each stretch, the fill at each local day's end is a median of
    that day's readings (stray echoes do not count) and daily gains come from consecutive days. The base rate is
    the median gain divided by its weekday's factor; the bin's own weekday factors are shrunk towards
    `weekday_prior`; the season trend is the Theil–Sen slope of the log gains over time. Days at or above 95 %
    are left out (a full bin cannot show its rate). Without two days in one stretch the prior rate serves.
    """
    times, fills = history.times_s, history.fill_ratio
    if len(weekday_prior) != 7 or min(weekday_prior) <= 0:
        raise FillHistoryError(f"weekday_prior must be 7 positive factors, got {weekday_prior!r}")
    prior = np.asarray(weekday_prior, dtype=float)
    prior = prior / prior.mean()
    if times.size == 0:
        raise FillHistoryError(f"bin {history.asset}: no readings to fit")
    emptyings = detect_emptyings(fills, min_drop=min_drop)
    bounds = [0, *emptyings.tolist(), times.size]

    gains: list[float] = []
    gain_days: list[float] = []
    gain_weekdays: list[int] = []
    local_days = _local_day_numbers(times)
    for start, end in itertools.pairwise(bounds):
        day_numbers = local_days[start:end]
        stretch = fills[start:end]
        unique_days = np.unique(day_numbers)
        if unique_days.size < 2:
            continue
        # Days are contiguous runs of readings; a plain-Python median per run is ~50x faster than np.median here.
        cuts = [0, *(np.flatnonzero(np.diff(day_numbers)) + 1).tolist(), len(day_numbers)]
        values = stretch.tolist()
        day_levels = np.array([_median(values[a:b]) for a, b in itertools.pairwise(cuts)])
        stretch_times = times[start:end].tolist()
        day_times = np.array([_median(stretch_times[a:b]) for a, b in itertools.pairwise(cuts)])
        # A day's median level belongs to its median reading time: a gain over the time between two such points,
        # scaled to a day, is unbiased even on the partial days next to an emptying.
        for k in range(1, unique_days.size):
            if unique_days[k] - unique_days[k - 1] != 1 or day_levels[k] >= 0.95:
                continue
            elapsed_days = (day_times[k] - day_times[k - 1]) / DAY_S
            if elapsed_days < 0.25:
                continue
            gains.append(float(day_levels[k] - day_levels[k - 1]) / elapsed_days)
            gain_days.append(float(unique_days[k]))
            gain_weekdays.append(int(_weekday_of_day_number(int(unique_days[k]))))

    level = _median(fills[bounds[-2] :][-3:].tolist())
    level_time = float(times[-1])
    offset = _utc_offset_s(level_time)
    if len(gains) < 2:
        return FillModel(
            prior_rate_per_day, tuple(prior.tolist()), 0.0, _times_of(times, emptyings), level, level_time, offset
        )

    gain_array = np.maximum(np.array(gains), 0.0)
    weekday_array = np.array(gain_weekdays)
    normalised = gain_array / prior[weekday_array]
    base = max(_median(normalised.tolist()), _MIN_RATE_PER_DAY)

    factors = prior.copy()
    for weekday in range(7):
        own = normalised[weekday_array == weekday]
        if own.size:
            observed = _median(own.tolist()) / base * prior[weekday]
            factors[weekday] = (own.size * observed + _WEEKDAY_PRIOR_DAYS * prior[weekday]) / (
                own.size + _WEEKDAY_PRIOR_DAYS
            )
    factors = np.maximum(factors, 0.05)
    factors = factors / factors.mean()

    trend = _theil_sen_slope(np.array(gain_days), np.log(np.maximum(normalised, base * 0.2)))
    trend = float(np.clip(trend, -_MAX_SEASON_TREND_PER_DAY, _MAX_SEASON_TREND_PER_DAY))
    return FillModel(base, tuple(factors.tolist()), trend, _times_of(times, emptyings), level, level_time, offset)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def _times_of(times: np.ndarray, indices: np.ndarray) -> tuple[float, ...]:
    return tuple(float(times[i]) for i in indices)


def _local_day_numbers(times_s: np.ndarray) -> np.ndarray:
    """Local (Berlin) calendar day of each time as days since 1970-01-01."""
    if times_s.size == 0:
        return np.empty(0, dtype=np.int64)
    first, last = _utc_offset_s(float(times_s[0])), _utc_offset_s(float(times_s[-1]))
    # Without a clock change inside the history one offset serves all readings.
    same = first == last
    offsets = np.full(times_s.size, first) if same else np.array([_utc_offset_s(float(t)) for t in times_s])
    return np.floor((times_s + offsets) / DAY_S).astype(np.int64)


def _utc_offset_s(moment_s: float) -> float:
    offset = datetime.fromtimestamp(moment_s, UTC).astimezone(LOCAL_ZONE).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def _weekday_of_day_number(day_number: int) -> int:
    return (day_number + 3) % 7  # 1970-01-01 was a Thursday (3)


def _theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the pairwise slopes: robust to a few wild points (an event, a misread day)."""
    if x.size < 3:
        return 0.0
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    upper = np.triu(np.abs(dx) > 0, k=1)
    slopes = dy[upper] / dx[upper]
    return float(np.median(slopes)) if slopes.size else 0.0
