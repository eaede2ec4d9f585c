"""LoRaWAN 1.0.x on the gateway: frames (parse, MIC, decrypt, build), device sessions and their frame counters,
and the Semtech UDP (GWMP v2) datagrams that carry the frames from the packet forwarder.

Entry: `FrameOpener(SessionStore(path, load_sessions(bundle))).open(phy_payload)`.
"""

from gateway.lorawan.errors import FrameError, GwmpError, KeyFileModeError, SessionConfigError
from gateway.lorawan.fcnt import MAX_FCNT_GAP, CounterVerdict, reconstruct_f_cnt
from gateway.lorawan.frame import DataFrame, MType, OtherFrame, build_data_frame, parse_phy_payload
from gateway.lorawan.opener import (
    DUPLICATE_FRAME,
    FCNT_JUMP,
    FCNT_REPLAY,
    FRAME_REASONS,
    MALFORMED_FRAME,
    MIC_MISMATCH,
    NOT_DATA_UPLINK,
    UNKNOWN_DEVADDR,
    FrameOpener,
    FrameRefusal,
    OpenedFrame,
)
from gateway.lorawan.session import DeviceSession, SessionStore, load_sessions, write_sessions

__all__ = [
    "DUPLICATE_FRAME",
    "FCNT_JUMP",
    "FCNT_REPLAY",
    "FRAME_REASONS",
    "MALFORMED_FRAME",
    "MAX_FCNT_GAP",
    "MIC_MISMATCH",
    "NOT_DATA_UPLINK",
    "UNKNOWN_DEVADDR",
    "CounterVerdict",
    "DataFrame",
    "DeviceSession",
    "FrameError",
    "FrameOpener",
    "FrameRefusal",
    "GwmpError",
    "KeyFileModeError",
    "MType",
    "OpenedFrame",
    "OtherFrame",
    "SessionConfigError",
    "SessionStore",
    "build_data_frame",
    "load_sessions",
    "parse_phy_payload",
    "reconstruct_f_cnt",
    "write_sessions",
]
