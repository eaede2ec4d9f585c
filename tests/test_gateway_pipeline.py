"""The gateway pipeline: dedup, unknown devices, decode errors, edge checks and the bin fill ratio."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import decoders
from decoders.decoded import Decoded, Measurement
from decoders.errors import DecodeError
from flurfunk.contracts import Asset, AssetKind, Device, Quantity, Reading, Uplink
from gateway.buffer import DurableBuffer, all_readings
from gateway.checks import FILL_MARGIN, estimate_fill
from gateway.pipeline import DecodeFunction, DeviceBinding, DuplicateFilter, Pipeline

NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
BIN_SENSOR = "24e124136b502217"
SOIL_SENSOR = "a84041000181c061"
STRANGER = "0000000000000bad"
BIN_MODEL = "milesight-iot/em310-udl"
SOIL_MODEL = "dragino/lse01"

BIN = Asset(
    id="bin-wb-001",
    kind=AssetKind.BIN,
    municipality="Wächtersbach",
    village="Aufenau",
    latitude=50.26,
    longitude=9.29,
    capacity_l=1100,
    sensor_to_bottom_m=1.2,
    sensor_to_full_m=0.2,
)
TREE = Asset(
    id="tree-bo-017",
    kind=AssetKind.TREE,
    municipality="Bad Orb",
    village="Bad Orb",
    latitude=50.22,
    longitude=9.35,
)


def fake_decode(model_id: str, f_port: int, payload: bytes) -> Decoded:
    """A stand-in with the decoders API: bins send distance in mm (2 bytes), soil sensors battery in mV (2 bytes)."""
    if len(payload) != 2:
        raise DecodeError(model_id, f_port, f"expected 2 bytes, got {len(payload)}")
    number = int.from_bytes(payload, "big")
    if model_id == BIN_MODEL:
        measurements = (Measurement(Quantity.DISTANCE_M, number / 1000),)
    else:
        measurements = (Measurement(Quantity.BATTERY_V, number / 1000),)
    return Decoded(model_id=model_id, f_port=f_port, fields={}, measurements=measurements)


def uplink(dev_eui: str = BIN_SENSOR, f_cnt: int = 1, payload: bytes = b"\x02\xbc", **changes: object) -> Uplink:
    fields: dict[str, object] = {
        "dev_eui": dev_eui,
        "f_port": 85,
        "f_cnt": f_cnt,
        "payload": payload,
        "received_at": NOW,
        "source": "simulator",
    }
    return Uplink.model_validate({**fields, **changes})


def mm(distance_m: float) -> bytes:
    return round(distance_m * 1000).to_bytes(2, "big")


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[DurableBuffer]:
    with DurableBuffer(tmp_path / "buffer.db", quota_bytes=10_000_000) as store:
        yield store


def make_pipeline(buffer: DurableBuffer, decode: DecodeFunction = fake_decode, **options: object) -> Pipeline:
    devices = {
        BIN_SENSOR: DeviceBinding(
            Device(dev_eui=BIN_SENSOR, model_id=BIN_MODEL, asset=BIN.id, report_interval_s=3600), BIN
        ),
        "A8-40-41-00-01-81-C0-61": DeviceBinding(
            Device(dev_eui=SOIL_SENSOR, model_id=SOIL_MODEL, asset=TREE.id, report_interval_s=3600), TREE
        ),
    }
    return Pipeline("gw-wb-01", devices, buffer, decode=decode, clock=lambda: NOW, **options)  # type: ignore[arg-type]


def stored(buffer: DurableBuffer) -> list[Reading]:
    return all_readings(buffer.pending(max_readings=100_000))


def value_of(readings: list[Reading], quantity: Quantity) -> Reading:
    (match,) = [reading for reading in readings if reading.quantity is quantity]
    return match


def test_bin_distance_becomes_a_fill_ratio_reading_at_the_uplink_time(buffer: DurableBuffer) -> None:
    report = make_pipeline(buffer).handle_many([uplink(payload=mm(0.7))])
    assert (report.accepted, report.readings, report.dropped) == (1, 2, {})
    readings = stored(buffer)
    assert value_of(readings, Quantity.DISTANCE_M).value == pytest.approx(0.7)
    fill = value_of(readings, Quantity.FILL_RATIO)
    assert fill.value == pytest.approx(0.5)
    assert (fill.asset, fill.device, fill.time, fill.flags) == (BIN.id, BIN_SENSOR, NOW, ())


@pytest.mark.parametrize(
    ("distance_m", "fill_ratio", "flags"),
    [
        (0.2, 1.0, ()),  # at the full mark
        (1.2, 0.0, ()),  # empty
        (1.22, 0.0, ()),  # a little past empty: echo noise, clamped, not flagged
        (1.5, 0.0, ("out_of_range",)),  # far below the bottom: the sensor is wrong or moved
        (0.1, 1.0, ("out_of_range",)),  # overfull by more than the margin
    ],
)
def test_fill_ratio_is_clamped_and_flagged_when_far_outside(
    buffer: DurableBuffer, distance_m: float, fill_ratio: float, flags: tuple[str, ...]
) -> None:
    make_pipeline(buffer).handle_many([uplink(payload=mm(distance_m))])
    fill = value_of(stored(buffer), Quantity.FILL_RATIO)
    assert fill.value == pytest.approx(fill_ratio)
    assert fill.flags == flags


@given(
    distance=st.floats(min_value=0, max_value=20),
    full=st.floats(min_value=0, max_value=2),
    height=st.floats(min_value=0.05, max_value=3),
)
def test_fill_estimate_stays_within_zero_and_one_and_flags_only_beyond_the_margin(
    distance: float, full: float, height: float
) -> None:
    estimate = estimate_fill(distance, full + height, full)
    assert 0.0 <= estimate.fill_ratio <= 1.0
    assert estimate.implausible == (estimate.raw < -FILL_MARGIN or estimate.raw > 1 + FILL_MARGIN)
    if 0.0 <= estimate.raw <= 1.0:
        assert estimate.fill_ratio == pytest.approx(estimate.raw)
    closer = estimate_fill(distance * 0.5, full + height, full)
    assert closer.fill_ratio >= estimate.fill_ratio  # waste nearer the sensor never means emptier


def test_a_frame_heard_twice_is_stored_once(buffer: DurableBuffer) -> None:
    pipeline = make_pipeline(buffer)
    first = pipeline.handle_many([uplink(f_cnt=7), uplink(f_cnt=7, received_at=NOW + timedelta(seconds=1))])
    again = pipeline.handle_many([uplink(f_cnt=7, received_at=NOW + timedelta(minutes=2))])
    assert (first.accepted, first.duplicates, again.accepted, again.duplicates) == (1, 1, 0, 1)
    assert buffer.stats().entries == 1


def test_same_counter_with_other_payload_or_after_the_window_is_a_new_frame(buffer: DurableBuffer) -> None:
    pipeline = make_pipeline(buffer, dedup=DuplicateFilter(window=timedelta(minutes=10)))
    report = pipeline.handle_many(
        [
            uplink(f_cnt=7, payload=mm(0.5)),
            uplink(f_cnt=7, payload=mm(0.6)),  # a device reset restarts f_cnt: different data is a new frame
            uplink(f_cnt=7, payload=mm(0.5), received_at=NOW + timedelta(minutes=11)),
            uplink(dev_eui=SOIL_SENSOR, f_cnt=7, payload=mm(0.5)),
        ]
    )
    assert (report.accepted, report.duplicates) == (4, 0)


def remember(dedup: DuplicateFilter, frame: Uplink) -> None:
    dedup.remember(dedup.key_of(frame), frame.received_at)


def seen_before(dedup: DuplicateFilter, frame: Uplink) -> bool:
    return dedup.is_duplicate(dedup.key_of(frame), frame.received_at)


def test_duplicate_filter_memory_is_bounded() -> None:
    dedup = DuplicateFilter(window=timedelta(days=1), capacity=100)
    for f_cnt in range(1_000):
        assert not seen_before(dedup, uplink(f_cnt=f_cnt))
        remember(dedup, uplink(f_cnt=f_cnt))
    assert len(dedup) == 100
    assert seen_before(dedup, uplink(f_cnt=999))
    assert not seen_before(dedup, uplink(f_cnt=0))  # long forgotten


def test_duplicate_filter_checking_remembers_nothing() -> None:
    dedup = DuplicateFilter()
    assert not seen_before(dedup, uplink(f_cnt=3))
    assert not seen_before(dedup, uplink(f_cnt=3))
    assert len(dedup) == 0


def test_old_keys_leave_the_duplicate_filter_once_the_window_has_passed() -> None:
    dedup = DuplicateFilter(window=timedelta(minutes=10), capacity=1_000)
    for f_cnt in range(50):
        remember(dedup, uplink(f_cnt=f_cnt))
    remember(dedup, uplink(f_cnt=50, received_at=NOW + timedelta(minutes=30)))
    assert len(dedup) == 1


def test_unknown_device_is_counted_and_logged_with_its_ids(
    buffer: DurableBuffer, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = make_pipeline(buffer)
    with caplog.at_level(logging.WARNING, logger="gateway.pipeline"):
        report = pipeline.handle_many([uplink(dev_eui=STRANGER, f_cnt=42), uplink(f_cnt=43)])
    assert (report.accepted, report.dropped) == (1, {"unknown_device": 1})
    (record,) = [r for r in caplog.records if getattr(r, "reason", None) == "unknown_device"]
    assert (record.dev_eui, record.f_cnt) == (STRANGER, 42)  # type: ignore[attr-defined]
    assert STRANGER in record.getMessage() and "f_cnt=42" in record.getMessage()
    assert pipeline.dropped_totals == {"unknown_device": 1}


def test_decode_errors_of_any_kind_are_counted_not_raised(buffer: DurableBuffer) -> None:
    def brittle_decode(model_id: str, f_port: int, payload: bytes) -> Decoded:
        if payload == b"\x00":
            raise ZeroDivisionError("a decoder bug")
        return fake_decode(model_id, f_port, payload)

    pipeline = make_pipeline(buffer, decode=brittle_decode)
    report = pipeline.handle_many(
        [uplink(f_cnt=1, payload=b"\x01\x02\x03"), uplink(f_cnt=2, payload=b"\x00"), uplink(f_cnt=3)]
    )
    assert (report.accepted, report.dropped) == (1, {"decode_error": 2})
    assert buffer.stats().entries == 1


def test_something_that_is_not_an_uplink_is_counted_as_invalid(buffer: DurableBuffer) -> None:
    report = make_pipeline(buffer).handle_many([b"\x02\x01\x00", uplink()])  # type: ignore[list-item]
    assert (report.accepted, report.dropped) == (1, {"invalid_uplink": 1})


def test_physically_impossible_values_are_kept_and_flagged(buffer: DurableBuffer) -> None:
    report = make_pipeline(buffer).handle_many([uplink(dev_eui=SOIL_SENSOR, payload=(40_000).to_bytes(2, "big"))])
    battery = value_of(stored(buffer), Quantity.BATTERY_V)
    assert battery.value == pytest.approx(40.0)
    assert battery.flags == ("out_of_range",)
    assert report.flagged == {"out_of_range": 1}


@pytest.mark.parametrize(
    ("received_at", "unsynced"),
    [
        (datetime(2019, 12, 31, 23, 59, tzinfo=UTC), True),
        (datetime(1970, 1, 1, 0, 0, 42, tzinfo=UTC), True),  # a Pi without a real-time clock, before NTP
        (NOW + timedelta(days=2), True),
        (NOW + timedelta(hours=1), False),
        (NOW - timedelta(days=30), False),  # old but plausible: data buffered on a sensor
    ],
)
def test_absurd_uplink_times_are_flagged_clock_unsynced_not_dropped(
    buffer: DurableBuffer, received_at: datetime, unsynced: bool
) -> None:
    report = make_pipeline(buffer).handle_many([uplink(received_at=received_at)])
    assert report.accepted == 1
    readings = stored(buffer)
    assert len(readings) == 2
    assert all(("clock_unsynced" in reading.flags) == unsynced for reading in readings)
    assert all(reading.time == received_at for reading in readings)


def test_a_full_buffer_drops_with_reason_and_keeps_what_it_has(tmp_path: Path) -> None:
    with DurableBuffer(tmp_path / "probe.db", quota_bytes=10_000_000) as probe:
        make_pipeline(probe).handle_many([uplink(payload=mm(0.7))])
        entry_bytes = probe.stats().bytes
    with DurableBuffer(tmp_path / "buffer.db", quota_bytes=2 * entry_bytes) as small:
        pipeline = make_pipeline(small)
        report = pipeline.handle_many([uplink(f_cnt=n, payload=mm(0.7)) for n in range(3)])
        assert (report.accepted, report.dropped) == (2, {"buffer_full": 1})
        later = pipeline.handle_many([uplink(f_cnt=10, payload=mm(0.7))])
        assert later.dropped == {"buffer_full": 1}
        assert pipeline.dropped_totals == {"buffer_full": 2}
        assert [entry.seq for entry in small.pending(100)] == [1, 2]


def test_an_uplink_the_full_buffer_refused_is_stored_when_sent_again(tmp_path: Path) -> None:
    # The bug: the filter remembered the frame before the buffer refused it, so the source's retry passed as a
    # "duplicate" and was acknowledged though it was never stored.
    with DurableBuffer(tmp_path / "probe.db", quota_bytes=10_000_000) as probe:
        make_pipeline(probe).handle_many([uplink(payload=mm(0.7))])
        entry_bytes = probe.stats().bytes
    with DurableBuffer(tmp_path / "buffer.db", quota_bytes=entry_bytes) as small:
        pipeline = make_pipeline(small)
        assert pipeline.handle_many([uplink(f_cnt=1, payload=mm(0.7))]).accepted == 1
        refused = pipeline.handle_many([uplink(f_cnt=2, payload=mm(0.8))])
        assert (refused.accepted, refused.duplicates, refused.dropped) == (0, 0, {"buffer_full": 1})
        retried = pipeline.handle_many([uplink(f_cnt=2, payload=mm(0.8))])
        assert (retried.duplicates, retried.dropped) == (0, {"buffer_full": 1})  # refused again, not "a duplicate"
        small.ack(small.pending(100)[-1].seq)  # the cloud took the first entry: room again
        stored_now = pipeline.handle_many([uplink(f_cnt=2, payload=mm(0.8))])
        assert (stored_now.accepted, stored_now.duplicates) == (1, 0)
        assert value_of(stored(small), Quantity.DISTANCE_M).value == pytest.approx(0.8)
        again = pipeline.handle_many([uplink(f_cnt=2, payload=mm(0.8))])
        assert (again.accepted, again.duplicates) == (0, 1)  # once stored, a repeat is a duplicate


def test_a_failing_disk_leaves_no_key_behind(buffer: DurableBuffer) -> None:
    pipeline = make_pipeline(buffer)
    original = buffer.append_many

    def broken(groups: object) -> object:
        raise OSError("disk I/O error")

    buffer.append_many = broken  # type: ignore[method-assign]
    with pytest.raises(OSError):
        pipeline.handle_many([uplink(f_cnt=5)])
    buffer.append_many = original  # type: ignore[method-assign]
    report = pipeline.handle_many([uplink(f_cnt=5)])
    assert (report.accepted, report.duplicates) == (1, 0)


def test_one_call_stores_one_entry_per_uplink_in_order(buffer: DurableBuffer) -> None:
    make_pipeline(buffer).handle_many([uplink(f_cnt=n, payload=mm(0.3 + n / 10)) for n in range(5)])
    entries = buffer.pending(100)
    assert len(entries) == 5
    distances = [value_of(list(entry.readings), Quantity.DISTANCE_M).value for entry in entries]
    assert distances == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])


def test_a_binding_must_name_the_asset_its_device_watches() -> None:
    with pytest.raises(ValueError, match="watches asset"):
        DeviceBinding(Device(dev_eui=BIN_SENSOR, model_id=BIN_MODEL, asset="other", report_interval_s=60), BIN)


def test_real_decoder_turns_the_vendor_example_into_distance_and_fill(buffer: DurableBuffer) -> None:
    if not hasattr(decoders, "decode"):
        pytest.skip("decoders.decode is not there yet")
    pipeline = make_pipeline(buffer, decode=decoders.decode)
    # TTN device repository example for the EM310-UDL: battery 92 %, distance 2116 mm, tilted.
    report = pipeline.handle_many([uplink(payload=bytes.fromhex("01755c03824408040001"))])
    assert report.accepted == 1
    readings = stored(buffer)
    assert value_of(readings, Quantity.DISTANCE_M).value == pytest.approx(2.116)
    fill = value_of(readings, Quantity.FILL_RATIO)
    assert (fill.value, fill.flags) == (0.0, ("out_of_range",))  # 2.1 m is below this 1.2 m deep bin's bottom
