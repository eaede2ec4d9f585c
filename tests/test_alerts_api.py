"""Alerts API: tenant scope and crew scope, acknowledge stops escalation, resolve, 409 on a resolved alert; the
crew page section."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud.api.alerts import crew_alerts_html
from cloud.auth import Principal, Role
from flurfunk.contracts import Asset, AssetKind, Batch, Quantity, Reading
from tests.cloud_helpers import BOOTSTRAP_HEADERS, cloud_client, login, make_user

CONFIG = """
municipality = "Birstein"
[[crews]]
name = "gruen"
members = ["anna"]
[[crews]]
name = "abfall"
members = ["bert"]
[[rules]]
id = "young-tree-dry"
kind = "threshold"
crew = "gruen"
quantity = "soil_tension_kpa"
above = 80
clear_below = 50
"""


def test_alerts_api_scopes_acknowledges_and_resolves(tmp_path: Path) -> None:
    config_dir = tmp_path / "alerts"
    config_dir.mkdir()
    (config_dir / "birstein.toml").write_text(CONFIG, encoding="utf-8")
    with cloud_client(tmp_path, alerts_config_dir=config_dir) as client:
        service = client.app.state.alerts  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        asset = Asset(id="tree-1", kind=AssetKind.TREE, municipality="Birstein", village="Fischborn", latitude=50.3,
                      longitude=9.3, planting_year=2024)  # fmt: skip
        service.store.upsert_assets([asset])
        reading = Reading(device="a84041000181c001", asset="tree-1", quantity=Quantity.SOIL_TENSION_KPA, value=90,
                          time=now)  # fmt: skip
        service.store.record_batch(Batch(gateway_id="gw-1", first_seq=1, last_seq=1, sent_at=now, readings=(reading,)),
                                   received_at=now)  # fmt: skip
        service.evaluate()
        for name, role, town in (
            ("anna", "crew", "Birstein"),
            ("bert", "crew", "Birstein"),
            ("olga", "crew", "Bad Orb"),
        ):
            make_user(client, name, role, town)
        anna, bert, olga = (login(client, name) for name in ("anna", "bert", "olga"))
        listed = client.get("/api/v1/alerts", headers=anna).json()
        assert [(a["rule"], a["crew"], a["members"]) for a in listed] == [("young-tree-dry", "gruen", ["tree-1"])]
        alert_id = listed[0]["id"]
        assert client.get("/api/v1/alerts", headers=bert).json() == []  # another crew's alert
        assert client.get(f"/api/v1/alerts/{alert_id}", headers=olga).status_code == 404  # another town
        assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=bert).status_code == 404
        detail = client.get(f"/api/v1/alerts/{alert_id}", headers=BOOTSTRAP_HEADERS).json()
        assert {d["channel"] for d in detail["deliveries"]} == {"mqtt"}  # pending: no broker configured
        acked = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=anna)
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "user:anna"
        served = client.get("/api/v1/alerts/crew-section", headers=anna)
        assert served.status_code == 200 and served.headers["content-type"].startswith("text/html")
        assert "quittiert von user:anna" in served.text
        assert "Keine offenen Alarme" in client.get("/api/v1/alerts/crew-section", headers=bert).text
        assert client.get("/api/v1/alerts/crew-section").status_code == 401
        assert 'id="alerts"' in client.get("/crew").text
        section = crew_alerts_html(service, Principal("user:anna", Role.CREW, "Birstein"))
        assert "Fischborn" in section and "quittiert von user:anna" in section
        assert client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=anna).json()["state"] == "resolved"
        assert client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=anna).status_code == 409
        service.evaluate()  # still dry, but a person resolved it: quiet for the cooldown
        assert client.get("/api/v1/alerts", headers=anna).json() == []
        assert "Keine offenen Alarme" in crew_alerts_html(service, Principal("user:anna", Role.CREW, "Birstein"))
