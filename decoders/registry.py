"""The registry of device models: every spec in firmware-specs/ compiled once, keyed by model id."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from .errors import SpecError
from .layout import DeviceModel
from .spec import load_spec

# The specs live beside the packages in the repository; FLURFUNK_FIRMWARE_SPECS points elsewhere (an installed
# gateway, or a technician's folder with a new model).
SPEC_DIR = Path(os.environ.get("FLURFUNK_FIRMWARE_SPECS", Path(__file__).resolve().parents[1] / "firmware-specs"))


def load_models(directory: Path) -> dict[str, DeviceModel]:
    """Compile every *.toml spec in `directory`; SpecError on the first wrong one or on a model id given twice."""
    models: dict[str, DeviceModel] = {}
    for path in sorted(directory.glob("*.toml")):
        model = load_spec(path)
        if model.model_id in models:
            raise SpecError(
                path.name, "model_id", f"{model.model_id} is also defined in {models[model.model_id].source}"
            )
        models[model.model_id] = model
    return models


@cache
def models() -> dict[str, DeviceModel]:
    """The built-in models (compiled on first use)."""
    return load_models(SPEC_DIR)
