"""Differential tests: for every natively supported model with a JS codec in tests/codecs/, the native decoder and
the JS runtime give the same fields (or both a DecodeError) on vendor examples, their truncations and bit flips,
payloads the native encoder makes from random values, and random bytes; the reading maps give the same readings."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import decoders
from decoders import DecodeError
from decoders.jsruntime import JsCodec, load_reading_map
from flurfunk.contracts import Quantity
from tests.conftest import shared_data

CODECS = Path(__file__).parent / "codecs"


def _codec_models() -> dict[str, Path]:
    found = {}
    for mapping in sorted(CODECS.glob("*.toml")):
        model_id = load_reading_map(mapping).model
        if model_id is not None and mapping.with_suffix(".js").exists():
            found[model_id] = mapping.with_suffix(".js")
    return found


CODEC_FILES = _codec_models()
NATIVE = set(decoders.model_ids())
COVERED = sorted(model_id for model_id in CODEC_FILES if model_id in NATIVE)


@cache
def js_codec(model_id: str) -> JsCodec:
    script = CODEC_FILES[model_id]
    return JsCodec.from_file(script, reading_map=load_reading_map(script.with_suffix(".toml")))


def outcome(decode: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "fields", decode(*args)
    except DecodeError:
        return "error", None


def assert_same(model_id: str, f_port: int, payload: bytes) -> None:
    kind, native = outcome(decoders.decode, model_id, f_port, payload)
    js_kind, js = outcome(js_codec(model_id).decode_uplink, f_port, payload)
    context = f"{model_id} fPort {f_port} payload {payload.hex()}"
    assert kind == js_kind, f"{context}: native {kind}, JS {js_kind}"
    if kind == "error":
        return
    # equal after a JSON round trip, as The Things Stack compares codec output (types included: 3 is not 3.0)
    assert json.dumps(native.fields, sort_keys=True) == json.dumps(js.fields, sort_keys=True), context
    mapped = {rule.quantity for rule in js_codec(model_id).reading_map.rules}  # type: ignore[union-attr]
    native_values = {m.quantity: m.value for m in native.measurements if m.quantity in mapped}
    js_values = {m.quantity: m.value for m in js.measurements}
    assert native_values.keys() == js_values.keys(), context
    for quantity, value in native_values.items():
        assert math.isclose(value, js_values[quantity], rel_tol=1e-9, abs_tol=1e-12), f"{context}: {quantity}"


def test_the_differential_tests_cover_the_models_with_test_codecs() -> None:
    assert {"dragino/lse01", "milesight-iot/em310-udl"} <= set(COVERED)


@cache
def _vectors() -> list[tuple[str, int, bytes]]:
    examples = json.loads(shared_data("device-vectors.json").read_text(encoding="utf-8"))["vectors"]
    return [
        (example["model_id"], example["fPort"], bytes.fromhex(example["bytes_hex"]))
        for example in examples
        if example["model_id"] in COVERED
    ]


@pytest.mark.parametrize("model_id", COVERED)
def test_vendor_examples_their_truncations_and_bit_flips_agree(model_id: str) -> None:
    examples = [(f_port, payload) for example_model, f_port, payload in _vectors() if example_model == model_id]
    if not examples:
        pytest.skip(f"no vendor examples of {model_id} in shared/data")
    for f_port, payload in examples:
        for end in range(len(payload) + 2):
            assert_same(model_id, f_port, payload[:end])
        for index in range(len(payload)):
            for bit in range(8):
                flipped = bytearray(payload)
                flipped[index] ^= 1 << bit
                assert_same(model_id, f_port, bytes(flipped))


# What a real device reports, in each quantity's unit: the encoder gets values the device could send.
PLAUSIBLE: dict[Quantity, tuple[float, float]] = {
    Quantity.DISTANCE_M: (0.0, 6.0),
    Quantity.BATTERY_V: (2.5, 3.7),
    Quantity.BATTERY_PCT: (0.0, 100.0),
    Quantity.SOIL_VWC: (0.0, 1.0),
    Quantity.SOIL_TEMPERATURE_C: (-40.0, 85.0),
    Quantity.SOIL_EC_US_CM: (0.0, 20_000.0),
    Quantity.SOLAR_RADIATION_W_M2: (0.0, 1500.0),
    Quantity.RAIN_MM: (0.0, 30.0),
    Quantity.WIND_SPEED_MS: (0.0, 60.0),
    Quantity.WIND_DIRECTION_DEG: (0.0, 359.9),
    Quantity.AIR_TEMPERATURE_C: (-40.0, 50.0),
    Quantity.PRESSURE_HPA: (800.0, 1100.0),
    Quantity.HUMIDITY_PCT: (0.0, 100.0),
    Quantity.DEVICE_TEMPERATURE_C: (-40.0, 60.0),
}


def _encoder_values(model_id: str) -> st.SearchStrategy[dict[Quantity, float]]:
    ranges: dict[Quantity, st.SearchStrategy[float]] = {}
    for rule in js_codec(model_id).reading_map.rules:  # type: ignore[union-attr]
        if rule.quantity is Quantity.TILT:
            ranges[rule.quantity] = st.sampled_from([0.0, 1.0])
        elif rule.quantity in PLAUSIBLE:
            low, high = PLAUSIBLE[rule.quantity]
            ranges[rule.quantity] = st.floats(low, high, allow_nan=False)
    return st.fixed_dictionaries(ranges)


@pytest.mark.parametrize("model_id", COVERED)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_payloads_the_native_encoder_makes_agree(model_id: str, data: st.DataObject) -> None:
    values = data.draw(_encoder_values(model_id))
    try:
        f_port, payload = decoders.encode_quantities(model_id, values)
    except ValueError:
        assume(False)  # a value the device cannot send (outside what its words carry)
        return
    assert_same(model_id, f_port, payload)


@pytest.mark.parametrize("model_id", COVERED)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_bytes_agree(model_id: str, data: st.DataObject) -> None:
    # mostly the model's own uplink ports (where the layout is read), sometimes any port
    ports = sorted({f_port for example_model, f_port, _ in _vectors() if example_model == model_id}) or [1]
    f_port = data.draw(st.sampled_from(ports) | st.integers(1, 255))
    payload = data.draw(st.binary(max_size=48) | st.binary(min_size=8, max_size=48))
    assert_same(model_id, f_port, payload)
