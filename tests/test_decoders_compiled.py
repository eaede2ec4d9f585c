"""The compiled decoders (decoders/compiled.py) against the layout readers they are compiled from: same fields, same
measurements, same warnings, same errors, for encoder payloads, their mutations and any bytes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders import DecodeError, encode_quantities, model, model_ids
from decoders.js import fixed_from_integer, fixed_from_integer_exact, to_fixed
from decoders.layout import ChannelLayout, FixedLayout, FlaggedGroupsLayout

COMPILED = sorted(m for m in model_ids() if any(uplink.fast is not None for uplink in model(m).uplinks))


def _outcome(decode: object, f_port: int, payload: bytes) -> tuple:
    try:
        decoded = decode(f_port, payload)  # type: ignore[operator]
    except DecodeError as error:
        return ("error", str(error), error.offset)
    # repr tells 3 from 3.0 and keeps the key order: the vendor's data is compared type for type
    return ("decoded", repr(decoded.fields), repr(decoded.measurements), decoded.warnings)


def _same(model_id: str, f_port: int, payload: bytes) -> None:
    device = model(model_id)
    assert _outcome(device.decode, f_port, payload) == _outcome(device.decode_interpreted, f_port, payload)


def test_every_table_layout_is_compiled() -> None:
    for model_id in model_ids():
        for uplink in model(model_id).uplinks:
            if isinstance(uplink.layout, FixedLayout | FlaggedGroupsLayout | ChannelLayout):
                assert uplink.fast is not None, f"{model_id}: {uplink.name or type(uplink.layout).__name__}"
    assert len(COMPILED) >= 15


@pytest.mark.parametrize("model_id", COMPILED)
def test_compiled_equals_interpreted_on_encoder_payloads_and_their_mutations(model_id: str) -> None:
    rng = random.Random(model_id)
    device = model(model_id)
    if device.encode_with is None:
        pytest.skip("no encoder")
    for _ in range(150):
        values = {quantity: rng.uniform(-60, 1500) for quantity in device.quantities}
        try:
            f_port, payload = encode_quantities(model_id, values)
        except ValueError:
            continue  # out of this model's range
        _same(model_id, f_port, payload)
        for _ in range(4):
            mutated = bytearray(payload)
            if mutated:
                mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
            if rng.random() < 0.3:
                del mutated[rng.randint(0, len(mutated)) :]
            _same(model_id, f_port, bytes(mutated))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(COMPILED),
    st.integers(1, 255) | st.sampled_from([1, 2, 3, 5, 85, 100]),
    st.binary(max_size=60),
)
def test_compiled_equals_interpreted_on_any_bytes(model_id: str, f_port: int, payload: bytes) -> None:
    _same(model_id, f_port, payload)


def test_fixed_from_integer_equals_to_fixed_of_the_double() -> None:
    for shift in range(4):
        for digits in range(shift, 5):
            assert fixed_from_integer_exact(2.0**32, shift, digits)
            for units in [*range(-70_000, 70_000, 7), -(2**31), 2**32 - 1]:
                assert fixed_from_integer(units, shift, digits) == to_fixed(units / 10**shift, digits), (units, shift)
    assert not fixed_from_integer_exact(1e16, 2, 2)  # past 2**53 the double is no longer the decimal


@pytest.mark.parametrize(
    "value, digits, expected",
    [(0.125, 2, "0.13"), (-0.125, 2, "-0.13"), (1.005, 2, "1.00"), (-0.001, 2, "-0.00"), (-0.0, 2, "0.00"),
     (0.0, 7, "0.0000000"), (2.5, 0, "3"), (123.456, 1, "123.5")],
)  # fmt: skip
def test_to_fixed_rounds_the_exact_binary_value_half_away_from_zero(value: float, digits: int, expected: str) -> None:
    assert to_fixed(value, digits) == expected
