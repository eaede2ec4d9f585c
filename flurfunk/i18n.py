"""Texts that people read (tasks, alerts, pages, reports): German by default, English available."""

from __future__ import annotations

from typing import Literal

Language = Literal["de", "en"]
DEFAULT_LANGUAGE: Language = "de"

# key -> language -> template (str.format placeholders)
MESSAGES: dict[str, dict[Language, str]] = {
    "task.collect.reason": {
        "de": "Behälter {asset} ist zu {fill_pct:.0f} % gefüllt (Schwelle {threshold_pct:.0f} %).",
        "en": "Bin {asset} is {fill_pct:.0f}% full (threshold {threshold_pct:.0f}%).",
    },
    "task.water.reason": {
        "de": "Boden bei {asset} ist trocken: {vwc_pct:.0f} % Wassergehalt (Schwelle {threshold_pct:.0f} %); "
        "{litres:.0f} l gießen.",
        "en": "Soil at {asset} is dry: {vwc_pct:.0f}% water content (threshold {threshold_pct:.0f}%); "
        "water {litres:.0f} L.",
    },
    "task.inspect.battery": {
        "de": "Batterie von Sensor {device} an {asset} ist schwach ({battery:.2f} V).",
        "en": "Battery of sensor {device} at {asset} is low ({battery:.2f} V).",
    },
    "task.kind.collect": {"de": "Leeren", "en": "Collect"},
    "task.kind.water": {"de": "Gießen", "en": "Water"},
    "task.kind.maintain": {"de": "Wartung", "en": "Maintain"},
    "task.kind.inspect": {"de": "Prüfen", "en": "Inspect"},
}


def text(key: str, language: Language = DEFAULT_LANGUAGE, **values: object) -> str:
    """The message `key` in `language`, filled with `values`; KeyError names a missing key."""
    try:
        template = MESSAGES[key][language]
    except KeyError as error:
        raise KeyError(f"no text {key!r} in language {language!r}") from error
    return template.format(**values)
