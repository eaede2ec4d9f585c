"""LoRaWAN 1.0.x PHYPayload: parse MHDR, FHDR (DevAddr, FCtrl, FCnt, FOpts), FPort, FRMPayload and MIC; build frames.

Pure: bytes in, a frame or a `FrameError` out. DevAddr is little-endian on air and an int here (print it `%08x`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gateway.lorawan.crypto import DOWNLINK, MIC_BYTES, UPLINK, compute_mic, crypt_frm_payload
from gateway.lorawan.errors import FrameError

MALFORMED_FRAME = "malformed_frame"
MAX_PHY_PAYLOAD_BYTES = 255  # a LoRa packet carries at most 255 bytes
MIN_DATA_FRAME_BYTES = 1 + 7 + MIC_BYTES  # MHDR, FHDR without FOpts, MIC
MAX_FOPTS_BYTES = 15
LORAWAN_R1 = 0


class MType(IntEnum):
    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_DATA_UP = 2
    UNCONFIRMED_DATA_DOWN = 3
    CONFIRMED_DATA_UP = 4
    CONFIRMED_DATA_DOWN = 5
    RFU = 6  # LoRaWAN 1.1: rejoin request
    PROPRIETARY = 7


DATA_MTYPES = frozenset(
    {MType.UNCONFIRMED_DATA_UP, MType.UNCONFIRMED_DATA_DOWN, MType.CONFIRMED_DATA_UP, MType.CONFIRMED_DATA_DOWN}
)
UPLINK_MTYPES = frozenset({MType.UNCONFIRMED_DATA_UP, MType.CONFIRMED_DATA_UP})


@dataclass(frozen=True)
class DataFrame:
    """A data frame as it travelled: FRMPayload still encrypted, FCnt only its 16 low bits."""

    mtype: MType
    major: int
    dev_addr: int
    adr: bool
    adr_ack_req: bool
    ack: bool
    f_pending_or_class_b: bool
    f_cnt16: int
    f_opts: bytes
    f_port: int | None
    frm_payload: bytes
    mic: bytes
    signed_part: bytes  # MHDR .. FRMPayload: what the MIC covers

    @property
    def uplink(self) -> bool:
        return self.mtype in UPLINK_MTYPES

    @property
    def confirmed(self) -> bool:
        return self.mtype in (MType.CONFIRMED_DATA_UP, MType.CONFIRMED_DATA_DOWN)

    @property
    def direction(self) -> int:
        return UPLINK if self.uplink else DOWNLINK


@dataclass(frozen=True)
class OtherFrame:
    """A frame that is not a data frame (join request/accept, proprietary, RFU): forwarded, never decoded."""

    mtype: MType
    major: int
    size: int


def parse_phy_payload(phy: bytes) -> DataFrame | OtherFrame:
    """Split a PHYPayload into its fields; raises FrameError(reason="malformed_frame") naming what is wrong."""
    if len(phy) > MAX_PHY_PAYLOAD_BYTES:
        raise FrameError(MALFORMED_FRAME, f"{len(phy)} bytes, more than a LoRa packet holds ({MAX_PHY_PAYLOAD_BYTES})")
    if not phy:
        raise FrameError(MALFORMED_FRAME, "empty PHYPayload")
    mhdr = phy[0]
    mtype = MType(mhdr >> 5)
    major = mhdr & 0x03
    if mtype not in DATA_MTYPES:
        return OtherFrame(mtype=mtype, major=major, size=len(phy))
    if major != LORAWAN_R1:
        raise FrameError(MALFORMED_FRAME, f"MHDR major version {major} is not LoRaWAN R1 (0)")
    if len(phy) < MIN_DATA_FRAME_BYTES:
        raise FrameError(MALFORMED_FRAME, f"data frame of {len(phy)} bytes, at least {MIN_DATA_FRAME_BYTES} needed")
    f_ctrl = phy[5]
    f_opts_len = f_ctrl & 0x0F
    body_end = len(phy) - MIC_BYTES
    f_opts_end = 8 + f_opts_len
    if f_opts_end > body_end:
        raise FrameError(
            MALFORMED_FRAME, f"FOptsLen {f_opts_len} needs {f_opts_end + MIC_BYTES} bytes, frame has {len(phy)}"
        )
    f_port = phy[f_opts_end] if f_opts_end < body_end else None
    if f_port == 0 and f_opts_len:
        raise FrameError(MALFORMED_FRAME, "FPort 0 (MAC commands in FRMPayload) together with FOpts")
    return DataFrame(
        mtype=mtype,
        major=major,
        dev_addr=int.from_bytes(phy[1:5], "little"),
        adr=bool(f_ctrl & 0x80),
        adr_ack_req=bool(f_ctrl & 0x40),
        ack=bool(f_ctrl & 0x20),
        f_pending_or_class_b=bool(f_ctrl & 0x10),
        f_cnt16=int.from_bytes(phy[6:8], "little"),
        f_opts=bytes(phy[8:f_opts_end]),
        f_port=f_port,
        frm_payload=bytes(phy[f_opts_end + 1 : body_end]) if f_port is not None else b"",
        mic=bytes(phy[body_end:]),
        signed_part=bytes(phy[:body_end]),
    )


def mic_is_valid(frame: DataFrame, nwk_s_key: bytes, f_cnt: int) -> bool:
    """Whether the frame's MIC matches NwkSKey and the full 32-bit frame counter `f_cnt`."""
    return compute_mic(nwk_s_key, frame.direction, frame.dev_addr, f_cnt, frame.signed_part) == frame.mic


def decrypt_frm_payload(frame: DataFrame, nwk_s_key: bytes, app_s_key: bytes, f_cnt: int) -> bytes:
    """The plaintext FRMPayload: AppSKey for FPort 1..255, NwkSKey for FPort 0."""
    key = nwk_s_key if frame.f_port == 0 else app_s_key
    return crypt_frm_payload(key, frame.direction, frame.dev_addr, f_cnt, frame.frm_payload)


def build_data_frame(
    *,
    mtype: MType,
    dev_addr: int,
    f_cnt: int,
    f_port: int | None,
    payload: bytes,
    nwk_s_key: bytes,
    app_s_key: bytes,
    adr: bool = False,
    adr_ack_req: bool = False,
    ack: bool = False,
    f_pending_or_class_b: bool = False,
    f_opts: bytes = b"",
) -> bytes:
    """A complete PHYPayload: FRMPayload encrypted (AppSKey, or NwkSKey on FPort 0) and the MIC appended."""
    if mtype not in DATA_MTYPES:
        raise ValueError(f"{mtype.name} is not a data frame type")
    if not 0 <= dev_addr < 2**32:
        raise ValueError(f"DevAddr must fit 32 bits, got {dev_addr}")
    if not 0 <= f_cnt < 2**32:
        raise ValueError(f"FCnt must fit 32 bits, got {f_cnt}")
    if len(f_opts) > MAX_FOPTS_BYTES:
        raise ValueError(f"FOpts holds at most {MAX_FOPTS_BYTES} bytes, got {len(f_opts)}")
    if f_port is None and payload:
        raise ValueError("a payload needs an FPort")
    if f_port is not None and not 0 <= f_port <= 255:
        raise ValueError(f"FPort must be 0..255, got {f_port}")
    if f_port == 0 and f_opts:
        raise ValueError("FPort 0 cannot go together with FOpts")
    direction = UPLINK if mtype in UPLINK_MTYPES else DOWNLINK
    f_ctrl = (adr << 7) | (adr_ack_req << 6) | (ack << 5) | (f_pending_or_class_b << 4) | len(f_opts)
    message = bytearray(((mtype << 5) | LORAWAN_R1,))
    message += dev_addr.to_bytes(4, "little") + bytes((f_ctrl,)) + (f_cnt & 0xFFFF).to_bytes(2, "little") + f_opts
    if f_port is not None:
        key = nwk_s_key if f_port == 0 else app_s_key
        message += bytes((f_port,)) + crypt_frm_payload(key, direction, dev_addr, f_cnt, payload)
    if len(message) + MIC_BYTES > MAX_PHY_PAYLOAD_BYTES:
        raise ValueError(f"frame of {len(message) + MIC_BYTES} bytes exceeds {MAX_PHY_PAYLOAD_BYTES}")
    return bytes(message) + compute_mic(nwk_s_key, direction, dev_addr, f_cnt, bytes(message))
