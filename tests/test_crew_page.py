"""The crew page and its static files: German by default, English on request, everything served by the cloud (no
CDN), the page's configuration safe inside <script>, and no way out of cloud/static."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.crew import json_for_script
from tests.cloud_helpers import cloud_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with cloud_client(tmp_path, tile_url="https://tiles.example/{z}/{x}/{y}.png") as client:
        yield client


def page_config(html: str) -> dict:
    match = re.search(r'<script id="config" type="application/json">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_the_crew_page_is_german_by_default_and_english_on_request(client: TestClient) -> None:
    german = client.get("/crew")
    assert german.status_code == 200 and german.headers["content-type"].startswith("text/html")
    assert '<html lang="de">' in german.text
    config = page_config(german.text)
    assert config["texts"]["page.crew.done"] == "Erledigt"
    assert config["texts"]["task.state.skipped"] == "ausgelassen: {skip_reason}"
    assert config["tileUrl"] == "https://tiles.example/{z}/{x}/{y}.png"
    english = client.get("/crew", params={"lang": "en", "crew": "water", "day": "2026-07-07"})
    assert '<html lang="en">' in english.text
    assert page_config(english.text) | {"texts": {}} == {
        "language": "en",
        "texts": {},
        "tileUrl": "https://tiles.example/{z}/{x}/{y}.png",
        "crew": "water",
        "day": "2026-07-07",
    }
    assert page_config(english.text)["texts"]["page.crew.done"] == "Done"


def test_every_script_and_style_is_served_by_the_cloud(client: TestClient) -> None:
    html = (
        client.get("/crew").text
        + client.get("/", headers={"Authorization": "Bearer bootstrap-admin-token-0123456789"}).text
    )
    sources = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {"/static/crew.js", "/static/crew.css", "/static/leaflet/leaflet.js", "/static/dispatch.js"} <= set(sources)
    assert "http" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', html))  # no CDN
    for source in sources:
        response = client.get(source)
        assert response.status_code == 200, source
    assert client.get("/static/crew.js").headers["content-type"].startswith("text/javascript")
    assert "BSD 2-Clause" in (Path(__file__).parents[1] / "cloud/static/leaflet/LICENSE").read_text()


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/leaflet/../../settings.py",
        "/static/.hidden.js",
        "/static/nothing.js",
        "/static/crew.html",
        "/static/leaflet",
    ],
)
def test_static_files_stay_inside_cloud_static(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_configuration_cannot_end_its_script_element() -> None:
    hostile = {"crew": "</script><script>alert(1)</script><!--"}
    encoded = json_for_script(hostile)
    assert "</" not in encoded and "<!--" not in encoded
    assert json.loads(encoded) == hostile
