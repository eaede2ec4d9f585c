"""The spec compiler: wrong specs fail naming file, field and reason; the devices page is generated from the specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from decoders import SpecError
from decoders.docs import DOC_PATH, render
from decoders.registry import SPEC_DIR, load_models
from decoders.spec import load_spec

GOOD = """
spec_version = 1
model_id = "acme/bin"
name = "Acme bin sensor"
category = "fill-level"
[encoder]
port = 2
[[uplink]]
ports = [2]
layout = "fixed"
fields = [{ name = "distance", type = "u16be", measure = { quantity = "distance_m", divisor = 1000 } }]
"""


def _spec(tmp_path: Path, text: str, name: str = "acme-bin.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_spec_compiles_decodes_and_encodes(tmp_path: Path) -> None:
    model = load_spec(_spec(tmp_path, GOOD))
    assert model.decode(2, bytes.fromhex("0af0")).fields == {"distance": 2800}
    assert model.encode({"distance_m": 2.8}) == (2, bytes.fromhex("0af0"))  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (('type = "u16be"', 'type = "u17"'), "uplink[0].fields[0].type", "'u17' is not one of"),
        (('quantity = "distance_m"', 'quantity = "depth"'), "uplink[0].fields[0].measure.quantity", "not a contract"),
        (('layout = "fixed"', 'layout = "magic"'), "uplink[0].layout", "'magic' is not one of"),
        (('category = "fill-level"', 'category = "bins"'), "category", "'bins' is not one of"),
        (('model_id = "acme/bin"', 'model_id = "Acme Bin"'), "model_id", "is not vendor/device"),
        (("ports = [2]", "ports = [0]"), "uplink[0].ports", "fPorts 1..255"),
        (("divisor = 1000", "divisor = 0"), "uplink[0].fields[0].measure.divisor", "must not be 0"),
        (('name = "distance",', 'name = "distance", colour = 3,'), "uplink[0].fields[0].colour", "is not a key"),
        (("port = 2", "port = 3"), "encoder.uplink", "decodes fPort 3"),
    ],
)
def test_a_wrong_spec_names_file_field_and_reason(
    tmp_path: Path, change: tuple[str, str], field: str, reason: str
) -> None:
    with pytest.raises(SpecError) as refused:
        load_spec(_spec(tmp_path, GOOD.replace(*change)))
    assert refused.value.source == "acme-bin.toml"
    assert refused.value.field == field
    assert reason in refused.value.reason
    assert str(refused.value).startswith(f"acme-bin.toml: {field}: ")


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"acme-bin.toml: \(file\): is not valid TOML"):
        load_spec(_spec(tmp_path, GOOD + "\n[[uplink\n"))


def test_a_model_id_given_twice_is_refused(tmp_path: Path) -> None:
    _spec(tmp_path, GOOD, "a.toml")
    _spec(tmp_path, GOOD, "b.toml")
    with pytest.raises(SpecError, match=r"b\.toml: model_id: acme/bin is also defined in a\.toml"):
        load_models(tmp_path)


def test_every_shipped_spec_compiles() -> None:
    assert len(load_models(SPEC_DIR)) >= 21


def test_the_devices_page_is_up_to_date() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), "run: python -m decoders.docs"


TYPICAL = {
    "distance_m": 1.234,
    "battery_v": 3.6,
    "battery_pct": 87,
    "tilt": 0,
    "soil_vwc": 0.25,
    "soil_temperature_c": 12.5,
    "soil_ec_us_cm": 450,
    "air_temperature_c": 18.5,
    "humidity_pct": 64.0,
    "pressure_hpa": 1003.2,
    "rain_mm": 1.2,
    "wind_speed_ms": 3.4,
    "wind_direction_deg": 225.0,
    "solar_radiation_w_m2": 420,
    "illuminance_lux": 12000,
    "device_temperature_c": 19.0,
}


@pytest.mark.parametrize("model_id", [m for m, model in load_models(SPEC_DIR).items() if model.encode_with is not None])
def test_every_encoder_round_trips_typical_values(model_id: str) -> None:
    from decoders import decode, encode_quantities
    from flurfunk.contracts import Quantity

    values = {Quantity(name): value for name, value in TYPICAL.items()}
    port, payload = encode_quantities(model_id, values)
    decoded = decode(model_id, port, payload)
    assert decoded.measurements
    for measurement in decoded.measurements:
        assert measurement.value == pytest.approx(values[measurement.quantity], abs=0.06), measurement
