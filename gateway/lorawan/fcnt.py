"""16-to-32-bit frame-counter reconstruction: the air carries FCnt's low 16 bits, the session knows the rest."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_FCNT_GAP = 16_384  # LoRaWAN 1.0 MAX_FCNT_GAP: a larger forward jump is refused, not guessed
_HALF = 0x8000


class CounterVerdict(StrEnum):
    NEXT = "next"  # greater than the last accepted counter, within MAX_FCNT_GAP
    REPEAT = "repeat"  # equal to the last accepted counter (a retransmission or a replay)
    REPLAY = "replay"  # behind the last accepted counter
    JUMP = "jump"  # ahead by more than MAX_FCNT_GAP


@dataclass(frozen=True)
class Counter:
    f_cnt: int  # the full 32-bit counter the frame most plausibly carries (its MIC is checked against it)
    verdict: CounterVerdict


def reconstruct_f_cnt(last_f_cnt: int | None, f_cnt16: int, max_gap: int = MAX_FCNT_GAP) -> Counter:
    """The 32-bit counter nearest to `last_f_cnt` whose low 16 bits are `f_cnt16`, and how it relates to it.

    Without a last counter (a fresh session) the upper 16 bits are taken as 0, as LoRaWAN 1.0 devices start there.
    """
    if not 0 <= f_cnt16 <= 0xFFFF:
        raise ValueError(f"f_cnt16 must be 0..65535, got {f_cnt16}")
    if last_f_cnt is None:
        return Counter(f_cnt16, CounterVerdict.NEXT)
    ahead = (f_cnt16 - last_f_cnt) & 0xFFFF
    if ahead == 0:
        return Counter(last_f_cnt, CounterVerdict.REPEAT)
    if ahead < _HALF or last_f_cnt - (0x10000 - ahead) < 0:
        candidate = last_f_cnt + ahead
        if candidate >= 2**32:
            return Counter(candidate & 0xFFFFFFFF, CounterVerdict.JUMP)  # the counter cannot roll over in 1.0.x
        verdict = CounterVerdict.NEXT if ahead <= max_gap else CounterVerdict.JUMP
        return Counter(candidate, verdict)
    return Counter(last_f_cnt - (0x10000 - ahead), CounterVerdict.REPLAY)
