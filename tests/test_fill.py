"""Bin fill forecasting: emptying detection on noisy hand-made series, the fitted rate, the forecast."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.scheduler.fill import (
    DAY_S,
    BinHistory,
    FillHistoryError,
    detect_emptyings,
    fit_fill_model,
)

START_S = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
WEEKDAY = np.array([1.3, 1.0, 0.9, 0.9, 1.0, 1.1, 0.8])


def noisy_series(seed: int, days: int = 42) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Hourly ultrasonic readings of one bin: fill with weekday rhythm, emptyings at 35-110 %, sensor noise
    (±1 %), stray echoes (lid rim, bag edges: any value), bags on top (a few hours high), and lost uplinks."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.06, 0.3)
    hours = np.arange(days * 24)
    times = START_S + hours * 3600.0
    fill = np.empty(hours.size)
    truth: list[int] = []
    level = rng.uniform(0.0, 0.5)
    empty_at = rng.uniform(0.35, 1.1)
    for k, hour in enumerate(hours):
        weekday = int((hour // 24 + 0) % 7)  # 2026-06-01 is a Monday
        level += rate * WEEKDAY[weekday] / 24.0 * rng.gamma(0.5, 2.0)
        if level >= empty_at and 6 <= hour % 24 <= 14:
            level = rng.uniform(0.0, 0.06)
            empty_at = rng.uniform(0.35, 1.1)
            truth.append(k)
        fill[k] = min(level, 1.2)
    readings = fill + rng.normal(0.0, 0.01, fill.size)
    stray = rng.random(fill.size) < 0.01
    readings[stray] = rng.uniform(0.0, 1.3, int(stray.sum()))
    for start in np.flatnonzero(rng.random(fill.size) < 0.01):  # a bag on top until it settles
        readings[start : start + 2] += 0.25
    kept = rng.random(fill.size) > 0.05
    kept[truth] = True  # the first reading after an emptying may be lost too: then the next one counts
    index_map = np.cumsum(kept) - 1
    kept_truth = [int(index_map[t]) for t in truth]
    return times[kept], readings[kept], kept_truth


def test_emptying_detection_recall_and_precision_on_noisy_series() -> None:
    found_true = found_false = missed = 0
    for seed in range(60):
        _, readings, truth = noisy_series(seed)
        detected = detect_emptyings(readings).tolist()
        matched: set[int] = set()
        for index in detected:
            hit = next((t for t in truth if abs(t - index) <= 2 and t not in matched), None)
            if hit is None:
                found_false += 1
            else:
                matched.add(hit)
                found_true += 1
        missed += len(truth) - len(matched)
    recall = found_true / (found_true + missed)
    precision = found_true / (found_true + found_false)
    print(f"emptying detection: recall {recall:.3f}, precision {precision:.3f} over {found_true + missed} emptyings")
    assert found_true + missed > 200
    assert recall >= 0.95
    assert precision >= 0.95


def test_a_single_low_echo_is_no_emptying_but_a_persistent_drop_is() -> None:
    rising = np.linspace(0.3, 0.8, 30)
    echo = rising.copy()
    echo[15] = 0.02
    assert detect_emptyings(echo).size == 0
    emptied = np.concatenate([rising[:15], np.linspace(0.02, 0.2, 15)])
    assert detect_emptyings(emptied).tolist() == [15]


def test_fitted_rate_and_weekday_factors_follow_the_series() -> None:
    rates = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        true_rate = rng.uniform(0.08, 0.2)
        hours = np.arange(35 * 24)
        weekdays = (hours // 24) % 7
        gains = true_rate * WEEKDAY[weekdays] / 24.0
        level = np.cumsum(gains) % 0.9  # emptied whenever it passes 90 %
        readings = level + rng.normal(0.0, 0.01, hours.size)
        model = fit_fill_model(BinHistory("b", START_S + hours * 3600.0, readings))
        rates.append(model.daily_rate / true_rate)
        assert model.weekday_factors[0] > model.weekday_factors[6]  # Monday's weekend waste beats Sunday
    assert np.median(rates) == pytest.approx(1.0, abs=0.1)


def test_forecast_reaches_threshold_when_the_rate_says() -> None:
    hours = np.arange(14 * 24)
    readings = 0.05 + 0.1 * hours / 24.0  # 10 % a day, every day alike
    readings = readings % 1.0
    model = fit_fill_model(BinHistory("b", START_S + hours * 3600.0, readings), weekday_prior=(1.0,) * 7)
    assert model.daily_rate == pytest.approx(0.1, rel=0.05)
    days = model.days_until(model.level + 0.3)
    assert days == pytest.approx(3.0, rel=0.1)
    assert model.days_until(0.0) == 0.0
    assert model.fill_at(model.level_time_s + 2 * DAY_S) == pytest.approx(model.level + 0.2, rel=0.1)


def test_a_short_history_falls_back_to_the_prior_rate() -> None:
    model = fit_fill_model(BinHistory("b", np.array([START_S]), np.array([0.4])), prior_rate_per_day=0.12)
    assert model.daily_rate == 0.12
    assert model.level == 0.4


def test_bad_histories_are_named() -> None:
    with pytest.raises(FillHistoryError, match="oldest first"):
        BinHistory("b-1", np.array([2.0, 1.0]), np.array([0.1, 0.2]))
    with pytest.raises(FillHistoryError, match="finite"):
        BinHistory("b-1", np.array([1.0, 2.0]), np.array([0.1, np.nan]))
    with pytest.raises(FillHistoryError, match="equal length"):
        BinHistory("b-1", np.array([1.0, 2.0]), np.array([0.1]))
    with pytest.raises(FillHistoryError, match="at most"):
        BinHistory("b-1", np.arange(60_000.0), np.zeros(60_000))
    with pytest.raises(FillHistoryError, match="no readings"):
        fit_fill_model(BinHistory("b-1", np.array([]), np.array([])))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=0, max_size=300))
def test_detection_and_fit_never_fail_on_any_series(values: list[float]) -> None:
    readings = np.array(values, dtype=float)
    detected = detect_emptyings(readings)
    assert np.all(np.diff(detected) >= 5)
    assert np.all((detected >= 5) & (detected <= max(readings.size - 5, 0)))
    if readings.size:
        model = fit_fill_model(BinHistory("b", START_S + np.arange(readings.size) * 3600.0, readings))
        assert model.daily_rate > 0
        assert np.mean(model.weekday_factors) == pytest.approx(1.0)
        assert model.days_until(2.0) > 0
