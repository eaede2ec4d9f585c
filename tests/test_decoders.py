"""The built-in decoders against the vendors' own examples, and their behaviour on odd, short and hostile payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from decoders import Decoded, DecodeError, Measurement, UnknownModelError, decode, encode_quantities, model_ids
from decoders.decoded import Measurements
from decoders.js import js_number, to_fixed
from flurfunk.contracts import Quantity
from tests.conftest import shared_data

EM310 = "milesight-iot/em310-udl"
LSE01 = "dragino/lse01"
ATM41 = "decentlab/dl-atm41"
MODELS = (EM310, LSE01, ATM41)
# every model of the issue and every firmware variant the vendor vectors name
ALL_MODELS = (
    "adeunis/temp-4",
    "cayenne/lpp",
    "decentlab/dl-atm41",
    "decentlab/dl-mbx",
    "decentlab/dl-smtp",
    "dragino/ldds20",
    "dragino/ldds20@ldds20-114",
    "dragino/ldds75",
    "dragino/ldds75@ldds75-114",
    "dragino/lse01",
    "dragino/lse01@lse01-114",
    "dragino/lse01@lse01-121",
    "dragino/wsc1-l",
    "elsys/elt-ultrasonic",
    "elsys/ers",
    "flurfunk/cbor-sensor",
    "milesight-iot/em310-udl",
    "milesight-iot/em400-udl",
    "milesight-iot/em500-smtc",
    "sensecap/sensecap2120",
    "sensecap/sensecaps2105-soll-moisture-temp-ec",
)


def _vendor_vectors() -> list[dict[str, Any]]:
    document = json.loads(shared_data("device-vectors.json").read_text(encoding="utf-8"))
    return [vector for vector in document["vectors"] if vector["model_id"] in model_ids()]


def _shape(value: Any) -> Any:
    """Types all the way down, so 3 (int) and 3.0 (float) or "3" and 3 count as different."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


VECTORS = _vendor_vectors()


def test_every_vector_model_is_supported_natively() -> None:
    document = json.loads(shared_data("device-vectors.json").read_text(encoding="utf-8"))
    assert {vector["model_id"] for vector in document["vectors"]} <= set(model_ids())
    assert len(VECTORS) == len(document["vectors"]) == 30


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['model_id']}:{v['description']}")
def test_vendor_vector(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["bytes_hex"])
    expected = vector["expected_output"]
    if expected.get("errors"):
        with pytest.raises(DecodeError) as refused:
            decode(vector["model_id"], vector["fPort"], payload)
        assert refused.value.reason in expected["errors"]
        return
    decoded = decode(vector["model_id"], vector["fPort"], payload)
    assert decoded.fields == expected["data"]
    assert _shape(decoded.fields) == _shape(expected["data"])
    # what The Things Stack compares: the output after a JSON round trip
    assert json.loads(json.dumps(decoded.fields)) == expected["data"]


def _values(decoded: Decoded) -> dict[Quantity, float]:
    return {measurement.quantity: measurement.value for measurement in decoded.measurements}


def test_model_ids_are_all_models_sorted() -> None:
    assert model_ids() == sorted(ALL_MODELS)


# --- Milesight EM310-UDL -----------------------------------------------------------------------------------------


def test_em310_measurements_in_contract_units() -> None:
    decoded = decode(EM310, 85, bytes.fromhex("01755c03824408040001"))
    assert _values(decoded) == {Quantity.BATTERY_PCT: 92.0, Quantity.DISTANCE_M: 2.116, Quantity.TILT: 1.0}
    assert decoded.warnings == ()


def test_em310_upright_sensor_reads_normal_and_tilt_zero() -> None:
    decoded = decode(EM310, 85, bytes.fromhex("040000"))
    assert decoded.fields == {"tilt": "normal"}
    assert _values(decoded) == {Quantity.TILT: 0.0}


def test_em310_stops_at_an_unknown_channel_like_the_vendor_codec() -> None:
    decoded = decode(EM310, 85, bytes.fromhex("017550ff0b0103824408"))
    assert decoded.fields == {"battery": 80}
    assert any("unknown channel 0xff 0x0b at offset 3" in warning for warning in decoded.warnings)


def test_em310_repeated_channel_last_value_wins() -> None:
    decoded = decode(EM310, 85, bytes.fromhex("0382e80303821027017564"))
    assert decoded.fields == {"distance": 10000, "battery": 100}
    assert decoded.value(Quantity.DISTANCE_M) == 10.0


def test_em310_value_cut_short_names_its_offset() -> None:
    with pytest.raises(DecodeError) as refused:
        decode(EM310, 85, bytes.fromhex("01755c038244"))
    assert refused.value.offset == 5
    assert refused.value.model_id == EM310
    assert refused.value.f_port == 85
    assert "distance" in refused.value.reason
    assert str(refused.value) == (
        "milesight-iot/em310-udl (fPort 85) at byte offset 5: distance needs 2 byte(s), the payload has 6 bytes"
    )


def test_em310_lone_trailing_byte_is_a_warning() -> None:
    decoded = decode(EM310, 85, bytes.fromhex("01755c04"))
    assert decoded.fields == {"battery": 92}
    assert decoded.warnings == ("1 byte at offset 3 is no channel header; ignored",)


def test_em310_empty_payload_decodes_to_nothing() -> None:
    decoded = decode(EM310, 85, b"")
    assert decoded.fields == {}
    assert decoded.measurements == ()
    assert decoded.warnings == ("empty payload",)


def test_em310_battery_above_100_percent_is_kept_with_a_warning() -> None:
    decoded = decode(EM310, 85, bytes.fromhex("0175ff"))
    assert decoded.fields == {"battery": 255}
    assert decoded.value(Quantity.BATTERY_PCT) == 255.0
    assert decoded.warnings == ("battery_pct 255 is outside 0..100",)


# --- Dragino LSE01 ------------------------------------------------------------------------------------------------


def test_lse01_measurements_in_contract_units() -> None:
    decoded = decode(LSE01, 2, bytes.fromhex("ce2900f107a5099b6e2890"))
    assert _values(decoded) == {
        Quantity.BATTERY_V: 3.625,
        Quantity.SOIL_VWC: 0.1957,
        Quantity.SOIL_TEMPERATURE_C: 24.59,
        Quantity.SOIL_EC_US_CM: 28200.0,
    }


def test_lse01_negative_soil_temperature_as_codec_and_manual_compute_it() -> None:
    # the manual: "If payload is FF7EH: temp = (FF7E(H)-FFFF(H))/100 = -1.29 °C" — not two's complement (-1.30)
    decoded = decode(LSE01, 2, bytes.fromhex("0e2900f107a5ff7e00c800"))
    assert decoded.fields["temp_SOIL"] == "-1.29"
    assert decoded.value(Quantity.SOIL_TEMPERATURE_C) == -1.29


def test_lse01_negative_probe_temperature_is_twos_complement() -> None:
    decoded = decode(LSE01, 2, bytes.fromhex("0e29fff607a5099b6e2890"))
    assert decoded.fields["TempC_DS18B20"] == "-1.0"


def test_lse01_unknown_fport_is_the_vendor_error() -> None:
    with pytest.raises(DecodeError) as refused:
        decode(LSE01, 42, bytes.fromhex("ce2900f107a5099b6e2890"))
    assert refused.value.reason == "unknown FPort"
    assert refused.value.offset is None
    assert str(refused.value) == "dragino/lse01 (fPort 42): unknown FPort"


@pytest.mark.parametrize("length", range(10))
def test_lse01_short_payload_names_the_offset_of_the_cut_field(length: int) -> None:
    payload = bytes.fromhex("ce2900f107a5099b6e2890")[:length]
    with pytest.raises(DecodeError) as refused:
        decode(LSE01, 2, payload)
    assert refused.value.offset == length - length % 2


def test_lse01_without_the_unread_last_byte_still_decodes() -> None:
    decoded = decode(LSE01, 2, bytes.fromhex("ce2900f107a5099b6e28"))
    assert decoded.fields["conduct_SOIL"] == 28200


def test_lse01_extra_bytes_are_a_warning() -> None:
    decoded = decode(LSE01, 2, bytes.fromhex("ce2900f107a5099b6e2890abcd"))
    assert decoded.warnings == ("2 byte(s) after offset 11 ignored",)


# --- Decentlab DL-ATM41 -------------------------------------------------------------------------------------------

ATM41_EXAMPLE = bytes.fromhex("02035a0003800a8000800080008009812b8014810880b4a57c820c810980027fe88056800880040bf5")


def test_atm41_measurements_in_contract_units() -> None:
    decoded = decode(ATM41, 1, ATM41_EXAMPLE)
    assert _values(decoded) == {
        Quantity.SOLAR_RADIATION_W_M2: 10.0,
        Quantity.RAIN_MM: 0.0,
        Quantity.WIND_SPEED_MS: 0.09,
        Quantity.WIND_DIRECTION_DEG: 29.9,
        Quantity.AIR_TEMPERATURE_C: 26.4,
        Quantity.PRESSURE_HPA: 959.6,
        Quantity.HUMIDITY_PCT: 52.4,
        Quantity.DEVICE_TEMPERATURE_C: 26.5,
        Quantity.BATTERY_V: 3.061,
    }


def test_atm41_wrong_protocol_version_is_the_vendor_error() -> None:
    with pytest.raises(DecodeError) as refused:
        decode(ATM41, 1, b"\x03" + ATM41_EXAMPLE[1:])
    assert refused.value.reason == "protocol version 3 doesn't match v2"
    assert refused.value.offset == 0


def test_atm41_cut_inside_the_weather_group_names_the_word() -> None:
    with pytest.raises(DecodeError) as refused:
        decode(ATM41, 1, ATM41_EXAMPLE[:20])
    assert refused.value.offset == 19
    # word 7 of the group (offset 5 + 2·7) is the air temperature
    assert refused.value.reason == "air_temperature needs 2 byte(s), the payload has 20 bytes"


def test_atm41_unknown_flag_bits_and_trailing_bytes_are_warnings() -> None:
    decoded = decode(ATM41, 1, bytes.fromhex("02035a00060bf5aaaa"))
    assert decoded.fields["battery_voltage"]["value"] == 3.061
    assert decoded.warnings == (
        "flags 0x0006 announce sensor groups this model does not have; ignored",
        "2 byte(s) after offset 7 ignored",
    )


def test_atm41_ignores_the_fport_like_the_vendor_codec() -> None:
    assert decode(ATM41, 10, ATM41_EXAMPLE).fields == decode(ATM41, 1, ATM41_EXAMPLE).fields


# --- limits and errors common to all models ----------------------------------------------------------------------


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("f_port", [0, -1, 256])
def test_fport_outside_the_application_range_is_refused(model_id: str, f_port: int) -> None:
    with pytest.raises(DecodeError, match="not an application port"):
        decode(model_id, f_port, b"\x01\x75\x10")


@pytest.mark.parametrize("model_id", MODELS)
def test_oversized_payload_is_refused(model_id: str) -> None:
    with pytest.raises(DecodeError, match="256 bytes is longer than 255"):
        decode(model_id, 2, bytes(256))


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match=r"acme/bin-9000.*dragino/lse01") as refused:
        decode("acme/bin-9000", 1, b"")
    assert refused.value.model_id == "acme/bin-9000"
    with pytest.raises(UnknownModelError):
        encode_quantities("acme/bin-9000", {})


def test_readings_carry_device_asset_time_and_units() -> None:
    time = datetime(2026, 5, 4, 6, 30, tzinfo=UTC)
    readings = decode(EM310, 85, bytes.fromhex("01755c03824408040001")).readings("24e124713b123456", "wae-bin-7", time)
    assert [(reading.quantity, reading.value, reading.unit) for reading in readings] == [
        (Quantity.BATTERY_PCT, 92.0, "%"),
        (Quantity.DISTANCE_M, 2.116, "m"),
        (Quantity.TILT, 1.0, "1"),
    ]
    assert {(reading.device, reading.asset, reading.time) for reading in readings} == {
        ("24e124713b123456", "wae-bin-7", time)
    }


# --- encoding for virtual sensors --------------------------------------------------------------------------------


def test_em310_encodes_what_the_device_sends() -> None:
    port, payload = encode_quantities(EM310, {Quantity.DISTANCE_M: 2.116, Quantity.BATTERY_PCT: 92, Quantity.TILT: 1})
    assert (port, payload.hex()) == (85, "01755c03824408040001")


def test_em310_tilt_defaults_to_upright_and_extra_quantities_are_ignored() -> None:
    port, payload = encode_quantities(
        EM310, {Quantity.DISTANCE_M: 0.5, Quantity.BATTERY_PCT: 80, Quantity.SOIL_VWC: 0.3}
    )
    assert decode(EM310, port, payload).fields == {"battery": 80, "distance": 500, "tilt": "normal"}


def test_lse01_encoding_of_a_frosty_soil() -> None:
    values = {
        Quantity.SOIL_VWC: 0.1957,
        Quantity.SOIL_TEMPERATURE_C: -1.29,
        Quantity.SOIL_EC_US_CM: 200,
        Quantity.BATTERY_V: 3.6,
    }
    port, payload = encode_quantities(LSE01, values)
    assert (port, payload.hex()) == (2, "0e10000007a5ff7e00c800")


def test_atm41_encoding_reproduces_the_vendor_example_readings() -> None:
    values = {
        Quantity.SOLAR_RADIATION_W_M2: 10,
        Quantity.RAIN_MM: 0,
        Quantity.WIND_SPEED_MS: 0.09,
        Quantity.WIND_DIRECTION_DEG: 29.9,
        Quantity.AIR_TEMPERATURE_C: 26.4,
        Quantity.PRESSURE_HPA: 959.6,
        Quantity.HUMIDITY_PCT: 52.4,
        Quantity.BATTERY_V: 3.061,
    }
    port, payload = encode_quantities(ATM41, values)
    fields = decode(ATM41, port, payload).fields
    example = decode(ATM41, 1, ATM41_EXAMPLE).fields
    # the derived words (vapour pressure, wind components) come out as the real station reported them
    for name in ("vapor_pressure", "north_wind_speed", "east_wind_speed", "atmospheric_pressure", "wind_direction"):
        assert fields[name] == example[name]
    assert fields["sensor_temperature_internal"]["value"] == 26.4  # defaults to the air temperature


def test_missing_quantity_is_named() -> None:
    with pytest.raises(ValueError, match="missing quantity soil_ec_us_cm"):
        encode_quantities(LSE01, {Quantity.SOIL_VWC: 0.2, Quantity.SOIL_TEMPERATURE_C: 10, Quantity.BATTERY_V: 3.6})


@pytest.mark.parametrize(
    ("model_id", "quantity", "value", "message"),
    [
        (EM310, Quantity.DISTANCE_M, 70.0, "distance_m 70 is out of range \\(the payload carries 0..65.535\\)"),
        (EM310, Quantity.DISTANCE_M, -0.1, "distance_m -0.1 is out of range \\(0..\\)"),
        (EM310, Quantity.BATTERY_PCT, 101, "battery_pct 101 is out of range \\(0..100\\)"),
        (EM310, Quantity.TILT, 0.5, "tilt is a state, 0 or 1"),
        (EM310, Quantity.DISTANCE_M, float("nan"), "distance_m must be a finite number"),
        (LSE01, Quantity.BATTERY_V, 16.4, "battery_v 16.4 is out of range \\(the payload carries 0..16.383\\)"),
        (LSE01, Quantity.SOIL_VWC, 1.2, "soil_vwc 1.2 is out of range \\(0..1\\)"),
        (ATM41, Quantity.HUMIDITY_PCT, 100.5, "humidity_pct 100.5 is out of range \\(0..100\\)"),
        (ATM41, Quantity.SOLAR_RADIATION_W_M2, 40000, "solar_radiation_w_m2 40000 is out of range"),
    ],
)
def test_out_of_range_quantity_is_named(model_id: str, quantity: Quantity, value: float, message: str) -> None:
    values = {
        Quantity.DISTANCE_M: 1.0,
        Quantity.BATTERY_PCT: 90,
        Quantity.SOIL_VWC: 0.2,
        Quantity.SOIL_TEMPERATURE_C: 10,
        Quantity.SOIL_EC_US_CM: 300,
        Quantity.BATTERY_V: 3.6,
        Quantity.AIR_TEMPERATURE_C: 20,
        Quantity.HUMIDITY_PCT: 60,
        Quantity.PRESSURE_HPA: 1000,
        Quantity.RAIN_MM: 0,
        Quantity.WIND_SPEED_MS: 2,
        Quantity.WIND_DIRECTION_DEG: 270,
        Quantity.SOLAR_RADIATION_W_M2: 300,
    } | {quantity: value}
    with pytest.raises(ValueError, match=f"{model_id}: {message}"):
        encode_quantities(model_id, values)


# --- JS number semantics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (0.125, 2, "0.13"),  # an exact tie: JS rounds up where Python's format gives "0.12"
        (2.5, 0, "3"),
        (-2.5, 0, "-3"),
        (1.005, 2, "1.00"),  # 1.005 is really 1.00499999999999989…
        (-0.0, 2, "0.00"),
        (-0.001, 2, "-0.00"),
        (24.59, 2, "24.59"),
        (-327.67, 2, "-327.67"),
    ],
)
def test_to_fixed_matches_javascript(value: float, digits: int, expected: str) -> None:
    assert to_fixed(value, digits) == expected


def test_js_number_gives_ints_for_integral_values() -> None:
    assert (js_number(3.0), js_number(-0.0), js_number(0.09), js_number(7)) == (3, 0, 0.09, 7)
    assert [type(js_number(value)) for value in (3.0, 0.5)] == [int, float]


def test_a_quantity_given_as_none_counts_as_missing_and_a_non_number_is_named() -> None:
    with pytest.raises(ValueError, match="missing quantity distance_m"):
        encode_quantities(EM310, {Quantity.DISTANCE_M: None, Quantity.BATTERY_PCT: 90})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="distance_m must be a number, got 'far'"):
        encode_quantities(EM310, {Quantity.DISTANCE_M: "far", Quantity.BATTERY_PCT: 90})  # type: ignore[dict-item]


# --- Adeunis Temp 4: every frame code of the vendor codec (expected data from temp_lib.js run with node) ---------

TEMP4 = "adeunis/temp-4"
_QUIET = {"frameCounter": 0, "hardwareError": False, "lowBattery": False, "configurationDone": False}
_SINGLE = {"configurationInconsistency": False, "configuration2ChannelsActivated": False, "timestamp": False}
_STATUS = {**_QUIET, **_SINGLE}


@pytest.mark.parametrize(
    "hex_payload, expected",
    [
        (
            "105000120003000a000501",
            {
                "type": "0x10 Temp 4 configuration",
                "status": {**_QUIET, "frameCounter": 2, **_SINGLE, "configuration2ChannelsActivated": True},
                "transmissionPeriodKeepAlive": {"unit": "s", "value": 180},
                "numberOfHistorizationBeforeSending": 3,
                "numberOfSamplingBeforeHistorization": 10,
                "samplingPeriod": {"unit": "s", "value": 10},
                "redundantSamples": 1,
                "calculatedPeriodRecording": {"unit": "s", "value": 100},
                "calculatedSendingPeriod": {"unit": "s", "value": 300},
            },
        ),
        (
            "20000425",
            {
                "type": "0x20 Configuration",
                "status": _STATUS,
                "loraAdr": False,
                "loraProvisioningMode": "OTAA",
                "loraDutycyle": "activated",
                "loraClassMode": "CLASS A",
            },
        ),
        (
            "2000030005",
            {
                "type": "0x20 Configuration",
                "status": _STATUS,
                "sigfoxRetry": 3,
                "sigfoxDownlinkPeriod": {"unit": "m", "value": 5},
            },
        ),
        ("2000", {"type": "0x20 Configuration", "status": _STATUS, "partialDecoding": 1}),
        (
            "2f00ab07",
            {
                "type": "0x2f Downlink ack",
                "status": _STATUS,
                "downlinkFramecode": "0xab",
                "requestStatus": "errorOtherReason",
            },
        ),
        (
            "330001ff01",
            {"type": "0x33 Set register status", "status": _STATUS, "requestStatus": "success", "registerId": 65281},
        ),
        ("360000", {"type": "0x36 Alert message", "status": _STATUS, "alertCode": "normalState"}),
        ("360007", {"type": "0x36 Alert message", "status": _STATUS}),
        (
            "37000102030405ff",
            {"type": "0x37 Software version", "status": _STATUS, "appVersion": "1.2.3", "rtuVersion": "4.5.255"},
        ),
        (
            "5815011234020032abcdef01",
            {
                "type": "0x58 Temp 4 alarm",
                "status": {
                    **_QUIET,
                    "configurationDone": True,
                    "configurationInconsistency": False,
                    "configuration2ChannelsActivated": True,
                    "timestamp": True,
                },
                "timestamp": "2104-05-05T02:40:01.000",
                "alarms": [
                    {
                        "name": "temperature 1",
                        "alarmStatus": "highThreshold",
                        "temperature": {"unit": "°C", "value": 466},
                    },
                    {"name": "temperature 2", "alarmStatus": "lowThreshold", "temperature": {"unit": "°C", "value": 5}},
                ],
            },
        ),
        (
            "3005ff9c14aba3e9",
            {
                "type": "0x30 Temp 4 keep alive",
                "status": {**_STATUS, "configurationDone": True, "timestamp": True},
                "timestamp": "2023-12-28T19:22:17.000",
                "temperatures": [{"name": "temperature 1", "unit": "°C", "value": -10}],
            },
        ),
    ],
)
def test_temp4_frames_decode_as_the_vendor_codec_does(hex_payload: str, expected: dict[str, Any]) -> None:
    decoded = decode(TEMP4, 1, bytes.fromhex(hex_payload))
    assert decoded.fields == {"bytes": expected}
    assert _shape(decoded.fields) == _shape({"bytes": expected})
    assert list(decoded.fields["bytes"]) == list(expected)  # key order as the codec builds it


def test_temp4_alarm_and_keep_alive_give_probe_one_as_the_reading() -> None:
    assert decode(TEMP4, 1, bytes.fromhex("5815011234020032abcdef01")).value(Quantity.AIR_TEMPERATURE_C) == 466.0
    assert decode(TEMP4, 1, bytes.fromhex("3005ff9c14aba3e9")).value(Quantity.AIR_TEMPERATURE_C) == -10.0
    assert decode(TEMP4, 1, bytes.fromhex("37000102030405ff")).measurements == ()


def test_temp4_unknown_frame_code_is_the_vendors_unsupported_data_with_a_warning() -> None:
    decoded = decode(TEMP4, 1, bytes.fromhex("99ff00"))
    assert decoded.fields == {"bytes": {"type": "Unsupported"}}
    assert "0x99" in decoded.warnings[0]


@pytest.mark.parametrize(
    "hex_payload, offset",
    [("10500012", 4), ("2f00", 2), ("3300010f", 3), ("370001020304", 6), ("58000100", 3), ("30", 1), ("3004", 2)],
)
def test_temp4_frame_cut_short_names_the_offset(hex_payload: str, offset: int) -> None:
    with pytest.raises(DecodeError) as raised:
        decode(TEMP4, 1, bytes.fromhex(hex_payload))
    assert raised.value.offset == offset


def test_measurement_columns_behave_as_the_tuple_of_measurements() -> None:
    quantities, values = (Quantity.RAIN_MM, Quantity.BATTERY_V), (1.5, 3.6)
    columns = Measurements(quantities, values)
    expected = (Measurement(Quantity.RAIN_MM, 1.5), Measurement(Quantity.BATTERY_V, 3.6))
    assert columns == expected and expected == columns and columns == Measurements(quantities, values)
    assert columns != expected[:1] and Measurements((), ()) == ()
    assert (len(columns), columns[1], list(columns), columns[:1]) == (2, expected[1], list(expected), expected[:1])
    assert repr(columns) == repr(expected) and hash(columns) == hash(expected)
    assert columns[0].quantity is Quantity.RAIN_MM and not Measurements((), ())
    decoded = Decoded("m", 1, {}, columns)
    assert decoded.value(Quantity.BATTERY_V) == 3.6 and decoded == Decoded("m", 1, {}, expected)


def test_a_value_wholly_beyond_the_payload_names_where_the_payload_ends() -> None:
    # WSC1-L channel 0x0a with its length byte and value missing: the value would start at offset 2 of 1 byte
    with pytest.raises(DecodeError) as raised:
        decode("dragino/wsc1-l", 2, bytes.fromhex("0a"))
    assert raised.value.offset == 1 and "PM2_5" in raised.value.reason
