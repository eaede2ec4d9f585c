"""Properties of the decoders: encode→decode round trips, and any bytes on any fPort give a result or a DecodeError."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders import Decoded, DecodeError, UnknownModelError, decode, encode_quantities, model_ids
from flurfunk.contracts import Quantity

EM310 = "milesight-iot/em310-udl"
LSE01 = "dragino/lse01"
ATM41 = "decentlab/dl-atm41"


def _in(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


# What each model can carry (its measuring range within what the payload can hold), and the payload's step.
RANGES: dict[str, dict[Quantity, tuple[st.SearchStrategy[float], float]]] = {
    EM310: {
        Quantity.DISTANCE_M: (_in(0, 65.535), 0.001),
        Quantity.BATTERY_PCT: (_in(0, 100), 1),
        Quantity.TILT: (st.sampled_from([0.0, 1.0]), 0),
    },
    LSE01: {
        Quantity.SOIL_VWC: (_in(0, 1), 0.0001),
        Quantity.SOIL_TEMPERATURE_C: (_in(-40, 85), 0.01),
        Quantity.SOIL_EC_US_CM: (_in(0, 65535), 1),
        Quantity.BATTERY_V: (_in(0, 16.383), 0.001),
    },
    ATM41: {
        Quantity.SOLAR_RADIATION_W_M2: (_in(0, 32767), 1),
        Quantity.RAIN_MM: (_in(0, 32.767), 0.001),
        Quantity.WIND_SPEED_MS: (_in(0, 327.67), 0.01),
        Quantity.WIND_DIRECTION_DEG: (_in(0, 360), 0.1),
        Quantity.AIR_TEMPERATURE_C: (_in(-50, 60), 0.1),
        Quantity.PRESSURE_HPA: (_in(500, 1100), 0.1),
        Quantity.HUMIDITY_PCT: (_in(0, 100), 0.1),
        Quantity.DEVICE_TEMPERATURE_C: (_in(-50, 60), 0.1),
        Quantity.BATTERY_V: (_in(0, 65.535), 0.001),
    },
}


@st.composite
def model_values(draw: st.DrawFn) -> tuple[str, dict[Quantity, float]]:
    model_id = draw(st.sampled_from(sorted(RANGES)))
    return model_id, {quantity: draw(values) for quantity, (values, _step) in RANGES[model_id].items()}


def _within_step(decoded: float, given: float, step: float) -> bool:
    return abs(decoded - given) <= step / 2 + 1e-9 * max(1.0, abs(given))


@given(model_values())
@settings(max_examples=300)
def test_encode_then_decode_gives_the_values_back_within_the_payload_resolution(
    case: tuple[str, dict[Quantity, float]],
) -> None:
    model_id, values = case
    port, payload = encode_quantities(model_id, values)
    decoded = decode(model_id, port, payload)
    measured = {measurement.quantity: measurement.value for measurement in decoded.measurements}
    assert set(values) <= set(measured)
    for quantity, value in values.items():
        assert _within_step(measured[quantity], value, RANGES[model_id][quantity][1]), (quantity, value)
    assert decoded.warnings == ()


def _json_shape(value: object) -> object:
    if isinstance(value, dict):
        return {key: _json_shape(item) for key, item in value.items()}
    return (type(value).__name__, value)


@given(st.sampled_from(model_ids()), st.integers(-3, 300), st.binary(max_size=300))
@settings(max_examples=1500)
def test_any_bytes_on_any_port_decode_or_raise_decode_error(model_id: str, f_port: int, payload: bytes) -> None:
    try:
        decoded = decode(model_id, f_port, payload)
    except DecodeError as error:
        assert error.model_id == model_id
        assert error.f_port == f_port
        assert error.reason
        assert error.offset is None or 0 <= error.offset <= len(payload)
        return
    assert isinstance(decoded, Decoded)
    # the fields survive a JSON round trip unchanged, type for type (what The Things Stack compares)
    assert _json_shape(json.loads(json.dumps(decoded.fields))) == _json_shape(decoded.fields)
    assert all(math.isfinite(measurement.value) for measurement in decoded.measurements)
    assert len({measurement.quantity for measurement in decoded.measurements}) == len(decoded.measurements)


@given(model_values(), st.data())
@settings(max_examples=300)
def test_a_payload_cut_short_is_refused_at_the_offset_where_a_value_is_missing(
    case: tuple[str, dict[Quantity, float]], data: st.DataObject
) -> None:
    model_id, values = case
    port, payload = encode_quantities(model_id, values)
    # LSE01's last byte is not read by the vendor codec, so a payload without it is still whole
    readable = len(payload) - 1 if model_id == LSE01 else len(payload)
    cut = data.draw(st.integers(0, readable - 1), label="cut")
    if model_id == EM310:
        channel_starts = {0, 3, 7}  # battery (3 bytes), distance (4), tilt (3)
        if cut in channel_starts:
            decode(model_id, port, payload[:cut])  # a shorter but whole uplink
            return
        if cut - 1 in channel_starts:
            assert decode(model_id, port, payload[:cut]).warnings[-1].endswith("is no channel header; ignored")
            return
    with pytest.raises(DecodeError) as refused:
        decode(model_id, port, payload[:cut])
    assert refused.value.offset is not None
    assert refused.value.offset <= cut < refused.value.offset + 2
    assert f"at byte offset {refused.value.offset}" in str(refused.value)


@given(st.text(min_size=1, max_size=40).filter(lambda name: name not in model_ids()), st.binary(max_size=20))
def test_unknown_model_raises_unknown_model_error(model_id: str, payload: bytes) -> None:
    with pytest.raises(UnknownModelError) as refused:
        decode(model_id, 1, payload)
    assert refused.value.model_id == model_id
    with pytest.raises(UnknownModelError):
        encode_quantities(model_id, {Quantity.BATTERY_V: 3.0})


@given(model_values(), st.data())
@settings(max_examples=100)
def test_leaving_out_a_needed_quantity_names_it(case: tuple[str, dict[Quantity, float]], data: st.DataObject) -> None:
    model_id, values = case
    optional = {Quantity.TILT, Quantity.DEVICE_TEMPERATURE_C}
    left_out = data.draw(st.sampled_from(sorted(set(values) - optional)), label="left out")
    with pytest.raises(ValueError, match=f"missing quantity {left_out.value}"):
        encode_quantities(model_id, {quantity: value for quantity, value in values.items() if quantity != left_out})


S2120 = "sensecap/sensecap2120"
S2120_RANGES: dict[Quantity, tuple[st.SearchStrategy[float], float]] = {
    Quantity.AIR_TEMPERATURE_C: (_in(-40, 85), 0.1),
    Quantity.HUMIDITY_PCT: (_in(0, 100), 1),
    Quantity.ILLUMINANCE_LUX: (_in(0, 200_000), 1),
    Quantity.WIND_SPEED_MS: (_in(0, 60), 0.1),
    Quantity.WIND_DIRECTION_DEG: (_in(0, 359), 1),
    Quantity.RAIN_MM: (_in(0, 500), 0.001),
    Quantity.PRESSURE_HPA: (_in(300, 1100), 0.1),
}


@given(st.fixed_dictionaries({quantity: values for quantity, (values, _step) in S2120_RANGES.items()}))
@settings(max_examples=300)
def test_s2120_packets_from_the_encoder_decode_to_the_values_in_the_vendor_shape(
    values: dict[Quantity, float],
) -> None:
    port, payload = encode_quantities(S2120, values)
    decoded = decode(S2120, port, payload)
    assert not decoded.warnings
    assert [frame[0]["measurementId"] for frame in decoded.fields["messages"]] == ["4097", "4104"]
    back = {measurement.quantity: measurement.value for measurement in decoded.measurements}
    assert set(back) == set(values)
    for quantity, (_values, step) in S2120_RANGES.items():
        assert _within_step(back[quantity], values[quantity], step), quantity
    # the codec returns negative values as strings ("-1.5") and keeps the others numbers
    temperature = decoded.fields["messages"][0][0]["measurementValue"]
    assert isinstance(temperature, str) == (back[Quantity.AIR_TEMPERATURE_C] < 0)


def test_s2120_encoder_refuses_what_the_packet_cannot_carry() -> None:
    values = {quantity: 1.0 for quantity in S2120_RANGES} | {Quantity.PRESSURE_HPA: 1000.0}
    with pytest.raises(ValueError, match="missing quantity rain_mm"):
        encode_quantities(S2120, {q: v for q, v in values.items() if q is not Quantity.RAIN_MM})
    with pytest.raises(ValueError, match="does not fit 1 byte"):
        encode_quantities(S2120, values | {Quantity.HUMIDITY_PCT: 200.0})
    with pytest.raises(ValueError, match="does not fit 1 byte"):
        encode_quantities(S2120, values | {Quantity.HUMIDITY_PCT: -129.0})
    port, payload = encode_quantities(S2120, values | {Quantity.HUMIDITY_PCT: -128.0})  # the int8's low end fits
    back = {m.quantity: m.value for m in decode(S2120, port, payload).measurements}
    assert back[Quantity.HUMIDITY_PCT] == -128
    with pytest.raises(ValueError, match="battery_pct 140 is out of range"):
        encode_quantities(S2120, values | {Quantity.BATTERY_PCT: 140.0})
    port, payload = encode_quantities(S2120, values | {Quantity.BATTERY_PCT: 87.0})
    assert payload[-2:] == bytes.fromhex("0357")  # frame 0x03: the battery level
    assert decode(S2120, port, payload).fields["messages"][-1] == [{"Battery(%)": 87}]
