"""When each bin will overflow, from its fill history in the series store: the alert rule "predicted overflow
before the next planned run" asks this (the fill model is the planner's, cloud/scheduler/fill.py)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np

from cloud.alerts.service import OverflowForecast
from cloud.scheduler.fill import BinHistory, FillHistoryError, fit_fill_model
from cloud.store.series import SeriesStore, SeriesStoreUnavailableError
from flurfunk.contracts import Quantity

log = logging.getLogger(__name__)

HISTORY = timedelta(days=14)
HORIZON = timedelta(days=14)  # overflows further out are no alert's business
MIN_READINGS = 6


def overflow_forecast_from_series(series: SeriesStore, history: timedelta = HISTORY) -> OverflowForecast:
    """A forecast that fits each bin's fill model on its last `history` of fill ratios and says when it reaches
    100 %; bins with too little history, or not due within the horizon, are left out (no forecast, no alert)."""

    def forecast(bins: list[str], now: datetime) -> Mapping[str, datetime]:
        overflow_at: dict[str, datetime] = {}
        for asset in bins:
            try:
                points = series.query(asset, Quantity.FILL_RATIO, now - history, now)
            except SeriesStoreUnavailableError as error:
                log.warning("overflow forecast skipped: series store unavailable (%s)", error)
                return overflow_at
            if len(points) < MIN_READINGS:
                continue
            times = np.array([point.time.timestamp() for point in points])
            fills = np.array([point.value for point in points])
            try:
                model = fit_fill_model(BinHistory(asset, times, fills))
            except FillHistoryError as error:
                log.warning("overflow forecast skipped for bin %s: %s", asset, error)
                continue
            days = model.days_until(1.0, from_s=now.timestamp())
            if math.isfinite(days) and timedelta(days=days) <= HORIZON:
                overflow_at[asset] = now + timedelta(days=days)
        return overflow_at

    return forecast
