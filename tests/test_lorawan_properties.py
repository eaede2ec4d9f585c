"""Hypothesis over the frame and GWMP parsers: any bytes give a result or a named error, never another exception."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.lorawan import (
    FRAME_REASONS,
    MAX_FCNT_GAP,
    CounterVerdict,
    DataFrame,
    DeviceSession,
    FrameError,
    FrameOpener,
    FrameRefusal,
    GwmpError,
    MType,
    OpenedFrame,
    OtherFrame,
    SessionStore,
    build_data_frame,
    parse_phy_payload,
    reconstruct_f_cnt,
)
from gateway.lorawan.gwmp import (
    DATAGRAM_REASONS,
    Datagram,
    PushData,
    decode_base64,
    encode_base64,
    parse_push_data,
    parse_rxpk,
    read_datagram,
)

SESSION = DeviceSession(
    dev_eui="70b3d57ed0000001",
    dev_addr=0x49BE7DF1,
    nwk_s_key=bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3"),
    app_s_key=bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588"),
)
ADDR_LE = SESSION.dev_addr.to_bytes(4, "little")


@pytest.fixture(scope="module")
def opener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrameOpener]:
    path: Path = tmp_path_factory.mktemp("sessions") / "s.sqlite"
    with SessionStore(path, [SESSION]) as store:
        yield FrameOpener(store)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8) | st.just([])
rxpk_like = st.fixed_dictionaries(
    {},
    optional={
        "data": st.text(max_size=40) | st.binary(max_size=30).map(encode_base64) | scalars,
        "freq": st.floats() | st.integers() | scalars,
        "rssi": st.integers(-300, 100) | scalars,
        "lsnr": st.floats() | scalars,
        "datr": st.sampled_from(["SF7BW125", "SF12BW125", ""]) | st.integers() | scalars,
        "modu": st.sampled_from(["LORA", "FSK", "other"]) | scalars,
        "time": st.text(max_size=40) | st.datetimes().map(lambda d: d.isoformat() + "Z") | scalars,
        "tmst": st.integers() | scalars,
        "stat": st.integers(-1, 1) | scalars,
    },
)


@given(st.binary(max_size=300))
def test_any_bytes_parse_as_a_frame_or_a_named_error(phy: bytes) -> None:
    try:
        frame = parse_phy_payload(phy)
    except FrameError as error:
        assert error.reason == "malformed_frame" and error.detail
        return
    assert isinstance(frame, DataFrame | OtherFrame)


@settings(max_examples=300)
@given(st.binary(max_size=300) | st.binary(max_size=60).map(lambda tail: b"\x40" + ADDR_LE + tail))
def test_opening_any_bytes_never_raises(opener: FrameOpener, phy: bytes) -> None:
    outcome = opener.open(phy)
    assert isinstance(outcome, OpenedFrame | FrameRefusal)
    if isinstance(outcome, FrameRefusal):
        assert outcome.reason in FRAME_REASONS
    opener.rollback()


@given(
    f_cnt=st.integers(0, 2**32 - 1),
    f_port=st.integers(1, 223),
    payload=st.binary(max_size=200),
    confirmed=st.booleans(),
    f_opts=st.binary(max_size=15),
)
def test_built_frames_parse_verify_and_decrypt_back(
    f_cnt: int, f_port: int, payload: bytes, confirmed: bool, f_opts: bytes
) -> None:
    phy = build_data_frame(
        mtype=MType.CONFIRMED_DATA_UP if confirmed else MType.UNCONFIRMED_DATA_UP,
        dev_addr=SESSION.dev_addr,
        f_cnt=f_cnt,
        f_port=f_port,
        payload=payload,
        nwk_s_key=SESSION.nwk_s_key,
        app_s_key=SESSION.app_s_key,
        f_opts=f_opts,
    )
    frame = parse_phy_payload(phy)
    assert isinstance(frame, DataFrame)
    assert (frame.f_port, frame.f_opts, frame.confirmed, frame.f_cnt16) == (f_port, f_opts, confirmed, f_cnt & 0xFFFF)
    from gateway.lorawan.frame import decrypt_frm_payload, mic_is_valid

    assert mic_is_valid(frame, SESSION.nwk_s_key, f_cnt)
    assert not mic_is_valid(frame, SESSION.nwk_s_key, f_cnt ^ 0x10000)  # the hidden upper bits count
    assert decrypt_frm_payload(frame, SESSION.nwk_s_key, SESSION.app_s_key, f_cnt) == payload


@given(last=st.integers(0, 2**32 - 1), step=st.integers(1, MAX_FCNT_GAP))
def test_counters_within_the_gap_are_reconstructed_exactly(last: int, step: int) -> None:
    counter = reconstruct_f_cnt(last, (last + step) & 0xFFFF)
    if last + step < 2**32:
        assert (counter.f_cnt, counter.verdict) == (last + step, CounterVerdict.NEXT)
    else:
        assert counter.verdict is CounterVerdict.JUMP


@given(last=st.integers(0, 2**32 - 1), back=st.integers(1, 0x7FFF))
def test_recent_counters_behind_the_last_are_replays(last: int, back: int) -> None:
    counter = reconstruct_f_cnt(last, (last - back) & 0xFFFF)
    if last - back >= 0:
        assert (counter.f_cnt, counter.verdict) == (last - back, CounterVerdict.REPLAY)
    else:
        assert counter.verdict in (CounterVerdict.JUMP, CounterVerdict.NEXT)


@given(st.binary(max_size=200))
def test_any_bytes_read_as_a_datagram_or_a_named_error(data: bytes) -> None:
    try:
        datagram = read_datagram(data)
    except GwmpError as error:
        assert error.reason in DATAGRAM_REASONS
        return
    assert isinstance(datagram, Datagram)


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_push_body_parses_or_names_its_error(body: bytes) -> None:
    try:
        push = parse_push_data(body)
    except GwmpError as error:
        assert error.reason in DATAGRAM_REASONS
        return
    assert isinstance(push, PushData)
    assert all(reason in DATAGRAM_REASONS for reason, _ in push.errors)


@given(st.lists(rxpk_like, max_size=4), scalars | st.dictionaries(st.sampled_from(["rxnb", "lati", "time"]), scalars))
def test_hostile_rxpk_and_stat_are_listed_as_errors(packets: list[dict], stat: object) -> None:
    push = parse_push_data(json.dumps({"rxpk": packets, "stat": stat}).encode())
    assert len(push.packets) + sum(1 for reason, _ in push.errors if reason != "bad_stat") == len(packets)
    for packet in push.packets:
        assert 100_000_000 <= packet.frequency_hz <= 3_000_000_000 and -200 <= packet.rssi <= 50


@given(st.binary(max_size=255))
def test_base64_reads_with_and_without_padding(data: bytes) -> None:
    assert decode_base64(encode_base64(data)) == data
    assert decode_base64(encode_base64(data, padded=False)) == data


def test_rxpk_errors_name_the_field() -> None:
    with pytest.raises(GwmpError, match="freq"):
        parse_rxpk({"data": "QAE=", "rssi": -50, "datr": "SF7BW125"})
    with pytest.raises(GwmpError, match="rssi"):
        parse_rxpk({"data": "QAE=", "freq": 868.1, "datr": "SF7BW125"})
    with pytest.raises(GwmpError, match="base64") as caught:
        parse_rxpk({"data": "Q!E=", "freq": 868.1, "rssi": -50, "datr": "SF7BW125"})
    assert caught.value.reason == "bad_base64"
