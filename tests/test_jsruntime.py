"""The JS codec runtime: vendor-style codecs run unchanged; hostile codecs are stopped within their limits with clear
errors and the process keeps decoding; reading maps turn codec output into contract measurements."""

from __future__ import annotations

import contextlib
import json
import resource
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders import DecodeError
from decoders.jsruntime import (
    CodecError,
    CodecLimits,
    CodecLoadError,
    CodecMemoryError,
    CodecOutputError,
    CodecTimeoutError,
    JsCodec,
    MappingError,
    load_reading_map,
    parse_reading_map,
)
from flurfunk.contracts import Quantity

CODECS = Path(__file__).parent / "codecs"
ECHO = "function decodeUplink(input) { return {data: {bytes: input.bytes, fPort: input.fPort}}; }"


def codec(source: str, **options: object) -> JsCodec:
    return JsCodec(source, name="test.js", **options)  # type: ignore[arg-type]


# --- the good case -----------------------------------------------------------------------------------------------


def test_a_ttn_codec_gets_bytes_port_time_and_variables() -> None:
    source = """
    function decodeUplink(input) {
      return {data: {first: input.bytes[0], count: input.bytes.length, port: input.fPort,
                     year: input.recvTime.getUTCFullYear(), isDate: input.recvTime instanceof Date,
                     site: input.variables.site}, warnings: ["looked odd"]};
    }"""
    decoded = codec(source).decode_uplink(
        7, b"\xff\x00\x10", received_at=datetime(2026, 7, 6, tzinfo=UTC), variables={"site": "Bad Orb"}
    )
    assert decoded.fields == {"first": 255, "count": 3, "port": 7, "year": 2026, "isDate": True, "site": "Bad Orb"}
    assert decoded.warnings == ("looked odd",)
    assert decoded.measurements == ()


def test_every_byte_value_reaches_the_codec_unchanged() -> None:
    payload = bytes(range(255))
    assert codec(ECHO).decode_uplink(1, payload).fields["bytes"] == list(payload)


def test_sloppy_mode_lets_an_implicit_global_work_as_in_the_things_stack() -> None:
    source = "function decodeUplink(input) { level = input.bytes[0] * 2; return {data: {level: level}}; }"
    assert codec(source).decode_uplink(1, b"\x15").fields == {"level": 42}


def test_es2015_codecs_run_too() -> None:
    source = "const decodeUplink = ({bytes, fPort}) => ({data: {sum: [...bytes].reduce((a, b) => a + b, 0), fPort}});"
    assert codec(source).decode_uplink(3, b"\x01\x02\x03").fields == {"sum": 6, "fPort": 3}


def test_the_codec_is_compiled_once_not_per_call() -> None:
    source = "var loads = (typeof loads === 'undefined' ? 0 : loads) + 1; var calls = 0;\n" + (
        "function decodeUplink(input) { calls++; return {data: {loads: loads, calls: calls}}; }"
    )
    compiled = codec(source)
    for _ in range(4):
        fields = compiled.decode_uplink(1, b"").fields
    assert fields == {"loads": 1, "calls": 4}


def test_chirpstack_v3_decode_and_ttn_v2_decoder_are_called_too() -> None:
    v3 = "function Decode(fPort, bytes, variables) { return {port: fPort, b: bytes[0], v: variables.k}; }"
    assert codec(v3).decode_uplink(9, b"\x05", variables={"k": 1}).fields == {"port": 9, "b": 5, "v": 1}
    v2 = "function Decoder(bytes, port) { return {port: port, b: bytes[0]}; }"
    assert codec(v2).decode_uplink(9, b"\x05").fields == {"port": 9, "b": 5}


def test_downlinks_encode_and_decode() -> None:
    source = """
    function decodeUplink(input) { return {data: {}}; }
    function encodeDownlink(input) { return {bytes: [0x01, input.data.interval & 0xff], fPort: 10, warnings: []}; }
    function decodeDownlink(input) { return {data: {interval: input.bytes[1]}}; }"""
    compiled = codec(source)
    encoded = compiled.encode_downlink({"interval": 30})
    assert (encoded.f_port, encoded.payload) == (10, b"\x01\x1e")
    assert compiled.decode_downlink(encoded.f_port, encoded.payload).fields == {"interval": 30}


def test_a_downlink_encoder_that_returns_no_bytes_is_refused() -> None:
    source = ECHO + "\nfunction encodeDownlink(input) { return {bytes: [1, 256], fPort: 2}; }"
    with pytest.raises(CodecOutputError, match=r"bytes\[1\] is 256"):
        codec(source).encode_downlink({"x": 1})
    with pytest.raises(CodecLoadError, match="encodeDownlink"):
        codec(ECHO).encode_downlink({"x": 1})


def test_codecs_work_from_any_thread() -> None:
    compiled = codec(ECHO)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(compiled.decode_uplink(1, bytes([n])).fields["bytes"]))
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [[0], [1], [2], [3]]  # type: ignore[type-var]


# --- the bad case ------------------------------------------------------------------------------------------------


def test_a_thrown_error_names_the_codec_and_its_line() -> None:
    source = "function decodeUplink(input) {\n  var x = input.bytes[0];\n  throw new Error('no sensor');\n}"
    with pytest.raises(CodecError) as caught:
        codec(source).decode_uplink(2, b"\x00")
    assert isinstance(caught.value, DecodeError)
    assert (caught.value.codec, caught.value.line, caught.value.f_port) == ("test.js", 3, 2)
    assert "test.js" in str(caught.value) and "line 3" in str(caught.value) and "no sensor" in str(caught.value)


def test_the_vendors_errors_answer_becomes_a_decode_error_with_its_words() -> None:
    source = "function decodeUplink(input) { return {errors: ['unknown FPort']}; }"
    with pytest.raises(CodecError, match="unknown FPort") as caught:
        codec(source).decode_uplink(42, b"")
    assert caught.value.reason == "unknown FPort"


@pytest.mark.parametrize(
    ("source", "line"),
    [("function decodeUplink(input {\n}", 1), ("var ok = 1;\nvar = ;", 2), ("var a = 1;\nthrow new Error('top');", 2)],
)
def test_a_codec_that_does_not_load_names_the_line(source: str, line: int) -> None:
    with pytest.raises(CodecLoadError) as caught:
        codec(source)
    assert caught.value.line == line
    assert isinstance(caught.value, DecodeError)


def test_a_codec_without_entry_points_is_refused() -> None:
    with pytest.raises(CodecLoadError, match="decodeUplink"):
        codec("function decode(bytes) { return {}; }")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("return {data: {n: 10n}};", "BigInt"),
        ("var o = {}; o.self = o; return {data: o};", "circular"),
        ("return undefined;", "undefined"),
        ("return function () {};", "function"),
        ("return 42;", "a number"),
        ("return {data: [1, 2]};", "no data object"),
        ("return {warnings: []};", "no data object"),
        ("return {data: {s: 'x'.repeat(100000)}};", "limit"),
    ],
)
def test_answers_that_are_not_json_data_are_clear_errors(body: str, reason: str) -> None:
    with pytest.raises(CodecOutputError, match=reason):
        codec(f"function decodeUplink(input) {{ {body} }}").decode_uplink(1, b"")


def test_frames_outside_lorawan_limits_are_refused_before_the_codec_runs() -> None:
    with pytest.raises(CodecError, match="more than the limit"):
        codec(ECHO).decode_uplink(1, bytes(256))
    with pytest.raises(CodecError, match="fPort 256"):
        codec(ECHO).decode_uplink(256, b"")


# --- the hostile case --------------------------------------------------------------------------------------------


def test_an_endless_loop_is_stopped_within_its_time_limit_and_the_codec_keeps_working() -> None:
    source = (
        "function decodeUplink(input) { if (input.bytes[0] === 1) for (;;) { try { for (;;) {} } catch (e) {} }\n"
        + ("  return {data: {b: input.bytes[0]}}; }")
    )
    compiled = codec(source, limits=CodecLimits(time_limit_s=0.05))
    started = time.perf_counter()
    with pytest.raises(CodecTimeoutError, match="time limit of 50 ms"):
        compiled.decode_uplink(1, b"\x01")
    assert time.perf_counter() - started < 0.5
    assert compiled.decode_uplink(1, b"\x02").fields == {"b": 2}


def test_a_top_level_endless_loop_is_stopped_at_load() -> None:
    with pytest.raises(CodecTimeoutError):
        codec("while (true) {}\nfunction decodeUplink(input) { return {data: {}}; }")


@pytest.mark.parametrize(
    "allocation",
    [
        "var buffer = new ArrayBuffer(1024 * 1024 * 1024);",
        "var text = 'x'.repeat(1000 * 1000 * 1000);",
        "var chunks = []; for (;;) chunks.push(new Array(10000).fill(chunks.length));",
    ],
)
def test_a_1_gb_allocation_is_stopped_and_the_process_keeps_working(allocation: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source = f"function decodeUplink(input) {{ if (input.bytes[0] === 1) {{ {allocation} }} return {{data: {{}}}}; }}"
    compiled = codec(source)
    with pytest.raises(CodecMemoryError, match="memory limit of 16 MiB"):
        compiled.decode_uplink(1, b"\x01")
    assert compiled.decode_uplink(1, b"\x02").fields == {}
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024  # nowhere near the gigabyte the codec asked for


def test_cyclic_garbage_left_by_every_call_is_collected_before_it_hits_the_limit() -> None:
    # QuickJS frees by reference count at once and collects cycles as allocation grows: no collection call needed
    source = """function decodeUplink(input) {
      var a = {pad: new Array(5000).fill(input.bytes[0])}, b = {a: a}; a.b = b;  // ~40 KB only a collection frees
      return {data: {n: a.pad.length}};
    }"""
    compiled = codec(source)
    for _ in range(2000):  # 80 MB of garbage in all, five times the memory limit
        assert compiled.decode_uplink(1, b"\x01").fields == {"n": 5000}


def test_endless_recursion_is_a_clear_error() -> None:
    source = "function down(n) { return down(n + 1); }\nfunction decodeUplink(input) { return down(0); }"
    with pytest.raises(CodecError, match="recursion too deep"):
        codec(source).decode_uplink(1, b"")


def test_a_thrown_non_error_value_is_still_a_codec_error() -> None:
    with pytest.raises(CodecError, match="just words"):
        codec("function decodeUplink(input) { throw 'just words'; }").decode_uplink(1, b"")


# A codec written carelessly, as some vendor codecs are: NaN, reads past the end, errors answers.
FRAGILE = JsCodec(
    """
    function decodeUplink(input) {
      var b = input.bytes;
      if (b[0] === 0x13) return {data: {v: b[1] / b[2]}};
      if (b[0] === 0x42) return {data: {v: b[5].toString(16)}};
      if (b[0] === 0x7f) return {errors: ['bad header ' + b[0]]};
      if (b[0] === 0x99) for (;;) {}
      return {data: {n: b.length, port: input.fPort}};
    }""",
    name="fragile.js",
    limits=CodecLimits(time_limit_s=0.02),
)


@settings(max_examples=150, deadline=None)
@given(f_port=st.integers(0, 255), payload=st.binary(max_size=255))
def test_any_payload_through_a_fragile_codec_ends_in_decoded_or_decode_error(f_port: int, payload: bytes) -> None:
    try:
        decoded = FRAGILE.decode_uplink(f_port, payload)
    except DecodeError:
        return
    assert isinstance(decoded.fields, dict) and decoded.f_port == f_port


# --- reading maps ------------------------------------------------------------------------------------------------


def test_a_reading_map_turns_strings_with_units_nested_values_and_labels_into_measurements() -> None:
    reading_map = parse_reading_map(
        """
        model = "example/sensor"
        [[readings]]
        path = "distance"
        quantity = "distance_m"
        [[readings]]
        path = "battery_voltage.value"
        quantity = "battery_v"
        unit = "mV"
        [[readings]]
        path = "probes.1"
        quantity = "soil_vwc"
        unit = "%"
        [[readings]]
        path = "position"
        quantity = "tilt"
        labels = { normal = 0, tilt = 1 }
        [[readings]]
        path = "absent"
        quantity = "rain_mm"
        """
    )
    source = """function decodeUplink(input) { return {data: {distance: "2799 mm", battery_voltage: {value: 3061},
        probes: [10.5, 19.57], position: "tilt"}}; }"""
    decoded = codec(source, reading_map=reading_map).decode_uplink(85, b"")
    assert decoded.model_id == "example/sensor"
    assert {m.quantity: m.value for m in decoded.measurements} == {
        Quantity.DISTANCE_M: 2.799,
        Quantity.BATTERY_V: 3.061,
        Quantity.SOIL_VWC: 0.1957,
        Quantity.TILT: 1.0,
    }
    assert decoded.warnings == ()


def test_a_value_that_is_no_number_or_implausible_is_a_warning_not_a_reading() -> None:
    reading_map = parse_reading_map(
        '[[readings]]\npath = "distance"\nquantity = "distance_m"\nunit = "mm"\n'
        '[[readings]]\npath = "battery"\nquantity = "battery_pct"\nlow = 0\nhigh = 100\n'
    )
    measurements, warnings = reading_map.measurements({"distance": "No Sensor", "battery": 250})
    assert [m.quantity for m in measurements] == [Quantity.BATTERY_PCT]
    assert any("No Sensor" in warning for warning in warnings)
    assert any("outside 0..100" in warning for warning in warnings)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[[readings]]\npath = "x"\nquantity = "fill_level"\n', "readings[0]: quantity 'fill_level'"),
        ('[[readings]]\nquantity = "distance_m"\n', "readings[0]: path is missing"),
        ('[[readings]]\npath = "x"\nquantity = "distance_m"\nunit = "kg"\n', "unit 'kg' cannot be converted"),
        ('[[readings]]\npath = "x"\nquantity = "distance_m"\nscle = 2\n', "unknown key(s) scle"),
        ('[[readings]]\npath = "x"\nquantity = "distance_m"\nscale = "2"\n', "scale must be a number"),
        ("readings = [", "not TOML"),
        ('colour = "blue"\n', "unknown key(s) colour"),
    ],
)
def test_a_wrong_reading_map_names_the_entry_and_the_reason(text: str, complaint: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_reading_map(text, source="map.toml")
    assert "map.toml" in str(caught.value) and complaint in str(caught.value)


def test_reading_map_files_have_a_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 70_000)
    with pytest.raises(MappingError, match="limit"):
        load_reading_map(big)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_reading_map_or_a_mapping_error(text: str) -> None:
    with contextlib.suppress(MappingError):
        parse_reading_map(text)


def test_the_test_codecs_load_with_their_maps() -> None:
    for script in sorted(CODECS.glob("*.js")):
        reading_map = load_reading_map(script.with_suffix(".toml"))
        loaded = JsCodec.from_file(script, reading_map=reading_map)
        assert "decodeUplink" in loaded.entries and reading_map.model is not None and reading_map.rules


def test_flurfunk_decode_with_a_codec_prints_fields_and_readings() -> None:
    from click.testing import CliRunner

    from flurfunk.cli import main

    script = str(CODECS / "dragino-lse01.js")  # its reading map beside it is found by name
    result = CliRunner().invoke(main, ["decode", "--codec", script, "2", "ce2900f107a5099b6e2890"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["fields"]["water_SOIL"] == "19.57"
    assert {"quantity": "soil_vwc", "value": 0.1957, "unit": "m³/m³"} in printed["measurements"]
    failed = CliRunner().invoke(main, ["decode", "--codec", script, "3", "ce29"])
    assert failed.exit_code == 1 and "unknown FPort" in failed.output
