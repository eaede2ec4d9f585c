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


def test_an_invalid_reading_is_named_by_index_and_field() -> None:
    document = _document(_batch())
    document["readings"].append({**document["readings"][0], "quantity": "banana"})
    with pytest.raises(BatchFormatError) as caught:
        decode_batch(_encode(document))
    assert caught.value.field == "readings[1].quantity"


def test_a_bad_timestamp_is_named() -> None:
    document = _document(_batch())
    document["readings"][0]["time"] = "yesterday"
    with pytest.raises(BatchFormatError, match="epoch microseconds") as caught:
        decode_batch(_encode(document))
    assert caught.value.field == "readings[0].time"


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
