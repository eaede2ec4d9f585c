"""The built-in device models, one module each; `MODELS` is the registry keyed by model id."""

from __future__ import annotations

from ..layout import DeviceModel
from . import decentlab_dl_atm41, dragino_lse01, milesight_em310_udl

MODELS: dict[str, DeviceModel] = {
    module.MODEL.model_id: module.MODEL for module in (milesight_em310_udl, dragino_lse01, decentlab_dl_atm41)
}
