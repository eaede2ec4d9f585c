"""Alert configuration parser (hostile input), quiet hours and hysteresis, as properties."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.alerts.config import AlertConfigError, QuietHours, default_config, parse_config
from cloud.alerts.engine import release_time
from flurfunk.contracts import MUNICIPALITIES, Severity


@given(st.text(max_size=400))
def test_config_parser_refuses_garbage_with_its_own_error(raw: str) -> None:
    try:
        parse_config(raw, "x.toml")
    except AlertConfigError as error:
        assert str(error).startswith("x.toml:")


def test_config_errors_name_the_field() -> None:
    with pytest.raises(AlertConfigError, match=r"rules\.0"):
        parse_config(
            'municipality = "Birstein"\ncrews = [{name = "a"}]\nrules = [{id = "r", kind = "threshold", crew = "a"}]'
        )
    with pytest.raises(AlertConfigError, match="no crew"):
        parse_config(
            'municipality = "Birstein"\ncrews = [{name = "a"}]\n'
            'rules = [{id = "r", kind = "flag", flag = "x", crew = "b"}]'
        )
    with pytest.raises(AlertConfigError, match="larger than"):
        parse_config("#" * 300_000)


QUIET = QuietHours(start=time(20, 0), end=time(6, 0), min_severity=Severity.CRITICAL)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)))
def test_quiet_hours_hold_warnings_until_morning_and_never_critical(now: datetime) -> None:
    held = release_time(now, Severity.WARNING, QUIET, "Europe/Berlin")
    assert now <= held <= now + timedelta(hours=10, minutes=1)
    local = held.astimezone(ZoneInfo("Europe/Berlin")).time()
    assert held == now or local == time(6, 0)
    assert release_time(now, Severity.CRITICAL, QUIET, "Europe/Berlin") == now


@given(st.floats(min_value=-50, max_value=200, allow_nan=False))
def test_hysteresis_holds_at_least_as_long_as_it_trips(value: float) -> None:
    for town in MUNICIPALITIES:
        for rule in default_config(town).rules:
            if rule.quantity is not None and rule.limit is not None and rule.trips(value):
                assert rule.holds(value)
