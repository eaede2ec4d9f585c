"""The Semtech UDP source on real sockets: GWMP samples, PUSH_ACK only after durability, bad input counted by reason."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flurfunk.contracts import Uplink
from gateway.lorawan import DeviceSession, FrameOpener, MType, SessionStore, build_data_frame
from gateway.lorawan.gwmp import encode_base64, pull_data, push_data
from gateway.simulator import ForwarderSimulator
from gateway.sources.semtech_udp import SemtechUdpConfig, SemtechUdpSource
from tests.conftest import shared_data

SAMPLES = json.loads(shared_data("lorawan-frames.json").read_text())["gwmp_samples"]
GATEWAY = "aa555a0000000101"
# The session of the lora-packet README frame, which the sample PUSH_DATA carries.
SESSION = DeviceSession(
    dev_eui="70b3d57ed0000001",
    dev_addr=0x49BE7DF1,
    nwk_s_key=bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3"),
    app_s_key=bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588"),
)
LOCAL = SemtechUdpConfig(host="127.0.0.1", port=0, log_interval_s=3600)


class Recorder:
    """An uplink handler that stores what it gets; it can be told to wait or to fail."""

    def __init__(self) -> None:
        self.uplinks: list[Uplink] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_with: Exception | None = None

    async def __call__(self, uplinks: Sequence[Uplink]) -> None:
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.uplinks.extend(uplinks)


async def eventually(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def frame(
    f_cnt: int, payload: bytes = b"\x01", nwk_s_key: bytes = SESSION.nwk_s_key, dev_addr: int = 0x49BE7DF1
) -> str:
    phy = build_data_frame(
        mtype=MType.UNCONFIRMED_DATA_UP,
        dev_addr=dev_addr,
        f_cnt=f_cnt,
        f_port=1,
        payload=payload,
        nwk_s_key=nwk_s_key,
        app_s_key=SESSION.app_s_key,
    )
    return encode_base64(phy)


def rxpk(data: str) -> dict[str, object]:
    return {"freq": 868.1, "rssi": -70, "lsnr": 6.5, "datr": "SF9BW125", "modu": "LORA", "stat": 1, "data": data}


Scenario = Callable[[SemtechUdpSource, ForwarderSimulator, Recorder], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, config: SemtechUdpConfig = LOCAL) -> None:
    async def main() -> None:
        recorder = Recorder()
        with SessionStore(tmp_path / "sessions.sqlite", [SESSION]) as store:
            async with SemtechUdpSource(config, FrameOpener(store), recorder) as source:
                forwarder = ForwarderSimulator(source.address, GATEWAY, {}, ack_timeout_s=0.3)
                async with forwarder:
                    await scenario(source, forwarder, recorder)

    asyncio.run(main())


def test_sample_push_data_gives_the_uplink_and_the_sample_push_ack(tmp_path: Path) -> None:
    async def scenario(source: SemtechUdpSource, forwarder: ForwarderSimulator, recorder: Recorder) -> None:
        forwarder.send_raw(bytes.fromhex(SAMPLES["PUSH_DATA"]))
        await eventually(lambda: len(forwarder.received) == 1)
        assert forwarder.received[0] == ("up", bytes.fromhex(SAMPLES["PUSH_ACK"]))
        (uplink,) = recorder.uplinks
        assert (uplink.dev_eui, uplink.f_cnt, uplink.f_port, uplink.payload) == (SESSION.dev_eui, 2, 1, b"test")
        assert uplink.received_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
        assert uplink.source == "semtech_udp"
        (rx,) = uplink.rx
        assert (rx.gateway_id, rx.rssi, rx.snr, rx.frequency_hz, rx.data_rate) == (
            GATEWAY,
            -35,
            5.1,
            868_500_000,
            "SF7BW125",
        )
        assert source.gateways()[GATEWAY].rxpk == 1

    run(tmp_path, scenario)


def test_sample_pull_data_is_answered_with_the_sample_pull_ack(tmp_path: Path) -> None:
    async def scenario(source: SemtechUdpSource, forwarder: ForwarderSimulator, recorder: Recorder) -> None:
        forwarder.send_raw(bytes.fromhex(SAMPLES["PULL_DATA"]), via="down")
        await eventually(lambda: len(forwarder.received) == 1)
        assert forwarder.received[0] == ("down", bytes.fromhex(SAMPLES["PULL_ACK"]))
        assert source.gateways()[GATEWAY].pull_address == forwarder.addresses["down"]
        forwarder.send_raw(bytes.fromhex(SAMPLES["TX_ACK_error"]), via="down")
        await eventually(lambda: source.stats().tx_ack == 1)

    run(tmp_path, scenario)


def test_push_ack_waits_until_the_handler_has_made_the_uplinks_durable(tmp_path: Path) -> None:
    async def scenario(source: SemtechUdpSource, forwarder: ForwarderSimulator, recorder: Recorder) -> None:
        recorder.release.clear()
        forwarder.send_raw(push_data(0x0101, GATEWAY, {"rxpk": [rxpk(frame(10))]}))
        await asyncio.sleep(0.3)
        assert forwarder.received == []  # the handler has not returned: no ack yet
        recorder.release.set()
        await eventually(lambda: len(forwarder.received) == 1)
        assert forwarder.received[0][1] == bytes.fromhex("02010101")
        assert [u.f_cnt for u in recorder.uplinks] == [10]

    run(tmp_path, scenario)


def test_failed_handler_means_no_ack_and_the_retry_is_accepted(tmp_path: Path) -> None:
    async def scenario(source: SemtechUdpSource, forwarder: ForwarderSimulator, recorder: Recorder) -> None:
        recorder.fail_with = OSError("disk I/O error")
        datagram = push_data(0x0202, GATEWAY, {"rxpk": [rxpk(frame(20))]})
        forwarder.send_raw(datagram)
        await eventually(lambda: source.stats().dropped.get("not_durable") == 1)
        await asyncio.sleep(0.1)
        assert forwarder.received == []
        recorder.fail_with = None
        forwarder.send_raw(datagram)  # the forwarder's retry: the frame counter was rolled back, so it counts
        await eventually(lambda: len(forwarder.received) == 1)
        assert [u.f_cnt for u in recorder.uplinks] == [20]

    run(tmp_path, scenario)


def test_frames_are_counted_by_reason_and_logged_once_per_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = bytes(16)
    packets = [
        rxpk(frame(30)),
        rxpk(frame(31, nwk_s_key=wrong_key)),  # wrong MIC
        rxpk(frame(31, nwk_s_key=wrong_key)),
        rxpk(frame(29)),  # replay
        rxpk(frame(30 + 20_000)),  # far jump
        rxpk(frame(32, dev_addr=0x01020304)),  # unknown DevAddr
        rxpk(encode_base64(bytes.fromhex("40f17dbe49000200"))),  # truncated
        rxpk(encode_base64(bytes.fromhex(json.loads(shared_data("lorawan-frames.json").read_text())
                                          ["vectors"][-1]["phy_hex"]))),  # a join request: fine, not decoded
        {**rxpk(frame(33)), "stat": -1},  # CRC failed
        rxpk(frame(31)),
    ]  # fmt: skip

    async def scenario(source: SemtechUdpSource, forwarder: ForwarderSimulator, recorder: Recorder) -> None:
        assert await forwarder.push({"rxpk": packets})
        assert [u.f_cnt for u in recorder.uplinks] == [30, 31]
        stats = source.stats()
        assert stats.dropped == {
            "mic_mismatch": 2,
            "fcnt_replay": 1,
            "fcnt_jump": 1,
            "unknown_devaddr": 1,
            "malformed_frame": 1,
            "crc_error": 1,
        }
        assert stats.ignored == {"not_data_uplink": 1}
        assert stats.uplinks == 2 and stats.push_acks == 1

    with caplog.at_level(logging.WARNING, logger="gateway.sources.semtech_udp"):
        run(tmp_path, scenario)
    mic_lines = [r for r in caplog.records if getattr(r, "reason", None) == "mic_mismatch"]
    assert len(mic_lines) == 1
    assert SESSION.nwk_s_key.hex() not in caplog.text and SESSION.app_s_key.hex() not in caplog.text


HOSTILE = [
    (b"\x02", "too_short"),  # (asyncio does not send empty datagrams; the parser's properties cover b"")
    (b"\x02\x00", "too_short"),
    (b"\x03\x12\x34\x00" + bytes.fromhex(GATEWAY) + b"{}", "wrong_version"),
    (b"\x02\x12\x34\x09", "unknown_type"),
    (b"\x02\x12\x34\x00\xaa", "too_short"),  # PUSH_DATA without a whole gateway EUI
    (b"\x02\x12\x34\x01", "unexpected_type"),  # a PUSH_ACK sent to the server
    (push_data(1, GATEWAY, {"rxpk": []})[:-1] + b"!", "bad_json"),
    (b"\x02\x12\x34\x00" + bytes.fromhex(GATEWAY) + b"\xff\xfe{", "bad_json"),
    (b"\x02\x12\x34\x00" + bytes.fromhex(GATEWAY) + b"[" * 10_000 + b"]" * 10_000, "oversized"),
    (push_data(2, GATEWAY, {"rxpk": [rxpk("QPF9vkkAAgAB!UN4disR/w0")]}), "bad_base64"),
    (push_data(3, GATEWAY, {"rxpk": [{"data": "QAE="}]}), "bad_rxpk"),
    (push_data(4, GATEWAY, {"rxpk": 7}), "bad_rxpk"),
    (push_data(5, GATEWAY, {"stat": "fine"}), "bad_stat"),
]


def test_hostile_datagrams_are_counted_and_the_server_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(source: SemtechUdpSource, forwarder: ForwarderSimulator, recorder: Recorder) -> None:
        for datagram, _ in HOSTILE * 3:
            forwarder.send_raw(datagram)
        forwarder.send_raw(pull_data(0x7777, GATEWAY), via="down")
        await eventually(lambda: ("down", bytes.fromhex("02777704")) in forwarder.received)
        expected: dict[str, int] = {}
        for _, reason in HOSTILE:
            expected[reason] = expected.get(reason, 0) + 3
        await eventually(lambda: source.stats().dropped == expected)
        assert recorder.uplinks == []

    config = SemtechUdpConfig(host="127.0.0.1", port=0, max_datagram_bytes=8192, log_interval_s=3600)
    with caplog.at_level(logging.WARNING, logger="gateway.sources.semtech_udp"):
        run(tmp_path, scenario, config)
    logged = [getattr(r, "reason", None) for r in caplog.records]
    assert sorted(set(logged) - {None}) == sorted({reason for _, reason in HOSTILE})
    assert all(logged.count(reason) == 1 for _, reason in HOSTILE)  # three times each, logged once


def test_run_serves_until_cancelled(tmp_path: Path) -> None:
    async def main() -> None:
        with SessionStore(tmp_path / "sessions.sqlite", [SESSION]) as store:
            source = SemtechUdpSource(LOCAL, FrameOpener(store), Recorder())
            task = asyncio.create_task(source.run())
            await eventually(lambda: source._transport is not None)
            async with ForwarderSimulator(source.address, GATEWAY, {}) as forwarder:
                assert await forwarder.pull()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(RuntimeError, match="not started"):
                source.address  # noqa: B018

    asyncio.run(main())
