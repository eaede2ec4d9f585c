"""Generates docs/devices.md from the specs: `python -m decoders.docs` writes it, `--check` fails if it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from .registry import models

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "devices.md"
_CATEGORY_TITLES = {"fill-level": "Fill level", "soil": "Soil", "weather": "Weather", "other": "Other"}


def render() -> str:
    """The devices page, Markdown, one table per category."""
    lines = [
        "# Supported device models",
        "",
        "Generated from `firmware-specs/*.toml` by `python -m decoders.docs`; do not edit by hand.",
        "Decode one payload with `flurfunk decode MODEL PORT HEX`.",
        "",
    ]
    by_category: dict[str, list] = {}
    for model in models().values():
        by_category.setdefault(model.category, []).append(model)
    for category, title in _CATEGORY_TITLES.items():
        if category not in by_category:
            continue
        lines += [
            f"## {title}",
            "",
            "| model id | device | fPorts | quantities | encoder | spec |",
            "|---|---|---|---|---|---|",
        ]
        for model in sorted(by_category[category], key=lambda m: m.model_id):
            ports = "any" if model.ports is None else ", ".join(str(port) for port in sorted(model.ports))
            quantities = ", ".join(f"{q.value} ({q.unit})" for q in model.quantities) or "—"
            encoder = f"fPort {model.uplink_port}" if model.encode_with is not None else "—"
            lines.append(
                f"| `{model.model_id}` | {model.name} | {ports} | {quantities} | {encoder} | `{model.source}` |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC_PATH.exists() or DOC_PATH.read_text(encoding="utf-8") != text:
            print(f"{DOC_PATH} is out of date: run python -m decoders.docs", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.parent.mkdir(exist_ok=True)
    DOC_PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
