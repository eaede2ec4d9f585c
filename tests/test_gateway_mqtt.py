"""LNS MQTT event parsing: ChirpStack v4 and The Things Stack v3 events become Uplinks; bad ones name the cause."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flurfunk.contracts import Uplink
from gateway.sources.mqtt import (
    BAD_BASE64,
    BAD_FIELD,
    NO_APPLICATION_PAYLOAD,
    NOT_JSON,
    TOO_LARGE,
    EventError,
    parse_chirpstack_up,
    parse_tts_up,
)

NOW = datetime(2026, 7, 6, 12, 0, tzinfo=UTC)
PAYLOAD = bytes.fromhex("017561038220030400")


def chirpstack_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-07-06T11:59:58.123456+00:00",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "deviceProfileName": "EM310",
            "deviceName": "bin-17",
            "devEui": "24E124713B221234",
        },
        "devAddr": "01fb0a52",
        "dr": 3,
        "fCnt": 77,
        "fPort": 85,
        "data": base64.b64encode(PAYLOAD).decode(),
        "rxInfo": [{"gatewayId": "0016c001ff10a235", "uplinkId": 4217, "rssi": -104, "snr": -3.5}],
        "txInfo": {"frequency": 868300000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 9}}},
    }
    event.update(overrides)
    return event


def tts_event(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "f_port": 85,
        "f_cnt": 12,
        "frm_payload": base64.b64encode(PAYLOAD).decode(),
        "rx_metadata": [
            {"gateway_ids": {"gateway_id": "gw-orb", "eui": "B827EBFFFE6A1F0C"}, "rssi": -97, "snr": 7.25},
            {"gateway_ids": {"gateway_id": "packetbroker"}, "rssi": -120, "snr": -9},
        ],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}}, "frequency": "867100000"},
        "received_at": "2026-07-06T11:59:57.5Z",
    }
    message.update(overrides.pop("uplink_message", {}))
    event: dict[str, Any] = {
        "end_device_ids": {
            "device_id": "bin-17",
            "dev_eui": "24E124713B221234",
            "application_ids": {"application_id": "x"},
        },
        "received_at": "2026-07-06T11:59:58.212859223Z",
        "uplink_message": message,
    }
    event.update(overrides)
    return event


def encoded(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def test_chirpstack_event_becomes_an_uplink() -> None:
    uplink = parse_chirpstack_up(encoded(chirpstack_event()), NOW)
    assert uplink.dev_eui == "24e124713b221234"
    assert (uplink.f_port, uplink.f_cnt, uplink.payload) == (85, 77, PAYLOAD)
    assert uplink.received_at == datetime(2026, 7, 6, 11, 59, 58, 123456, tzinfo=UTC)
    assert uplink.source == "chirpstack"
    (rx,) = uplink.rx
    assert (rx.gateway_id, rx.rssi, rx.snr, rx.frequency_hz, rx.data_rate) == (
        "0016c001ff10a235",
        -104,
        -3.5,
        868_300_000,
        "SF9BW125",
    )


def test_chirpstack_zero_values_are_omitted_not_missing() -> None:
    event = chirpstack_event()
    del event["fCnt"]  # ChirpStack leaves out zero values
    event["rxInfo"] = [{"gatewayId": "0016c001ff10a235"}]
    uplink = parse_chirpstack_up(encoded(event), NOW)
    assert uplink.f_cnt == 0
    assert (uplink.rx[0].rssi, uplink.rx[0].snr) == (0, 0.0)


def test_chirpstack_without_time_takes_the_gateway_clock() -> None:
    event = chirpstack_event()
    del event["time"]
    assert parse_chirpstack_up(encoded(event), NOW).received_at == NOW


def test_tts_event_becomes_an_uplink_with_nanosecond_time_and_string_frequency() -> None:
    uplink = parse_tts_up(encoded(tts_event()), NOW)
    assert uplink.dev_eui == "24e124713b221234"
    assert (uplink.f_port, uplink.f_cnt, uplink.payload, uplink.source) == (85, 12, PAYLOAD, "tts")
    assert uplink.received_at == datetime(2026, 7, 6, 11, 59, 58, 212859, tzinfo=UTC)
    # the Packet Broker reception has no gateway EUI and is left out
    (rx,) = uplink.rx
    assert (rx.gateway_id, rx.rssi, rx.snr, rx.frequency_hz, rx.data_rate) == (
        "b827ebfffe6a1f0c",
        -97,
        7.25,
        867_100_000,
        "SF7BW125",
    )


def test_unpadded_base64_is_accepted() -> None:
    event = chirpstack_event(data=base64.b64encode(PAYLOAD).decode().rstrip("="))
    assert parse_chirpstack_up(encoded(event), NOW).payload == PAYLOAD


@pytest.mark.parametrize(
    ("body", "reason", "names"),
    [
        (b"{not json", NOT_JSON, "not JSON"),
        (b"[1, 2]", NOT_JSON, "JSON object"),
        (b" " * 70_000, TOO_LARGE, "limit"),
        (encoded(chirpstack_event(data="@@@@")), BAD_BASE64, "data"),
        (encoded(chirpstack_event(fPort=0)), NO_APPLICATION_PAYLOAD, "fPort"),
        (encoded(chirpstack_event(fPort=300)), BAD_FIELD, "fPort"),
        (encoded(chirpstack_event(fCnt="seven")), BAD_FIELD, "fCnt"),
        (encoded(chirpstack_event(fCnt=True)), BAD_FIELD, "fCnt"),
        (encoded(chirpstack_event(deviceInfo={"devEui": "xyz"})), BAD_FIELD, "dev_eui"),
        (encoded(chirpstack_event(deviceInfo={})), BAD_FIELD, "deviceInfo.devEui"),
        (encoded(chirpstack_event(time="yesterday")), BAD_FIELD, "time"),
        (encoded(chirpstack_event(time="2026-07-06T12:00:00")), BAD_FIELD, "time zone"),
        (encoded(chirpstack_event(rxInfo=[{"gatewayId": "0016c001ff10a235", "rssi": -999}])), BAD_FIELD, "rssi"),
        (encoded(chirpstack_event(rxInfo="many")), BAD_FIELD, "rxInfo"),
        (encoded(chirpstack_event(data=base64.b64encode(b"x" * 256).decode())), BAD_FIELD, "payload"),
    ],
)
def test_bad_chirpstack_events_are_refused_with_the_reason(body: bytes, reason: str, names: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_chirpstack_up(body, NOW)
    assert caught.value.reason == reason
    assert names in str(caught.value)


@pytest.mark.parametrize(
    ("event", "reason", "names"),
    [
        (tts_event(uplink_message={"f_port": None}), NO_APPLICATION_PAYLOAD, "fPort"),
        (tts_event(uplink_message={"frm_payload": "%%%"}), BAD_BASE64, "frm_payload"),
        (tts_event(uplink_message={"settings": {"frequency": "868.1"}}), BAD_FIELD, "frequency"),
        (tts_event(end_device_ids={"device_id": "x"}), BAD_FIELD, "end_device_ids.dev_eui"),
        ({"end_device_ids": {"dev_eui": "24E124713B221234"}, "join_accept": {}}, BAD_FIELD, "uplink_message"),
    ],
)
def test_bad_tts_events_are_refused_with_the_reason(event: dict[str, Any], reason: str, names: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_tts_up(encoded(event), NOW)
    assert caught.value.reason == reason
    assert names in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_an_uplink_or_an_event_error(body: bytes) -> None:
    for parse in (parse_chirpstack_up, parse_tts_up):
        try:
            assert isinstance(parse(body, NOW), Uplink)
        except EventError as error:
            assert error.reason.startswith("mqtt_")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["chirpstack", "tts"]), st.lists(st.text(max_size=20), min_size=1, max_size=3), json_values)
def test_any_field_replaced_by_any_json_value_never_escapes_as_another_error(
    flavour: str, path: list[str], value: Any
) -> None:
    event = chirpstack_event() if flavour == "chirpstack" else tts_event()
    target: Any = event
    for key in path[:-1]:
        if not isinstance(target, dict):
            break
        target = target.setdefault(key, {})
    if isinstance(target, dict):
        target[path[-1]] = value
    parse = parse_chirpstack_up if flavour == "chirpstack" else parse_tts_up
    try:
        assert isinstance(parse(encoded(event), NOW), Uplink)
    except EventError as error:
        assert error.reason.startswith("mqtt_")


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=0, max_size=222),
    st.integers(1, 223),
    st.integers(0, 2**32 - 1),
    st.integers(-150, 20),
    st.floats(-20, 15, allow_nan=False),
)
def test_valid_events_round_trip_their_fields(payload: bytes, f_port: int, f_cnt: int, rssi: int, snr: float) -> None:
    chirpstack = chirpstack_event(
        fPort=f_port,
        fCnt=f_cnt,
        data=base64.b64encode(payload).decode(),
        rxInfo=[{"gatewayId": "0016c001ff10a235", "rssi": rssi, "snr": snr}],
    )
    tts = tts_event(
        uplink_message={
            "f_port": f_port,
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(payload).decode(),
            "rx_metadata": [{"gateway_ids": {"eui": "B827EBFFFE6A1F0C"}, "rssi": rssi, "snr": snr}],
        }
    )
    for uplink in (parse_chirpstack_up(encoded(chirpstack), NOW), parse_tts_up(encoded(tts), NOW)):
        assert (uplink.f_port, uplink.f_cnt, uplink.payload) == (f_port, f_cnt, payload)
        assert (uplink.rx[0].rssi, uplink.rx[0].snr) == (rssi, snr)
