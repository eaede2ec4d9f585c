"""LoRaWAN 1.0.x frames: the published vectors, building frames, FCnt reconstruction and opening with sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.lorawan import (
    DUPLICATE_FRAME,
    FCNT_JUMP,
    FCNT_REPLAY,
    MALFORMED_FRAME,
    MAX_FCNT_GAP,
    MIC_MISMATCH,
    NOT_DATA_UPLINK,
    UNKNOWN_DEVADDR,
    CounterVerdict,
    DataFrame,
    DeviceSession,
    FrameError,
    FrameOpener,
    FrameRefusal,
    MType,
    OpenedFrame,
    OtherFrame,
    SessionStore,
    build_data_frame,
    parse_phy_payload,
    reconstruct_f_cnt,
)
from gateway.lorawan.crypto import compute_mic
from gateway.lorawan.frame import decrypt_frm_payload, mic_is_valid
from tests.conftest import shared_data

VECTORS_FILE = shared_data("lorawan-frames.json")
VECTORS = json.loads(VECTORS_FILE.read_text())["vectors"]
DATA_VECTORS = [v for v in VECTORS if v.get("kind") != "join_request"]
JOIN_VECTORS = [v for v in VECTORS if v.get("kind") == "join_request"]

NWK_S_KEY = bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3")
APP_S_KEY = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588")
DEV_ADDR = 0x49BE7DF1
DEV_EUI = "70b3d57ed0000001"


def _session(**overrides: object) -> DeviceSession:
    fields: dict[str, object] = {
        "dev_eui": DEV_EUI,
        "dev_addr": f"{DEV_ADDR:08x}",
        "nwk_s_key": NWK_S_KEY.hex(),
        "app_s_key": APP_S_KEY.hex(),
    }
    return DeviceSession.model_validate(fields | overrides)


def _frame(f_cnt: int, payload: bytes = b"\x01\x02", f_port: int | None = 2, **keys: bytes) -> bytes:
    return build_data_frame(
        mtype=MType.UNCONFIRMED_DATA_UP,
        dev_addr=DEV_ADDR,
        f_cnt=f_cnt,
        f_port=f_port,
        payload=payload,
        nwk_s_key=keys.get("nwk_s_key", NWK_S_KEY),
        app_s_key=keys.get("app_s_key", APP_S_KEY),
    )


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    with SessionStore(tmp_path / "sessions.sqlite", [_session()]) as sessions:
        yield sessions


# --- the published vectors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", DATA_VECTORS, ids=lambda v: v["id"])
def test_vector_fields_parse_as_published(vector: dict) -> None:
    frame = parse_phy_payload(bytes.fromhex(vector["phy_hex"]))
    expected = vector["parsed"]
    assert isinstance(frame, DataFrame)
    assert frame.mtype.name.replace("_", "").lower() == expected["mtype"].lower()
    assert frame.major == expected["major"]
    assert f"{frame.dev_addr:08x}" == expected["devaddr"]
    assert (frame.adr, frame.adr_ack_req, frame.ack) == (expected["adr"], expected["adr_ack_req"], expected["ack"])
    assert frame.f_pending_or_class_b == expected["fpending_or_classb"]
    assert len(frame.f_opts) == expected["foptslen"]
    assert frame.f_opts.hex() == expected["fopts"]
    assert frame.f_cnt16 == expected["fcnt16"]
    assert frame.f_port == expected["fport"]
    assert frame.frm_payload.hex() == expected["frmpayload"]
    assert frame.mic.hex() == expected["mic"]


@pytest.mark.parametrize("vector", DATA_VECTORS, ids=lambda v: v["id"])
def test_vector_mic_is_checked_as_published(vector: dict) -> None:
    frame = parse_phy_payload(bytes.fromhex(vector["phy_hex"]))
    assert isinstance(frame, DataFrame)
    nwk_s_key = bytes.fromhex(vector["nwkskey"])
    f_cnt = (vector["fcnt_msb"] << 16) | frame.f_cnt16
    computed = compute_mic(nwk_s_key, frame.direction, frame.dev_addr, f_cnt, frame.signed_part)
    assert computed.hex() == vector["computed_mic"]
    if vector.get("expected_mic"):
        assert computed.hex() == vector["expected_mic"]
    assert mic_is_valid(frame, nwk_s_key, f_cnt) is vector["mic_valid"]
    assert mic_is_valid(frame, nwk_s_key, f_cnt) is vector.get("expected_mic_valid", True)


@pytest.mark.parametrize("vector", [v for v in DATA_VECTORS if v.get("appskey")], ids=lambda v: v["id"])
def test_vector_payload_decrypts_as_published(vector: dict) -> None:
    frame = parse_phy_payload(bytes.fromhex(vector["phy_hex"]))
    assert isinstance(frame, DataFrame)
    f_cnt = (vector["fcnt_msb"] << 16) | frame.f_cnt16
    plain = decrypt_frm_payload(frame, bytes.fromhex(vector["nwkskey"]), bytes.fromhex(vector["appskey"]), f_cnt)
    assert plain.hex() == vector["expected_plain_hex"]
    if "expected_plain_ascii" in vector:
        assert plain.decode() == vector["expected_plain_ascii"]


@pytest.mark.parametrize("vector", JOIN_VECTORS, ids=lambda v: v["id"])
def test_join_requests_are_recognised_not_decoded(vector: dict) -> None:
    frame = parse_phy_payload(bytes.fromhex(vector["phy_hex"]))
    assert isinstance(frame, OtherFrame)
    assert frame.mtype is MType.JOIN_REQUEST


@pytest.mark.parametrize(
    "vector", [v for v in DATA_VECTORS if v.get("appskey") and v["mic_valid"]], ids=lambda v: v["id"]
)
def test_building_reproduces_the_vector_bytes(vector: dict) -> None:
    frame = parse_phy_payload(bytes.fromhex(vector["phy_hex"]))
    assert isinstance(frame, DataFrame)
    rebuilt = build_data_frame(
        mtype=frame.mtype,
        dev_addr=frame.dev_addr,
        f_cnt=frame.f_cnt16,
        f_port=frame.f_port,
        payload=bytes.fromhex(vector["expected_plain_hex"]),
        nwk_s_key=bytes.fromhex(vector["nwkskey"]),
        app_s_key=bytes.fromhex(vector["appskey"]),
        adr=frame.adr,
        ack=frame.ack,
        f_opts=frame.f_opts,
    )
    assert rebuilt.hex() == vector["phy_hex"].lower()


def test_fport_zero_payload_is_encrypted_with_the_network_key() -> None:
    phy = build_data_frame(
        mtype=MType.UNCONFIRMED_DATA_UP,
        dev_addr=DEV_ADDR,
        f_cnt=9,
        f_port=0,
        payload=b"\x02",  # LinkCheckReq
        nwk_s_key=NWK_S_KEY,
        app_s_key=APP_S_KEY,
    )
    frame = parse_phy_payload(phy)
    assert isinstance(frame, DataFrame)
    assert decrypt_frm_payload(frame, NWK_S_KEY, b"\x00" * 16, 9) == b"\x02"


@pytest.mark.parametrize(
    ("phy_hex", "words"),
    [
        ("", "empty"),
        ("40f17dbe4900020001", "at least 12"),
        ("43f17dbe4900020001954378762b11ff0d", "major version 3"),
        ("40f17dbe490f020001954378762b11ff0d", "FOptsLen 15"),
        ("40f17dbe490102000600954378762b11ff0d", "FPort 0"),
        ("40" + "00" * 300, "more than a LoRa packet"),
    ],
)
def test_malformed_frames_say_what_is_wrong(phy_hex: str, words: str) -> None:
    with pytest.raises(FrameError, match=words) as caught:
        parse_phy_payload(bytes.fromhex(phy_hex))
    assert caught.value.reason == MALFORMED_FRAME


# --- frame-counter reconstruction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "f_cnt16", "f_cnt", "verdict"),
    [
        (None, 7, 7, CounterVerdict.NEXT),
        (6, 7, 7, CounterVerdict.NEXT),
        (0xFFFF, 0, 0x10000, CounterVerdict.NEXT),  # the low 16 bits roll over, the counter goes on
        (0x2FFFE, 0x0003, 0x30003, CounterVerdict.NEXT),
        (100, 100, 100, CounterVerdict.REPEAT),
        (100, 99, 99, CounterVerdict.REPLAY),
        (0x10005, 0xFFF0, 0xFFF0, CounterVerdict.REPLAY),
        (100, 100 + MAX_FCNT_GAP, 100 + MAX_FCNT_GAP, CounterVerdict.NEXT),
        (100, 101 + MAX_FCNT_GAP, 101 + MAX_FCNT_GAP, CounterVerdict.JUMP),
        (5, 65530, 65530, CounterVerdict.JUMP),
        (2**32 - 2, 0, 0, CounterVerdict.JUMP),  # a 1.0 counter does not wrap past 2**32
    ],
)
def test_counter_reconstruction(last: int | None, f_cnt16: int, f_cnt: int, verdict: CounterVerdict) -> None:
    counter = reconstruct_f_cnt(last, f_cnt16)
    assert (counter.f_cnt, counter.verdict) == (f_cnt, verdict)


# --- opening frames against sessions ----------------------------------------------------------------------------


def test_opened_frame_carries_session_dev_eui_full_counter_and_plaintext(store: SessionStore) -> None:
    opener = FrameOpener(store)
    opened = opener.open(_frame(3, b"hello"))
    assert isinstance(opened, OpenedFrame)
    assert (opened.dev_eui, opened.f_cnt, opened.f_port, opened.payload) == (DEV_EUI, 3, 2, b"hello")


def test_counter_beyond_16_bits_is_opened_from_the_last_one(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "s.sqlite", [_session(last_f_cnt=70_000)]) as sessions:
        opened = FrameOpener(sessions).open(_frame(70_001, b"x"))
    assert isinstance(opened, OpenedFrame)
    assert opened.f_cnt == 70_001


@pytest.mark.parametrize(
    ("phy", "reason"),
    [
        (_frame(1, nwk_s_key=bytes(16)), MIC_MISMATCH),
        (bytes.fromhex("40F17DBE4900020001954478762B11FF0D"), MIC_MISMATCH),  # the bit-flip vector
        (bytes.fromhex("40F17DBE49000300012A3518AA"), MIC_MISMATCH),  # the bad-MIC vector
        (_frame(1)[:-6], MALFORMED_FRAME),
        (_frame(1)[:9], MALFORMED_FRAME),
        (bytes.fromhex("60f17dbe4920020001f9d65d27"), NOT_DATA_UPLINK),  # a downlink
        (bytes.fromhex(JOIN_VECTORS[0]["phy_hex"]), NOT_DATA_UPLINK),
        (bytes.fromhex("400403020100010001aabbccdd"), UNKNOWN_DEVADDR),
    ],
)
def test_refusals_name_their_reason(store: SessionStore, phy: bytes, reason: str) -> None:
    refusal = FrameOpener(store).open(phy)
    assert isinstance(refusal, FrameRefusal)
    assert refusal.reason == reason


def test_replayed_and_far_jumped_counters_are_refused(store: SessionStore) -> None:
    opener = FrameOpener(store)
    assert isinstance(opener.open(_frame(10)), OpenedFrame)
    assert isinstance(opener.open(_frame(11)), OpenedFrame)
    replay = opener.open(_frame(10))
    assert isinstance(replay, FrameRefusal) and replay.reason == FCNT_REPLAY
    same_counter = opener.open(_frame(11, b"other payload"))
    assert isinstance(same_counter, FrameRefusal) and same_counter.reason == FCNT_REPLAY
    jump = opener.open(_frame(11 + MAX_FCNT_GAP + 1))
    assert isinstance(jump, FrameRefusal) and jump.reason == FCNT_JUMP
    assert isinstance(opener.open(_frame(11 + MAX_FCNT_GAP)), OpenedFrame)


def test_the_same_frame_again_is_a_duplicate_not_a_replay(store: SessionStore) -> None:
    opener = FrameOpener(store)
    frame = _frame(5)
    assert isinstance(opener.open(frame), OpenedFrame)
    again = opener.open(frame)
    assert isinstance(again, FrameRefusal) and again.reason == DUPLICATE_FRAME


def test_counter_reset_is_accepted_only_where_configured(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "strict.sqlite", [_session(last_f_cnt=500)]) as strict:
        refusal = FrameOpener(strict).open(_frame(0))
        assert isinstance(refusal, FrameRefusal) and refusal.reason == FCNT_REPLAY
    with SessionStore(tmp_path / "relaxed.sqlite", [_session(last_f_cnt=70_000, allow_f_cnt_reset=True)]) as relaxed:
        opener = FrameOpener(relaxed)
        reset = opener.open(_frame(0))
        assert isinstance(reset, OpenedFrame) and reset.counter_reset and reset.f_cnt == 0
        assert isinstance(opener.open(_frame(1)), OpenedFrame)


def test_sessions_sharing_a_dev_addr_are_told_apart_by_the_mic(tmp_path: Path) -> None:
    other_keys = {"nwk_s_key": "11" * 16, "app_s_key": "22" * 16}
    twin = _session(dev_eui="70b3d57ed0000002", **other_keys)
    with SessionStore(tmp_path / "s.sqlite", [_session(), twin]) as sessions:
        opener = FrameOpener(sessions)
        mine = opener.open(_frame(1))
        theirs = opener.open(_frame(1, nwk_s_key=bytes.fromhex("11" * 16), app_s_key=bytes.fromhex("22" * 16)))
    assert isinstance(mine, OpenedFrame) and mine.dev_eui == DEV_EUI
    assert isinstance(theirs, OpenedFrame) and theirs.dev_eui == "70b3d57ed0000002"
