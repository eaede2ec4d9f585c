"""The contracts: validation rules, the task state machine, and round trips of every model."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from flurfunk.contracts import (
    QUANTITY_UNITS,
    Alert,
    Asset,
    AssetKind,
    Batch,
    Depot,
    Device,
    InvalidTransitionError,
    Quantity,
    Reading,
    Task,
    TaskKind,
    TaskState,
    Uplink,
)

from .strategies import alerts, assets, batches, depots, devices, readings, tasks, uplinks

NOW = datetime(2026, 7, 15, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "model, strategy",
    [
        (Uplink, uplinks()),
        (Reading, readings()),
        (Batch, batches()),
        (Task, tasks()),
        (Alert, alerts()),
        (Asset, assets()),
        (Device, devices()),
        (Depot, depots()),
    ],
)
def test_every_model_round_trips_through_json(model: type, strategy: st.SearchStrategy) -> None:
    @given(strategy)
    def round_trip(instance: object) -> None:
        assert model.model_validate_json(instance.model_dump_json()) == instance
        assert model.model_validate(instance.model_dump()) == instance

    round_trip()


def test_every_quantity_has_a_unit() -> None:
    assert set(QUANTITY_UNITS) == set(Quantity)
    assert Quantity.DISTANCE_M.unit == "m"


def test_dev_eui_is_normalised_and_checked() -> None:
    reading = Reading(device="00-11-22-33-44-55-66-AA", asset="b1", quantity="fill_ratio", value=0.4, time=NOW)
    assert reading.device == "00112233445566aa"
    with pytest.raises(ValidationError, match="EUI-64"):
        Reading(device="0011", asset="b1", quantity="fill_ratio", value=0.4, time=NOW)


def test_reading_refuses_naive_time_nan_and_unknown_quantity() -> None:
    base = {"device": "0011223344556677", "asset": "b1", "quantity": "fill_ratio", "value": 0.4, "time": NOW}
    with pytest.raises(ValidationError, match="time zone"):
        Reading(**{**base, "time": NOW.replace(tzinfo=None)})
    with pytest.raises(ValidationError, match="finite"):
        Reading(**{**base, "value": float("nan")})
    with pytest.raises(ValidationError, match="quantity"):
        Reading(**{**base, "quantity": "fill_level_percent"})


def test_reading_time_is_converted_to_utc() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 7, 15, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    reading = Reading(device="0011223344556677", asset="b1", quantity="rain_mm", value=1.0, time=local)
    assert reading.time == NOW and reading.time.tzinfo == UTC


def test_batch_refuses_reversed_sequence_range() -> None:
    with pytest.raises(ValidationError, match="before first_seq"):
        Batch(gateway_id="gw-1", first_seq=5, last_seq=4, sent_at=NOW)


def _task(**changes: object) -> Task:
    fields = {
        "id": "t1",
        "kind": TaskKind.COLLECT,
        "asset": "wae-bin-001",
        "municipality": "Wächtersbach",
        "due_from": NOW,
        "due_until": NOW + timedelta(hours=8),
        "priority": 50,
        "reason": "Behälter ist voll.",
    }
    return Task(**{**fields, **changes})


def test_task_walks_its_state_machine() -> None:
    task = _task()
    done = task.transition(TaskState.ASSIGNED).transition(TaskState.IN_PROGRESS).transition(TaskState.DONE)
    assert done.state is TaskState.DONE
    skipped = task.transition(TaskState.ASSIGNED).transition(TaskState.SKIPPED, skip_reason="Zufahrt blockiert")
    assert skipped.skip_reason == "Zufahrt blockiert"


@pytest.mark.parametrize(
    "start, target",
    [
        (TaskState.PLANNED, TaskState.DONE),
        (TaskState.DONE, TaskState.PLANNED),
        (TaskState.CANCELLED, TaskState.ASSIGNED),
        (TaskState.IN_PROGRESS, TaskState.CANCELLED),
    ],
)
def test_task_refuses_edges_it_does_not_have(start: TaskState, target: TaskState) -> None:
    task = _task(state=start, skip_reason="x" if start is TaskState.SKIPPED else None)
    with pytest.raises(InvalidTransitionError, match=f"from {start} to {target}"):
        task.transition(target, skip_reason="x")


def test_skipping_needs_a_reason() -> None:
    with pytest.raises(InvalidTransitionError, match="needs a reason"):
        _task(state=TaskState.ASSIGNED).transition(TaskState.SKIPPED)
    with pytest.raises(ValidationError, match="skip_reason"):
        _task(state=TaskState.SKIPPED)


def test_asset_and_device_ids_are_checked() -> None:
    with pytest.raises(ValidationError, match="id"):
        Asset(id="bin 1", kind=AssetKind.BIN, municipality="Bad Orb", village="Bad Orb", latitude=50.2, longitude=9.3)
    with pytest.raises(ValidationError, match="model_id"):
        Device(dev_eui="0011223344556677", model_id="Dragino LDDS75", asset="b1", report_interval_s=3600)


# --- Reading.from_trusted: the fast constructor equals the validated one --------------------------------------

_READING_ARGUMENTS = st.fixed_dictionaries(
    {
        "device": st.one_of(
            st.from_regex(r"\A[0-9a-f]{16}\Z"),
            st.from_regex(r"\A[0-9A-F]{2}(-[0-9A-F]{2}){7}\Z"),  # normalised by both
            st.text(max_size=20),  # mostly refused by both
        ),
        "asset": st.text(max_size=70),
        "quantity": st.sampled_from(list(Quantity))
        | st.sampled_from([q.value for q in Quantity])
        | st.text(max_size=8),
        "value": st.floats() | st.integers(-(2**53), 2**53),
        "time": st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()),
        "anomaly_score": st.floats(),
        "flags": st.lists(st.sampled_from(["spike", "drift", "Bad Flag", "stuck_at", ""]), max_size=3).map(tuple),
    }
)


@given(_READING_ARGUMENTS)
def test_from_trusted_equals_the_validated_reading_or_refuses_alike(arguments: dict) -> None:
    try:
        validated = Reading(**arguments)
    except ValidationError:
        with pytest.raises(ValueError):
            Reading.from_trusted(**arguments)
        return
    fast = Reading.from_trusted(**arguments)
    assert fast == validated
    assert type(fast.value) is float and fast.time.tzinfo is UTC and type(fast.quantity) is Quantity
    assert fast.model_dump() == validated.model_dump()
    assert Reading.model_validate_json(fast.model_dump_json()) == fast


def test_from_trusted_says_what_was_wrong() -> None:
    base = {"device": "0011223344556677", "asset": "b1", "quantity": Quantity.RAIN_MM, "value": 1.0, "time": NOW}
    with pytest.raises(ValueError, match="finite"):
        Reading.from_trusted(**{**base, "value": float("inf")})
    with pytest.raises(ValueError, match="time zone"):
        Reading.from_trusted(**{**base, "time": NOW.replace(tzinfo=None)})
    with pytest.raises(ValueError, match="EUI-64"):
        Reading.from_trusted(**{**base, "device": "0011"})
    with pytest.raises(ValueError, match="asset"):
        Reading.from_trusted(**{**base, "asset": ""})
    with pytest.raises(ValueError, match="number"):
        Reading.from_trusted(**{**base, "value": "1.0"})


@given(_READING_ARGUMENTS, st.lists(st.tuples(st.sampled_from(list(Quantity)), st.floats() | st.integers(-99, 99))))
def test_from_trusted_values_equals_validated_readings_or_refuses_alike(arguments: dict, values: list) -> None:
    shared = {key: arguments[key] for key in ("device", "asset", "time")}
    try:
        expected = [Reading(**shared, quantity=quantity, value=value) for quantity, value in values]
    except ValidationError:
        with pytest.raises(ValueError):
            Reading.from_trusted_values(**shared, values=values)
        return
    assert Reading.from_trusted_values(**shared, values=values) == expected


def test_fast_readings_stay_independent_when_one_is_copied_with_changes() -> None:
    first, second = Reading.from_trusted_values(
        "0011223344556677", "b1", NOW, [(Quantity.RAIN_MM, 1.0), (Quantity.AIR_TEMPERATURE_C, 20.0)]
    )
    changed = first.model_copy(update={"value": 2.0})
    assert (changed.value, first.value, second.value) == (2.0, 1.0, 20.0)
    assert first.model_fields_set == second.model_fields_set == set(Reading.model_fields)


@given(
    _READING_ARGUMENTS,
    st.lists(st.tuples(st.sampled_from(list(Quantity)), st.floats(allow_nan=False, allow_infinity=False))),
)
def test_from_checked_values_equals_validated_readings_or_refuses_alike(arguments: dict, values: list) -> None:
    # the pairs are what a compiled decoder guarantees (Quantity members, finite floats); device, asset and time
    # are checked as everywhere
    shared = {key: arguments[key] for key in ("device", "asset", "time")}
    quantities, numbers = tuple(q for q, _ in values), tuple(v for _, v in values)
    try:
        expected = [Reading(**shared, quantity=quantity, value=value) for quantity, value in values]
    except ValidationError:
        with pytest.raises(ValueError):
            Reading.from_checked_values(**shared, quantities=quantities, values=numbers)
        return
    made = Reading.from_checked_values(**shared, quantities=quantities, values=numbers)
    assert made == expected
    assert [reading.model_dump() for reading in made] == [reading.model_dump() for reading in expected]


def test_a_fast_reading_behaves_as_a_validated_one_where_pydantic_reads_its_own_slots() -> None:
    # fast readings leave pydantic's bookkeeping slots empty; Reading.__getattr__ answers for them
    fast = Reading.from_trusted("0011223344556677", "b1", Quantity.RAIN_MM, 1.5, NOW)
    validated = Reading(device="0011223344556677", asset="b1", quantity=Quantity.RAIN_MM, value=1.5, time=NOW)
    assert fast == validated and validated == fast and hash(fast) == hash(validated)
    assert fast.model_fields_set == set(Reading.model_fields)  # as before: every field counts as set
    assert (fast.__pydantic_extra__, fast.__pydantic_private__) == (None, None)
    assert repr(fast) == repr(validated)
    assert pickle.loads(pickle.dumps(fast)) == validated
    assert copy.deepcopy(fast) == validated and copy.copy(fast) == validated
    assert fast.model_copy(update={"value": 2.0}).model_fields_set == set(Reading.model_fields)
    assert fast.model_dump_json() == validated.model_dump_json()
    with pytest.raises(AttributeError, match="no_such_field"):
        fast.no_such_field  # noqa: B018
