"""The batch wire format: round trips, and clear refusals of malformed, oversized and hostile input."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flurfunk.contracts import Batch, Quantity, Reading
from flurfunk.wire import BatchFormatError, decode_batch, encode_batch

from .strategies import batches

NOW = datetime(2026, 7, 15, 8, 0, 0, 123456, tzinfo=UTC)


def _batch(**changes: object) -> Batch:
    reading = Reading(device="0011223344556677", asset="wae-bin-001", quantity=Quantity.FILL_RATIO, value=0.8, time=NOW)
    return Batch(
        **{"gateway_id": "gw-wae", "first_seq": 1, "last_seq": 3, "sent_at": NOW, "readings": (reading,)} | changes
    )


def _document(batch: Batch) -> dict:
    return cbor2.loads(zlib.decompress(encode_batch(batch)))


def _encode(document: object) -> bytes:
    return zlib.compress(cbor2.dumps(document))


@given(batches())
@settings(max_examples=200)
def test_any_batch_round_trips_exactly(batch: Batch) -> None:
    assert decode_batch(encode_batch(batch)) == batch


def test_time_keeps_microseconds() -> None:
    assert decode_batch(encode_batch(_batch())).readings[0].time == NOW


def test_version_field_is_checked() -> None:
    document = _document(_batch())
    document["v"] = 99
    with pytest.raises(BatchFormatError, match="unsupported batch version 99") as caught:
        decode_batch(_encode(document))
    assert caught.value.field == "v"


def _two_readings() -> dict:
    first = Reading(device="0011223344556677", asset="wae-bin-001", quantity=Quantity.FILL_RATIO, value=0.8, time=NOW)
    second = first.model_copy(update={"asset": "wae-bin-002", "quantity": Quantity.BATTERY_PCT, "value": 90.0})
    return _document(_batch(readings=(first, second)))


def test_readings_travel_as_columns_with_each_name_once() -> None:
    document = _two_readings()
    assert document["devices"] == ["0011223344556677"]
    assert document["assets"] == ["wae-bin-001", "wae-bin-002"]
    assert document["readings"]["device"] == [0, 0]
    assert document["readings"]["asset"] == [0, 1]


def test_an_invalid_name_is_named_by_its_table_entry() -> None:
    document = _two_readings()
    document["quantities"][1] = "banana"
    with pytest.raises(BatchFormatError, match="not a valid quantity") as caught:
        decode_batch(_encode(document))
    assert caught.value.field == "quantities[1]"


@pytest.mark.parametrize(
    "column, entry, message",
    [
        ("quantity", 7, "not in the table"),
        ("value", float("nan"), "finite number"),
        ("value", float("-inf"), "finite number"),
        ("value", True, "finite number"),
        ("asset", -1, "not in the table"),
        ("time", 2**80, "out of range"),
        ("value", "0.5", "finite number"),
        ("anomaly_score", -1.0, "must not be negative"),
        ("flags", ["Sensor Fault"], "snake_case"),
        ("time", "yesterday", "epoch microseconds"),
    ],
)
def test_an_invalid_reading_is_named_by_index_and_field(column: str, entry: object, message: str) -> None:
    document = _two_readings()
    document["readings"][column][1] = entry
    with pytest.raises(BatchFormatError, match=message) as caught:
        decode_batch(_encode(document))
    assert caught.value.field == f"readings[1].{column}"


def test_columns_of_unequal_length_are_refused() -> None:
    document = _two_readings()
    document["readings"]["value"].append(0.1)
    with pytest.raises(BatchFormatError, match="has 3 entries, expected 2") as caught:
        decode_batch(_encode(document))
    assert caught.value.field == "readings.value"


def test_too_many_readings_are_refused_before_any_is_read() -> None:
    document = _two_readings()
    for column in document["readings"].values():
        column.extend(column[:1] * 30_000)
    with pytest.raises(BatchFormatError, match="more than the limit"):
        decode_batch(_encode(document))


def test_decoded_readings_equal_validated_ones_field_for_field() -> None:
    decoded = decode_batch(encode_batch(_batch())).readings[0]
    validated = Reading.model_validate(decoded.model_dump())
    assert decoded == validated
    assert decoded.model_dump() == validated.model_dump()
    assert list(decoded.model_dump()) == list(Reading.model_fields)
    assert decoded.model_fields_set == validated.model_fields_set


def test_oversized_compressed_body_is_refused_before_reading() -> None:
    with pytest.raises(BatchFormatError, match="more than the limit"):
        decode_batch(b"\0" * 2000, max_compressed=1000)


def test_decompression_bomb_is_refused() -> None:
    bomb = zlib.compress(b"\0" * 10_000_000)
    with pytest.raises(BatchFormatError, match="decompresses to more than"):
        decode_batch(bomb, max_decompressed=1_000_000)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"not compressed", "not zlib-compressed"),
        (zlib.compress(cbor2.dumps(_batch().model_dump(mode="json")))[:-4], "truncated"),
        (zlib.compress(b"\xff\xff\xff"), "not valid CBOR"),
        (zlib.compress(cbor2.dumps([1, 2, 3])), "expected a CBOR map"),
        (zlib.compress(b"") + b"junk", "trailing bytes"),
    ],
)
def test_malformed_bodies_get_a_clear_error(body: bytes, message: str) -> None:
    with pytest.raises(BatchFormatError, match=message):
        decode_batch(body)


@given(st.binary(max_size=2000))
def test_garbage_never_raises_anything_but_batch_format_error(body: bytes) -> None:
    with pytest.raises(BatchFormatError):
        decode_batch(body)


@given(
    st.recursive(
        st.none() | st.integers() | st.text() | st.binary(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_hostile_cbor_documents_get_batch_format_error(document: object) -> None:
    with pytest.raises(BatchFormatError):
        decode_batch(_encode(document))


def test_integer_values_arrive_as_floats() -> None:
    document = _two_readings()
    document["readings"]["value"][0] = 3
    decoded = decode_batch(_encode(document)).readings[0]
    assert decoded.value == 3.0 and isinstance(decoded.value, float)
    assert decoded == Reading.model_validate(decoded.model_dump())
