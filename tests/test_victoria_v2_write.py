"""The InfluxDB v2 store's write path against a real server of the v2 write API (VictoriaMetrics), and its URL.

VictoriaMetrics stores each numeric field as a metric `<measurement>_<field>` with the tags as labels and drops
string fields (`flags`); it has no Flux, so the v2 store's queries are not exercised against it here.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cloud.store import open_series_store
from cloud.store.influx_v2 import InfluxV2SeriesStore, flux_string, series_query
from cloud.store.series import SeriesStoreUnavailableError
from flurfunk.contracts import Quantity, Reading
from tests.conftest import VictoriaMetricsServer

DEVICE = "70b3d57ed0001a2b"
T0 = datetime(2025, 6, 3, 8, 0, tzinfo=UTC)


def reading(asset: str, value: float, minutes: int = 0, quantity: Quantity = Quantity.FILL_RATIO) -> Reading:
    return Reading(
        device=DEVICE, asset=asset, quantity=quantity, value=value, time=T0 + timedelta(minutes=minutes),
        anomaly_score=0.25, flags=("emptied",),
    )  # fmt: skip


def exported(server: VictoriaMetricsServer, selector: str, expected_points: int) -> list[dict]:
    """The series VictoriaMetrics holds for `selector` (its /api/v1/export), once `expected_points` are visible."""
    deadline = time.monotonic() + 15
    while True:
        httpx.get(f"{server.url}/internal/force_flush", timeout=5)
        answer = httpx.post(f"{server.url}/api/v1/export", data={"match[]": selector}, timeout=5)
        answer.raise_for_status()
        series = [json.loads(row) for row in answer.text.splitlines() if row.strip()]
        if sum(len(one["values"]) for one in series) >= expected_points or time.monotonic() > deadline:
            return series
        time.sleep(0.2)


def test_readings_written_through_influxdb_client_arrive_with_their_times_and_tags(
    victoria_metrics: VictoriaMetricsServer,
) -> None:
    asset = f"bin-{uuid.uuid4().hex[:8]}"
    store = open_series_store(
        f"influx-v2://127.0.0.1:{victoria_metrics.port}?org=flurfunk&bucket=series", token="token-0123456789abcdef"
    )
    assert isinstance(store, InfluxV2SeriesStore)
    with store:
        store.write([reading(asset, 0.1 * i, minutes=15 * i) for i in range(4)])
        store.write([reading(asset, 0.1 * i, minutes=15 * i) for i in range(4)])  # a replay: same points

    (series,) = exported(victoria_metrics, f'fill_ratio_value{{asset="{asset}"}}', 4)
    assert series["metric"] == {"__name__": "fill_ratio_value", "asset": asset, "device": DEVICE}
    start_ms = int(T0.timestamp() * 1000)
    assert series["timestamps"] == [start_ms + i * 900_000 for i in range(4)]
    assert series["values"] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    (scores,) = exported(victoria_metrics, f'fill_ratio_anomaly_score{{asset="{asset}"}}', 4)
    assert scores["values"] == [0.25] * 4


def test_a_large_write_goes_in_several_requests_and_all_points_arrive(victoria_metrics: VictoriaMetricsServer) -> None:
    asset = f"tree-{uuid.uuid4().hex[:8]}"
    with InfluxV2SeriesStore(victoria_metrics.url, "token-0123456789abcdef", "flurfunk", "series") as store:
        store.write([reading(asset, i, minutes=i, quantity=Quantity.SOIL_TENSION_KPA) for i in range(12_000)])

    (series,) = exported(victoria_metrics, f'soil_tension_kpa_value{{asset="{asset}"}}', 12_000)
    assert len(series["values"]) == 12_000


def test_a_server_that_is_down_makes_the_write_unavailable() -> None:
    with (
        InfluxV2SeriesStore("http://127.0.0.1:9", "token-0123456789abcdef", "o", "b", timeout_s=1) as store,
        pytest.raises(SeriesStoreUnavailableError, match="cannot write 1 lines"),
    ):
        store.write([reading("bin-1", 0.5)])


@pytest.mark.parametrize(
    ("url", "token", "message"),
    [
        ("influx-v2://127.0.0.1:8086?org=o", "t" * 20, "needs \\?org=…&bucket=…"),
        ("influx-v2://127.0.0.1:8086?org=o&bucket=b", None, "needs a token"),
        ("influx-v2://user:secret@127.0.0.1:8086?org=o&bucket=b", "t" * 20, "not from the URL"),
        ("influx-v2://127.0.0.1:8086?org=o&bucket=b&colour=red", "t" * 20, "unknown option 'colour'"),
        ("influx-v2://127.0.0.1:8086/db?org=o&bucket=b", "t" * 20, "no path"),
        ("influx-v2://127.0.0.1:8086?org=o&bucket=b&timeout=soon", "t" * 20, "timeout must be seconds"),
        ("influx-v1://127.0.0.1:8086/db?bucket=b", None, "unknown option 'bucket'"),
        ("influx-v1://127.0.0.1:8086/db?rp=", None, "exactly one non-empty value"),
        ("influx-v1://127.0.0.1:8086/db?timeout=0", None, "within \\(0, 600\\]"),
    ],
)
def test_bad_series_urls_say_what_is_wrong(url: str, token: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_series_store(url, token=token)


def test_the_token_is_not_in_the_stores_repr() -> None:
    store = InfluxV2SeriesStore("http://127.0.0.1:8086", "secret-token-0123456789", "o", "b")
    assert "secret-token" not in repr(store)
    store.close()


def test_flux_strings_cannot_break_out_of_the_query() -> None:
    assert flux_string('a"b\\c${x}\n') == '"a\\"b\\\\c\\${x}\\n"'
    flux = series_query("series", 'bin") or true or (r.x == "', Quantity.FILL_RATIO, T0, T0 + timedelta(hours=1))
    assert 'r.asset == "bin\\") or true or (r.x == \\""' in flux
    with pytest.raises(ValueError, match="time zone"):
        series_query("series", "bin-1", Quantity.FILL_RATIO, datetime(2025, 1, 1), T0)
