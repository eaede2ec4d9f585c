"""The flags the edge anomaly checks put on readings; the scheduler raises an inspect task for `SENSOR_FAULT`."""

from __future__ import annotations

SENSOR_FAULT = "sensor_fault"  # the reading is believed false: do not act on it, send someone to look at the sensor
FAULT_FLAG_PREFIX = "fault_"


def fault_flag(fault: str) -> str:
    """The flag naming a fault type, e.g. "fault_stuck_at"."""
    return f"{FAULT_FLAG_PREFIX}{fault}"


def fault_types_in(flags: tuple[str, ...] | list[str]) -> list[str]:
    """The fault types named by `flags`, sorted."""
    return sorted(flag[len(FAULT_FLAG_PREFIX) :] for flag in flags if flag.startswith(FAULT_FLAG_PREFIX))
