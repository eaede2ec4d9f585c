"""The contracts: validation rules, the task state machine, and round trips of every model."""

from __future__ import annotations

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
