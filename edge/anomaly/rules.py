"""Hand rules that need no model: physical range, the firmware's zero, values stuck for hours, impossible rates."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

OUT_OF_RANGE = "out_of_range"
DROPOUT = "dropout"
STUCK_AT = "stuck_at"
SPIKE = "spike"

# What each family's primary quantity can physically read (sensor limits, not the weather's).
RANGE: dict[str, tuple[float, float]] = {"bin": (0.0, 5.0), "soil": (0.0, 0.65), "weather": (-45.0, 55.0)}
# Identical readings in a row that no healthy sensor of the family produces (noise moves the last digit).
STUCK_RUN: dict[str, int] = {"bin": 6, "soil": 6, "weather": 18}
# A step per reading the physics cannot make (bins and soil jump legitimately: emptying, watering), measured from the
# median of the last STEP_BASE readings: the reading after a spike returns to them and is no spike itself.
MAX_STEP: dict[str, float] = {"weather": 6.0}
STEP_BASE = 3
# Families whose firmware sends exactly 0 when the probe gives no value.
ZERO_IS_DROPOUT = frozenset({"bin", "soil"})


def rule_fault(family: str, history: Sequence[float], value: float) -> str | None:
    """The fault a rule is sure of for `value` after `history` (oldest first), or None."""
    low, high = RANGE[family]
    if family in ZERO_IS_DROPOUT and value == 0.0:
        return DROPOUT
    if not low <= value <= high:
        return OUT_OF_RANGE
    n = len(history)
    run = STUCK_RUN[family]
    if n >= run - 1 and all(v == value for v in islice(reversed(history), run - 1)):
        return STUCK_AT
    max_step = MAX_STEP.get(family)
    if max_step is not None and n:
        recent = sorted(islice(reversed(history), STEP_BASE))
        if abs(value - float(recent[len(recent) // 2])) > max_step:
            return SPIKE
    return None
