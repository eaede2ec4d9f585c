"""Payload decoders: `decode(model_id, f_port, payload)` gives the vendor codec's fields and normalised measurements;
`encode_quantities` gives the uplink a device would send for given values. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from flurfunk.contracts import Quantity

from .decoded import Decoded, Measurement
from .errors import DecodeError, SpecError, UnknownModelError
from .layout import DeviceModel
from .registry import models

__all__ = [
    "DecodeError",
    "Decoded",
    "Measurement",
    "SpecError",
    "UnknownModelError",
    "decode",
    "encode_quantities",
    "model",
    "model_ids",
]


def model_ids() -> list[str]:
    """The device models we can decode, sorted."""
    return sorted(models())


def model(model_id: str) -> DeviceModel:
    """The registered format of `model_id` (its ports, fields, quantities); UnknownModelError if there is none."""
    try:
        return models()[model_id]
    except KeyError:
        raise UnknownModelError(model_id, model_ids()) from None


def decode(model_id: str, f_port: int, payload: bytes) -> Decoded:
    """Decode one uplink; DecodeError names what was wrong and at which byte offset."""
    device = models().get(model_id)
    if device is None:
        raise UnknownModelError(model_id, model_ids())
    return device.decode(f_port, payload)


def encode_quantities(model_id: str, values: Mapping[Quantity, float]) -> tuple[int, bytes]:
    """The uplink (fPort, payload) the real device would send for these physical values.

    Quantities the model does not carry are ignored; a missing or out-of-range one raises ValueError naming it.
    """
    return model(model_id).encode(values)
