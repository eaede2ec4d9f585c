"""Open uplink data frames: find the session by DevAddr, reconstruct FCnt, check the MIC, refuse replays, decrypt.

`FrameOpener.open` never raises on bad input: it returns an `OpenedFrame` or a `FrameRefusal` whose `reason` is a
counter name. Counters advance in the `SessionStore` and reach its disk on `commit` (after the uplinks are durable).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.lorawan.errors import FrameError
from gateway.lorawan.fcnt import MAX_FCNT_GAP, CounterVerdict, reconstruct_f_cnt
from gateway.lorawan.frame import DataFrame, OtherFrame, decrypt_frm_payload, mic_is_valid, parse_phy_payload
from gateway.lorawan.session import DeviceSession, SessionStore

MALFORMED_FRAME = "malformed_frame"
NOT_DATA_UPLINK = "not_data_uplink"  # join requests, downlinks, proprietary frames: forwarded, not decoded
UNKNOWN_DEVADDR = "unknown_devaddr"
MIC_MISMATCH = "mic_mismatch"
FCNT_REPLAY = "fcnt_replay"
FCNT_JUMP = "fcnt_jump"
DUPLICATE_FRAME = "duplicate_frame"  # the very frame accepted last (a retransmission or a second reception)

FRAME_REASONS = (
    MALFORMED_FRAME,
    NOT_DATA_UPLINK,
    UNKNOWN_DEVADDR,
    MIC_MISMATCH,
    FCNT_REPLAY,
    FCNT_JUMP,
    DUPLICATE_FRAME,
)


@dataclass(frozen=True)
class OpenedFrame:
    """An authentic, fresh uplink: its session's DevEUI, the 32-bit FCnt and the decrypted FRMPayload."""

    dev_eui: str
    dev_addr: int
    f_cnt: int
    f_port: int | None  # None: no FPort (FOpts only); 0: MAC commands in the payload
    payload: bytes
    confirmed: bool
    adr: bool
    f_opts: bytes
    counter_reset: bool = False

    @property
    def is_application_data(self) -> bool:
        return self.f_port is not None and self.f_port > 0


@dataclass(frozen=True)
class FrameRefusal:
    """Why a frame yields no uplink; `reason` is one of FRAME_REASONS. Carries no key material."""

    reason: str
    detail: str
    dev_addr: int | None = None
    dev_eui: str | None = None
    f_cnt: int | None = None


class FrameOpener:
    """Turns PHYPayloads into opened uplinks against the sessions of a `SessionStore`."""

    def __init__(self, sessions: SessionStore, max_f_cnt_gap: int = MAX_FCNT_GAP) -> None:
        self.sessions = sessions
        self.max_f_cnt_gap = max_f_cnt_gap

    def open(self, phy: bytes) -> OpenedFrame | FrameRefusal:
        try:
            frame = parse_phy_payload(phy)
        except FrameError as error:
            return FrameRefusal(MALFORMED_FRAME, error.detail)
        if isinstance(frame, OtherFrame):
            return FrameRefusal(NOT_DATA_UPLINK, f"{frame.mtype.name} frame of {frame.size} bytes")
        if not frame.uplink:
            return FrameRefusal(NOT_DATA_UPLINK, f"{frame.mtype.name} frame", dev_addr=frame.dev_addr)
        candidates = self.sessions.by_dev_addr(frame.dev_addr)
        if not candidates:
            return FrameRefusal(UNKNOWN_DEVADDR, f"no session for DevAddr {frame.dev_addr:08x}", frame.dev_addr)
        refusals = [self._open_with(frame, session, bytes(phy)) for session in candidates]
        for outcome in refusals:
            if isinstance(outcome, OpenedFrame):
                return outcome
        # With several sessions on one DevAddr, the most telling refusal wins: a session whose MIC matched.
        authentic = [r for r in refusals if isinstance(r, FrameRefusal) and r.reason != MIC_MISMATCH]
        return (authentic or refusals)[0]  # type: ignore[return-value]

    def commit(self) -> None:
        self.sessions.commit()

    def rollback(self) -> None:
        self.sessions.rollback()

    def _open_with(self, frame: DataFrame, session: DeviceSession, phy: bytes) -> OpenedFrame | FrameRefusal:
        last = self.sessions.last_f_cnt(session)
        counter = reconstruct_f_cnt(last, frame.f_cnt16, self.max_f_cnt_gap)
        where = {"dev_addr": frame.dev_addr, "dev_eui": session.dev_eui}
        if not mic_is_valid(frame, session.nwk_s_key, counter.f_cnt):
            if (
                session.allow_f_cnt_reset
                and counter.f_cnt != frame.f_cnt16
                and mic_is_valid(frame, session.nwk_s_key, frame.f_cnt16)
            ):
                return self._accept(frame, session, phy, frame.f_cnt16, reset=True)
            return FrameRefusal(MIC_MISMATCH, f"MIC does not match at FCnt {counter.f_cnt}", **where)
        if counter.verdict is CounterVerdict.NEXT:
            return self._accept(frame, session, phy, counter.f_cnt, reset=False)
        if counter.verdict is CounterVerdict.REPEAT and self.sessions.last_frame_digest(session) == _digest(phy):
            return FrameRefusal(DUPLICATE_FRAME, f"FCnt {counter.f_cnt} heard before", f_cnt=counter.f_cnt, **where)
        if session.allow_f_cnt_reset and counter.verdict is not CounterVerdict.JUMP:
            return self._accept(frame, session, phy, counter.f_cnt, reset=True)
        if counter.verdict is CounterVerdict.JUMP:
            return FrameRefusal(
                FCNT_JUMP,
                f"FCnt {counter.f_cnt} is more than {self.max_f_cnt_gap} ahead of {last}",
                f_cnt=counter.f_cnt,
                **where,
            )
        return FrameRefusal(FCNT_REPLAY, f"FCnt {counter.f_cnt} is not after {last}", f_cnt=counter.f_cnt, **where)

    def _accept(self, frame: DataFrame, session: DeviceSession, phy: bytes, f_cnt: int, reset: bool) -> OpenedFrame:
        self.sessions.advance(session, f_cnt, _digest(phy))
        return OpenedFrame(
            dev_eui=session.dev_eui,
            dev_addr=frame.dev_addr,
            f_cnt=f_cnt,
            f_port=frame.f_port,
            payload=decrypt_frm_payload(frame, session.nwk_s_key, session.app_s_key, f_cnt),
            confirmed=frame.confirmed,
            adr=frame.adr,
            f_opts=frame.f_opts,
            counter_reset=reset,
        )


def _digest(phy: bytes) -> bytes:
    return hashlib.blake2b(phy, digest_size=8).digest()
