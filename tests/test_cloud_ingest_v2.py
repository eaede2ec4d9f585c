"""The cloud app on an `influx-v2://` series URL: `series_token` from the settings reaches the v2 write API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from cloud import create_app
from cloud.settings import CloudSettings
from flurfunk.contracts import Quantity, Reading
from tests.cloud_helpers import ingest
from tests.conftest import VictoriaMetricsServer
from tests.test_victoria_v2_write import exported

GATEWAY_TOKEN = "birstein-token-0123456789"
SERIES_TOKEN = "series-token-0123456789abcdef"
DEVICE = "a84041000181c001"
T0 = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)


def settings(tmp_path: Path, series_url: str, series_token: str | None) -> CloudSettings:
    return CloudSettings(
        data_dir=tmp_path,
        series_url=series_url,
        series_token=series_token,
        gateway_tokens={"gw-birstein": GATEWAY_TOKEN},
    )


def post_fill_ratios(client: TestClient, asset: str, count: int) -> dict:
    """`count` hourly fill ratios of `asset` as one batch of gw-birstein, sequence 1 to `count`; the cloud's answer."""
    readings = [
        Reading(device=DEVICE, asset=asset, quantity=Quantity.FILL_RATIO, value=i / 10, time=T0 + timedelta(hours=i))
        for i in range(count)
    ]
    return ingest(client, GATEWAY_TOKEN, readings, gateway_id="gw-birstein", sent_at=T0, last_seq=count).json()


def test_the_series_token_is_sent_to_the_v2_write_api(tmp_path: Path, serve_app: Callable[[object], str]) -> None:
    seen: list[tuple[str | None, dict[str, str]]] = []
    fake_influx = FastAPI()

    @fake_influx.post("/api/v2/write")
    async def write(request: Request) -> Response:
        seen.append((request.headers.get("authorization"), dict(request.query_params)))
        return Response(status_code=204)

    url = serve_app(fake_influx).replace("http://", "influx-v2://")
    with TestClient(create_app(settings(tmp_path, f"{url}?org=zweckverband&bucket=flurfunk", SERIES_TOKEN))) as client:
        assert post_fill_ratios(client, "bin-1", 3) == {"acked_seq": 3, "stored": 3, "unknown_assets": ["bin-1"]}

    assert len(seen) == 1
    authorization, query = seen[0]
    assert authorization == f"Token {SERIES_TOKEN}"
    assert query["org"] == "zweckverband" and query["bucket"] == "flurfunk"


def test_an_influx_v2_url_without_a_series_token_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a token"):
        create_app(settings(tmp_path, "influx-v2://127.0.0.1:8086?org=o&bucket=b", None))


def test_batches_posted_to_the_api_arrive_in_a_v2_server(
    tmp_path: Path, victoria_metrics: VictoriaMetricsServer
) -> None:
    asset = f"bin-{uuid.uuid4().hex[:8]}"
    url = f"influx-v2://127.0.0.1:{victoria_metrics.port}?org=flurfunk&bucket=series"
    with TestClient(create_app(settings(tmp_path, url, SERIES_TOKEN))) as client:
        assert post_fill_ratios(client, asset, 5)["acked_seq"] == 5
        assert post_fill_ratios(client, asset, 5)["acked_seq"] == 5  # a replay stores nothing twice

    (series,) = exported(victoria_metrics, f'fill_ratio_value{{asset="{asset}"}}', 5)
    assert series["values"] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
