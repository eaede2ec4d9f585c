"""The compiled decoders (decoders/compiled.py) against the layout readers they are compiled from: same fields, same
measurements, same warnings, same errors, for encoder payloads, their mutations and any bytes."""

from __future__ import annotations

import math
import random
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders import Decoded, DecodeError, encode_quantities, model, model_ids
from decoders.compiled import _Compiler, _condition
from decoders.decoded import Measurements
from decoders.js import fixed_from_integer, fixed_from_integer_exact, to_fixed
from decoders.layout import ChannelLayout, Condition, FixedLayout, FlaggedGroupsLayout
from decoders.registry import SPEC_DIR
from decoders.spec import compile_spec, load_spec
from flurfunk.contracts import Quantity, Reading

COMPILED = sorted(m for m in model_ids() if any(uplink.fast is not None for uplink in model(m).uplinks))


def _outcome(decode: object, f_port: int, payload: bytes) -> tuple:
    try:
        decoded = decode(f_port, payload)  # type: ignore[operator]
    except DecodeError as error:
        return ("error", str(error), error.offset)
    _readings_hold(decoded)
    # repr tells 3 from 3.0 and keeps the key order: the vendor's data is compared type for type
    return ("decoded", repr(decoded.fields), repr(decoded.measurements), decoded.warnings)


_NOW = datetime(2026, 7, 6, 8, 0, tzinfo=UTC)


def _readings_hold(decoded: Decoded) -> None:
    """What Decoded.readings relies on for a compiled decoder's columns (no check per value there), and readings
    equal to validated ones."""
    measurements = decoded.measurements
    if type(measurements) is Measurements:
        assert all(type(quantity) is Quantity for quantity in measurements.quantities)
        assert all(type(value) is float and math.isfinite(value) for value in measurements.values)
        assert len(measurements.quantities) == len(measurements.values)
    validated = [
        Reading(device="0011223344556677", asset="a", quantity=m.quantity, value=m.value, time=_NOW)
        for m in measurements
    ]
    assert decoded.readings("0011223344556677", "a", _NOW) == validated


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


_SMALL = st.none() | st.integers(0, 12)


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        Condition,
        length=_SMALL,
        min_length=_SMALL,
        byte=_SMALL,
        mask=st.integers(0, 255),
        equals=st.none() | st.integers(0, 255),
        at_least=st.none() | st.integers(0, 255),
    ),
    st.binary(max_size=16),
)
def test_a_compiled_variant_condition_holds_when_the_condition_does(when: Condition, payload: bytes) -> None:
    # the per-port routes choose the variant with this expression; DeviceModel._variant with Condition.holds
    expression = compile(_condition(when), "<condition>", "eval")
    assert eval(expression, {}, {"payload": payload, "n": len(payload)}) == when.holds(payload)


def test_every_application_port_of_a_compiled_model_has_a_route_and_no_other_port() -> None:
    for model_id in COMPILED:
        device = model(model_id)
        assert set(device.routes) <= set(range(1, 256))
        expected = set(range(1, 256)) if device.ports is None else set(device.ports)
        assert set(device.routes) == expected, model_id


def test_inline_fixed_text_equals_fixed_from_integer() -> None:
    # the compiled decoders format toFixed inline (quotient and a table of remainders); the function is the reference
    for shift in range(5):
        for digits in range(shift, 6):
            for signed in (False, True):
                compiler = _Compiler()
                expression = compile(compiler.fixed_text("units", shift, digits, signed, 0), "<fixed>", "eval")
                numbers = range(-2500 if signed else 0, 2500, 7)
                for units in [*numbers, 2**32 - 1, *([-(2**31)] if signed else [])]:
                    shown = eval(expression, dict(compiler.globals), {"units": units})
                    assert shown == fixed_from_integer(units, shift, digits), (units, shift, digits)


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


# --- the compiler on synthetic specs: the corners no shipped spec reaches ----------------------------------------

_FIXED = {
    "spec_version": 1,
    "model_id": "test/fixed-corners",
    "name": "fixed corners",
    "category": "other",
    "uplink": [
        {
            "layout": "fixed",
            "ports": [2],
            "fields": [
                {"name": "high_nibble", "type": "u8", "shift": 4, "mask": 15, "measure": {"quantity": "tilt"}},
                {"name": "low_nibble", "type": "u8", "offset": 0, "mask": 15, "show": "hidden"},
                {"name": "level", "type": "s24be", "divisor": 3, "show": "fixed", "digits": 2},
                {"name": "le", "type": "u16le", "multiplier": 0.5, "show": "suffix", "suffix": " mm"},
                {
                    "name": "temp",
                    "type": "u16be",
                    "negative_bias": 65535,
                    "divisor": 100,
                    "show": "fixed",
                    "digits": 3,
                    "invalid": [{"equals": 32767, "text": "No Sensor"}, {"below": 2, "text": "too low"}],
                    "measure": {"quantity": "air_temperature_c", "low": -40, "high": 60},
                },
                {"name": "temp2", "type": "s16be", "divisor": 10, "measure": {"quantity": "air_temperature_c"}},
                {"name": "mode", "type": "u8", "show": "label", "labels": {"0": "off", "1": "on"}},
                {"name": "flag", "type": "u8", "show": "boolean"},
                {"name": "big", "type": "u32le", "show": "described", "display_name": "Big", "divisor": 7},
            ],
            "templates": [{"name": "version", "text": "v{mode}.{flag:x}.{high_nibble:zxc}"}],
            "constants": {"kind": "test"},
            "trailer": "00",
        }
    ],
}
_CHANNELS = {
    "spec_version": 1,
    "model_id": "test/channel-corners",
    "name": "channel corners",
    "category": "other",
    "uplink": [
        {
            "layout": "channels",
            "key_bytes": 2,
            "channels": [
                {"key": ["any", 103], "group": "sensor_{channel}", "fields": [
                    {"name": "temperature_{channel}", "type": "s16be", "divisor": 10,
                     "measure": {"quantity": "air_temperature_c", "low": -30}},
                ]},
                {"key": [1, 2], "group": "fixed{channel}", "fields": [
                    {"name": "count", "type": "u8", "repeat": "list",
                     "measure": {"quantity": "battery_pct", "high": 100}},
                ]},
                {"key": [3, 4], "fields": [
                    {"name": "count", "type": "u8", "repeat": "list"},
                    {"name": "wide", "type": "u24be", "offset": 1, "invalid": [{"equals": 0, "text": "none"}],
                     "measure": {"quantity": "illuminance_lux"}},
                ]},
            ],
        },
        {"layout": "channels", "ports": [9], "key_bytes": 1, "length_byte": True, "unknown": "error", "channels": [
            {"key": [7], "fields": [{"name": "v", "type": "u16le", "measure": {"quantity": "rain_mm", "divisor": 10}}]},
        ]},
    ],
}  # fmt: skip
_GROUPS = {
    "spec_version": 1,
    "model_id": "test/group-corners",
    "name": "group corners",
    "category": "other",
    "uplink": [
        {
            "layout": "decentlab",
            "protocol_version": 2,
            "groups": [
                {"fields": [{"name": "a", "subtract": 32768, "divisor": 100, "measure": {"quantity": "rain_mm"}}]},
                {"fields": [
                    {"name": "b", "measure": {"quantity": "rain_mm", "low": 1}},
                    {"name": "c", "show": "described", "display_name": "C", "unit": "V", "divisor": 1000,
                     "invalid": [{"below": 10, "text": "flat"}], "measure": {"quantity": "battery_v"}},
                ]},
            ],
        }
    ],
}  # fmt: skip
_CORNERS = [compile_spec(spec, spec["model_id"]) for spec in (_FIXED, _CHANNELS, _GROUPS)]


def test_the_synthetic_specs_are_compiled() -> None:
    assert all(uplink.fast is not None for device in _CORNERS for uplink in device.uplinks)


def _payloads() -> st.SearchStrategy[bytes]:
    # channel keys and Decentlab headers the specs know, followed by anything
    starts = st.sampled_from([b"", b"\x05\x67", b"\x01\x02", b"\x03\x04", b"\x07\x02", b"\x02\x00\x01\x00\x03"])
    return st.lists(st.tuples(starts, st.binary(max_size=6)), max_size=5).map(
        lambda parts: b"".join(start + rest for start, rest in parts)
    )


def _channel_payloads() -> st.SearchStrategy[bytes]:
    # whole entries of the synthetic channel spec: any-channel temperatures, two fixed keys, length-byte entries
    entries = st.one_of(
        st.tuples(st.integers(0, 255), st.binary(min_size=2, max_size=2)).map(lambda e: bytes((e[0], 103)) + e[1]),
        st.binary(min_size=1, max_size=1).map(lambda value: b"\x01\x02" + value),
        st.binary(min_size=4, max_size=4).map(lambda value: b"\x03\x04" + value),
        st.binary(min_size=2, max_size=3).map(lambda value: b"\x07\x02" + value),
    )
    return st.lists(entries, min_size=1, max_size=5).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_CORNERS), st.sampled_from([1, 2, 9]), _payloads() | st.binary(max_size=40))
def test_compiled_equals_interpreted_on_synthetic_corners(device: object, f_port: int, payload: bytes) -> None:
    compiled = _outcome(device.decode, f_port, payload)  # type: ignore[attr-defined]
    assert compiled == _outcome(device.decode_interpreted, f_port, payload)  # type: ignore[attr-defined]


# --- channel layouts: a structure seen twice gets its own straight-line decoder ------------------------------------


def _shape_decoders(device: object) -> dict[int, list]:
    found: dict[int, list] = {}
    for uplink in device.uplinks:  # type: ignore[attr-defined]
        if uplink.fast is not None and "_shapes" in uplink.fast.__globals__:
            for length, shapes in uplink.fast.__globals__["_shapes"].items():
                found.setdefault(length, []).extend(shapes)
    return found


def _same_on(device: object, f_port: int, payload: bytes) -> None:
    compiled = _outcome(device.decode, f_port, payload)  # type: ignore[attr-defined]
    assert compiled == _outcome(device.decode_interpreted, f_port, payload)  # type: ignore[attr-defined]


CHANNEL_MODELS = sorted(
    m
    for m in COMPILED
    if any(isinstance(u.layout, ChannelLayout) and u is model(m).encode_with for u in model(m).uplinks)
)


@pytest.mark.parametrize("model_id", CHANNEL_MODELS)
def test_a_channel_structure_seen_twice_is_compiled_and_equals_the_reader(model_id: str) -> None:
    rng = random.Random(model_id)
    device = model(model_id)
    f_port, payload = _plausible_payload(model_id, rng)
    for _ in range(2):
        device.decode(f_port, payload)  # the loop decodes it and learns its structure
    shapes = _shape_decoders(device).get(len(payload), [])
    assert any(shape(model_id, f_port, payload) is not None for shape in shapes), "no decoder for the structure"
    # the structure's decoder on every byte changed (values, keys, length bytes): the reader's answer every time
    for position in range(len(payload)):
        for _ in range(3):
            mutated = bytearray(payload)
            mutated[position] = rng.getrandbits(8)
            _same_on(device, f_port, bytes(mutated))


def _plausible_payload(model_id: str, rng: random.Random) -> tuple[int, bytes]:
    device = model(model_id)
    ranges = {  # a state (tilt) is 0 or 1
        spec.measure.quantity: (0, 0)
        if spec.measure.flag
        else (spec.measure.low or 0, 100 if spec.measure.high is None else spec.measure.high)
        for uplink in device.uplinks
        for spec in uplink.layout.fields()
        if spec.measure is not None
    }
    for _ in range(1000):
        values = {quantity: rng.uniform(*ranges.get(quantity, (0, 1))) for quantity in device.quantities}
        try:
            return encode_quantities(model_id, values)
        except ValueError:
            continue
    raise AssertionError(f"{model_id}: no payload from the encoder")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([1, 2, 9]), _channel_payloads(), st.lists(st.integers(0, 255), max_size=8))
def test_compiled_channel_structures_equal_the_reader(f_port: int, payload: bytes, changes: list[int]) -> None:
    device = _CORNERS[1]
    for _ in range(3):  # a structure seen twice gets its own decoder
        _same_on(device, f_port, payload)
    # same structure, other values: its decoder (when it has one); other key bytes: the loop
    mutated = bytearray(payload)
    for index, byte in enumerate(changes):
        if mutated:
            mutated[(index * 7 + byte) % len(mutated)] = byte
    _same_on(device, f_port, bytes(mutated))


# --- the CBOR payload: its fast path (a pattern over the whole payload, then cbor2) against CborLayout.read --------

CBOR = "flurfunk/cbor-sensor"
_CBOR_NUMBERS = (
    st.integers(-(2**64), 2**64)
    | st.integers(-(2**1100), 2**1100)  # bignums, some beyond the largest float
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(-100, 100).map(round)  # integral values, as floats or ints below
    | st.floats(-100, 100).map(lambda value: float(round(value)))
    | st.sampled_from([-0.0, 0.5, 1.5, 65504.0, 1e300])
)
_CBOR_VALUES = _CBOR_NUMBERS | st.booleans() | st.none() | st.text(max_size=3) | st.binary(max_size=3)
_CBOR_KEYS = st.integers(0, 20) | st.integers(-3, 300) | st.booleans() | st.sampled_from([1.0, "1", b"\x01"])


@st.composite
def _cbor_payloads(draw: st.DrawFn) -> bytes:
    import cbor2

    document: dict[object, object] = {}
    if draw(st.integers(0, 9)):  # mostly a version first, as sensors send it
        document[0] = draw(st.sampled_from([1, 1, 1, 2, 1.0, True]))
    known = draw(st.lists(st.integers(1, 18), unique=True, max_size=18))
    values = st.floats(0, 1) | st.integers(0, 20) if draw(st.booleans()) else _CBOR_VALUES
    for key in known:
        document[key] = draw(values)
    for key, value in draw(st.lists(st.tuples(_CBOR_KEYS, _CBOR_VALUES), max_size=2)):
        if key not in document:
            document[key] = value
    payload = cbor2.dumps(document, canonical=draw(st.booleans()))
    if draw(st.integers(0, 4)) == 0:
        payload += draw(st.binary(min_size=1, max_size=3))  # bytes after the map
    if draw(st.integers(0, 4)) == 0:
        payload = payload[: draw(st.integers(0, len(payload)))]  # cut short
    return payload


@settings(max_examples=600, deadline=None)
@given(_cbor_payloads(), st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=4))
def test_compiled_cbor_equals_the_reader(payload: bytes, changes: list[tuple[int, int]]) -> None:
    for _ in range(2):  # a structure seen twice gets its own decoder
        _same(CBOR, 10, payload)
    # the same structure with other bytes (numbers, or the structure's own bytes): its decoder or the pattern path
    mutated = bytearray(payload)
    for position, byte in changes:
        if mutated:
            mutated[position % len(mutated)] = byte
    _same(CBOR, 10, bytes(mutated))


def test_the_cbor_fast_path_takes_encoder_payloads() -> None:
    # the speed claim of bench/decoders.py rests on it: canonical sensor payloads never fall back to the reader
    rng = random.Random(3)
    device = load_spec(SPEC_DIR / "flurfunk-cbor-sensor.toml")  # its own structure table, empty
    fast = device.uplinks[0].fast
    bounds = {quantity: (low or 0, high or 1) for _key, quantity, low, high in device.uplinks[0].layout.keys}
    for _ in range(30):  # fewer structures than the table keeps
        chosen = rng.sample(sorted(bounds), rng.randint(1, len(bounds)))
        values = {quantity: rng.uniform(*bounds[quantity]) for quantity in chosen}
        f_port, payload = encode_quantities(CBOR, values)
        for _ in range(3):  # the pattern path, learning its structure, then the structure's own decoder
            decoded = fast(CBOR, f_port, payload)
            assert decoded is not None, payload.hex()
            assert decoded == device.decode_interpreted(f_port, payload)
        structures = _structure_decoders(fast).get(len(payload), [])
        assert any(structure(CBOR, f_port, payload) for structure in structures), "no decoder for the structure"


def _structure_decoders(fast: object) -> dict[int, list]:
    for cell in fast.__closure__:  # type: ignore[attr-defined]
        if isinstance(cell.cell_contents, dict) and all(
            isinstance(value, list) for value in cell.cell_contents.values()
        ):
            return cell.cell_contents
    raise AssertionError("no structure table")


@st.composite
def _cbor_structure_pairs(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A payload the pattern path decodes (version, known keys, non-integral doubles, small ints) and another of
    the same byte structure with other doubles: integral, negative zero, NaN, infinities, out of range."""
    import cbor2

    ranges = {key: (low, high) for key, _quantity, low, high in model(CBOR).uplinks[0].layout.keys}
    keys = draw(st.lists(st.sampled_from(sorted(ranges)), unique=True, min_size=1, max_size=18))
    ints = {
        key: draw(st.integers(math.ceil(ranges[key][0]), int(ranges[key][1]))) for key in keys if draw(st.booleans())
    }
    doubles = [key for key in keys if key not in ints]
    first = {
        key: draw(st.floats(ranges[key][0], ranges[key][1]).filter(lambda x: not x.is_integer())) for key in doubles
    }
    second = {key: draw(st.floats() | st.sampled_from([0.0, -0.0, 1.0, 5.0, 1e9, -1.5])) for key in doubles}

    def encoded(numbers: dict[int, float]) -> bytes:
        document = {0: 1, **{key: ints.get(key, numbers.get(key)) for key in sorted(keys)}}
        # doubles stay doubles (8 bytes) whatever their value: the same structure
        return b"".join(
            [bytes((0xA0 + len(document),)), b"\x00\x01"]
            + [
                cbor2.dumps(key) + (cbor2.dumps(value) if key in ints else b"\xfb" + struct.pack(">d", value))
                for key, value in document.items()
                if key
            ]
        )

    return encoded(first), encoded(second)


@settings(max_examples=300, deadline=None)
@given(_cbor_structure_pairs())
def test_a_cbor_structure_decoder_equals_the_reader_on_any_numbers(pair: tuple[bytes, bytes]) -> None:
    learned, other = pair
    device = load_spec(SPEC_DIR / "flurfunk-cbor-sensor.toml")  # its own, empty structure table
    fast = device.uplinks[0].fast
    for _ in range(2):
        assert fast(CBOR, 10, learned) is not None  # the pattern path takes it, twice: its structure is compiled
    assert _structure_decoders(fast).get(len(learned))
    for payload in (learned, other):
        assert _outcome(device.decode, 10, payload) == _outcome(device.decode_interpreted, 10, payload)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=40), st.sampled_from([1, 2, 100]))
def test_adeunis_periodic_frames_equal_the_reader(status: int, body: bytes, f_port: int) -> None:
    # the compiled path takes frame code 0x57 (two probes or one, timestamp or not, any length); others the reader
    _same("adeunis/temp-4", f_port, bytes((0x57, status)) + body)
    _same("adeunis/temp-4", f_port, bytes((0x57,)) + body[:1])


def test_the_adeunis_periodic_frame_takes_the_compiled_path() -> None:
    device = model("adeunis/temp-4")
    payload = bytes.fromhex("579601b3ff9c01f4ffff14aba3e9")  # the vendor's example
    assert device.uplinks[0].fast("adeunis/temp-4", 1, payload) == device.decode_interpreted(1, payload)


_SENSECAP = "sensecap/sensecaps2105-soll-moisture-temp-ec"
_SENSECAP_IDS = st.sampled_from([4102, 4103, 4108, 4097, 4200]) | st.integers(0, 8) | st.just(0x120) | st.integers()


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 255), _SENSECAP_IDS.map(lambda i: i % 65536), st.integers(-(2**31), 2**31 - 1))),
    st.binary(min_size=2, max_size=2),
    st.integers(0, 3),
)
def test_sensecap_telemetry_frames_equal_the_reader(frames: list, crc: bytes, cut: int) -> None:
    # telemetry frames take the compiled path; other data ids, and wrong lengths, the reader
    payload = b"".join(struct.pack("<BHi", channel, data_id, value) for channel, data_id, value in frames) + crc
    _same(_SENSECAP, 2, payload)
    _same(_SENSECAP, 2, payload[: len(payload) - cut])


def test_sensecap_telemetry_takes_the_compiled_path() -> None:
    device = model(_SENSECAP)
    payload = bytes.fromhex("010610d7feffff0107107fa80000010c1003060000dcbc")
    assert device.uplinks[0].fast(_SENSECAP, 2, payload) == device.decode_interpreted(2, payload)


def test_the_structures_a_layout_compiles_are_bounded_and_the_rest_keep_the_general_path() -> None:
    # a CBOR sensor fleet sending 60 key sets, each twice: 32 get a decoder, all 60 decode as the reader does
    device = load_spec(SPEC_DIR / "flurfunk-cbor-sensor.toml")
    fast = device.uplinks[0].fast
    rng = random.Random(9)
    keys = device.uplinks[0].layout.keys
    payloads = []
    for _ in range(60):
        chosen = rng.sample(keys, rng.randint(1, len(keys)))
        values = {quantity: (low + high) / 3 + 0.01 for _key, quantity, low, high in chosen}
        payloads.append(encode_quantities(CBOR, values)[1])
    for payload in payloads * 2:
        assert fast(CBOR, 10, payload) == device.decode_interpreted(10, payload)
    compiled = sum(len(structures) for structures in _structure_decoders(fast).values())
    assert compiled == 32
    for payload in payloads:
        assert _outcome(device.decode, 10, payload) == _outcome(device.decode_interpreted, 10, payload)
