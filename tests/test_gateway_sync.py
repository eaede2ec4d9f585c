"""Cloud sync against a real HTTP server on 127.0.0.1: ack, back off, quarantine, stop, replay after restart."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flurfunk.contracts import Batch, Quantity, Reading
from flurfunk.wire import MEDIA_TYPE, BatchFormatError, decode_batch
from gateway.buffer import DurableBuffer
from gateway.sync import Backoff, SyncClient, SyncOutcome, parse_retry_after, refusal_reason

NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
TOKEN = "s3cret-gateway-token"
DEVICE = "24e124136b502217"

Answer = tuple[int, object, dict[str, str]]  # status, JSON document (or raw bytes), headers


def ack_everything(batch: Batch) -> Answer:
    return 200, {"acked_seq": batch.last_seq, "stored": len(batch.readings)}, {}


@dataclass
class FakeCloud:
    """The cloud's ingest endpoint, played by http.server: decodes each body and answers as the test says."""

    answer: Callable[[Batch], Answer] = ack_everything
    batches: list[Batch] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    stored: list[Reading] = field(default_factory=list)
    delay_s: float = 0.0
    url: str = ""

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        self.paths.append(path)
        self.headers.append(headers)
        time.sleep(self.delay_s)
        try:
            batch = decode_batch(body)
        except BatchFormatError as error:
            return 422, {"detail": str(error)}, {}
        self.batches.append(batch)
        answer = self.answer(batch)
        if answer[0] == 200:
            self.stored.extend(batch.readings)
        return answer

    def seqs_received(self) -> list[tuple[int, int]]:
        return [(batch.first_seq, batch.last_seq) for batch in self.batches]


@pytest.fixture
def cloud() -> Iterator[FakeCloud]:
    fake = FakeCloud()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, document, extra_headers = fake.handle(self.path, dict(self.headers.items()), body)
            payload = document if isinstance(document, bytes) else json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[DurableBuffer]:
    with DurableBuffer(tmp_path / "buffer.db", quota_bytes=10_000_000, clock=lambda: NOW) as store:
        yield store


def reading(value: float, minutes: int = 0) -> Reading:
    return Reading(
        device=DEVICE,
        asset="bin-wb-001",
        quantity=Quantity.DISTANCE_M,
        value=value,
        time=NOW + timedelta(minutes=minutes),
    )


def fill(buffer: DurableBuffer, entries: int, readings_per_entry: int = 1) -> None:
    buffer.append_many(
        [[reading(float(n), minutes=k) for k in range(readings_per_entry)] for n in range(1, entries + 1)]
    )


def client_for(cloud: FakeCloud, buffer: DurableBuffer, **options: object) -> SyncClient:
    return SyncClient(cloud.url, TOKEN, "gw-wb-01", buffer, **options)  # type: ignore[arg-type]


def test_a_batch_the_cloud_acknowledges_leaves_the_buffer(cloud: FakeCloud, buffer: DurableBuffer) -> None:
    fill(buffer, 3, readings_per_entry=2)
    with client_for(cloud, buffer, dropped_counts=lambda: {"unknown_device": 4}) as sync:
        result = sync.sync_once(NOW + timedelta(minutes=10))
    assert (result.outcome, result.first_seq, result.last_seq, result.acked_seq) == (SyncOutcome.ACKED, 1, 3, 3)
    assert buffer.stats().entries == 0
    (batch,) = cloud.batches
    assert (batch.gateway_id, batch.first_seq, batch.last_seq, batch.sent_at) == (
        "gw-wb-01",
        1,
        3,
        NOW + timedelta(minutes=10),
    )
    assert [r.value for r in batch.readings] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert batch.status is not None
    assert (batch.status.buffered, batch.status.oldest_unsynced_s, batch.status.dropped) == (
        6,
        600.0,
        {"unknown_device": 4},
    )
    assert cloud.paths == ["/api/v1/ingest/batches"]
    assert cloud.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert cloud.headers[0]["Content-Type"] == MEDIA_TYPE


def test_nothing_is_acked_while_the_cloud_is_busy(cloud: FakeCloud, buffer: DurableBuffer) -> None:
    fill(buffer, 2)
    cloud.answer = lambda batch: (503, {"detail": "InfluxDB down"}, {"Retry-After": "7"})
    with client_for(cloud, buffer) as sync:
        run = sync.sync_until_drained(NOW)
    assert [result.outcome for result in run.attempts] == [SyncOutcome.RETRY_LATER]
    assert (run.last.status_code, run.last.retry_after_s, run.drained) == (503, 7.0, False)
    assert buffer.stats().entries == 2


@pytest.mark.parametrize("status", [429, 500, 502, 504])
def test_other_busy_and_server_errors_keep_the_data(cloud: FakeCloud, buffer: DurableBuffer, status: int) -> None:
    fill(buffer, 1)
    cloud.answer = lambda batch: (status, {"detail": "later"}, {})
    with client_for(cloud, buffer) as sync:
        assert sync.sync_once(NOW).outcome is SyncOutcome.RETRY_LATER
    assert buffer.stats().entries == 1


def test_a_refused_entry_is_quarantined_with_the_clouds_reason_and_sync_goes_on(
    cloud: FakeCloud, buffer: DurableBuffer
) -> None:
    fill(buffer, 1)
    refused_once = []

    def refuse_first(batch: Batch) -> Answer:
        if not refused_once:
            refused_once.append(batch.first_seq)
            return 400, {"detail": "readings[0].time: before the asset existed"}, {}
        return ack_everything(batch)

    cloud.answer = refuse_first
    with client_for(cloud, buffer) as sync:
        first = sync.sync_once(NOW)
        fill(buffer, 1)
        run = sync.sync_until_drained(NOW)
    assert (first.outcome, first.detail) == (
        SyncOutcome.QUARANTINED,
        "HTTP 400: readings[0].time: before the asset existed",
    )
    assert run.drained and run.readings_acked == 1
    (kept,) = buffer.quarantined()
    assert (kept.seq, kept.reason) == (1, "HTTP 400: readings[0].time: before the asset existed")
    assert kept.readings == (reading(1.0),)


def test_one_bad_entry_among_many_is_found_and_only_it_is_quarantined(cloud: FakeCloud, buffer: DurableBuffer) -> None:
    fill(buffer, 20)
    bad_value = 13.0

    def refuse_bad(batch: Batch) -> Answer:
        if any(r.value == bad_value for r in batch.readings):
            return 422, {"detail": [{"loc": ["readings", 12, "value"], "msg": "implausible"}]}, {}
        return ack_everything(batch)

    cloud.answer = refuse_bad
    with client_for(cloud, buffer) as sync:
        run = sync.sync_until_drained(NOW)
    assert run.drained
    assert [entry.seq for entry in buffer.quarantined()] == [13]
    assert buffer.quarantined()[0].reason == "HTTP 422: readings.12.value: implausible"
    stored = sorted(r.value for r in cloud.stored)
    assert stored == [float(n) for n in range(1, 21) if n != 13]
    assert len(cloud.batches) < 20  # bisection, not one request per entry


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_stops_the_sync_and_keeps_everything(
    cloud: FakeCloud, buffer: DurableBuffer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    fill(buffer, 2)
    cloud.answer = lambda batch: (status, {"detail": "unknown token"}, {})
    with caplog.at_level(logging.DEBUG, logger="gateway.sync"), client_for(cloud, buffer) as sync:
        run = sync.sync_until_drained(NOW)
    assert [result.outcome for result in run.attempts] == [SyncOutcome.UNAUTHORIZED]
    assert buffer.stats().entries == 2 and buffer.stats().quarantined == 0
    assert TOKEN not in caplog.text and TOKEN not in repr(sync)


def test_an_unexpected_status_is_a_configuration_error_that_keeps_the_data(
    cloud: FakeCloud, buffer: DurableBuffer
) -> None:
    fill(buffer, 1)
    cloud.answer = lambda batch: (404, {"detail": "Not Found"}, {})
    with client_for(cloud, buffer) as sync:
        assert sync.sync_once(NOW).outcome is SyncOutcome.CONFIG_ERROR
    assert buffer.stats().entries == 1


def test_unsent_data_is_replayed_after_a_restart(cloud: FakeCloud, tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    cloud.answer = lambda batch: (503, {}, {})
    with DurableBuffer(path, quota_bytes=1_000_000) as buffer, client_for(cloud, buffer) as sync:
        fill(buffer, 4, readings_per_entry=3)
        assert sync.sync_once(NOW).outcome is SyncOutcome.RETRY_LATER
    cloud.answer = ack_everything
    with DurableBuffer(path, quota_bytes=1_000_000) as buffer, client_for(cloud, buffer) as sync:
        run = sync.sync_until_drained(NOW)
        assert run.drained and buffer.stats().entries == 0
    before, after = cloud.batches
    assert (after.first_seq, after.last_seq) == (before.first_seq, before.last_seq) == (1, 4)
    assert after.readings == before.readings


def test_a_partial_ack_deletes_only_what_the_cloud_holds(cloud: FakeCloud, buffer: DurableBuffer) -> None:
    fill(buffer, 5)
    cloud.answer = lambda batch: (200, {"acked_seq": batch.first_seq + 1, "stored": 2}, {})
    with client_for(cloud, buffer) as sync:
        result = sync.sync_once(NOW)
        assert (result.outcome, result.acked_seq) == (SyncOutcome.ACKED, 2)
        assert [entry.seq for entry in buffer.pending(100)] == [3, 4, 5]
        cloud.answer = lambda batch: (200, {"acked_seq": 10_000, "stored": 3}, {})
        assert sync.sync_once(NOW).acked_seq == 5  # never beyond what was sent
    assert cloud.seqs_received() == [(1, 5), (3, 5)]


@pytest.mark.parametrize(
    "answer", [b"not json", b"[]", b'{"acked_seq": "5", "stored": 1}', b'{"acked_seq": true, "stored": 1}', b"{}"]
)
def test_a_malformed_ack_deletes_nothing(cloud: FakeCloud, buffer: DurableBuffer, answer: bytes) -> None:
    fill(buffer, 2)
    cloud.answer = lambda batch: (200, answer, {})
    with client_for(cloud, buffer) as sync:
        result = sync.sync_once(NOW)
    assert result.outcome is SyncOutcome.RETRY_LATER and "malformed ack" in result.detail
    assert buffer.stats().entries == 2


def test_an_ack_before_the_batch_is_no_progress(cloud: FakeCloud, buffer: DurableBuffer) -> None:
    fill(buffer, 2)
    cloud.answer = lambda batch: (200, {"acked_seq": 0, "stored": 0}, {})
    with client_for(cloud, buffer) as sync:
        run = sync.sync_until_drained(NOW)
    assert [result.outcome for result in run.attempts] == [SyncOutcome.RETRY_LATER]
    assert buffer.stats().entries == 2


def test_batches_hold_at_most_the_configured_number_of_readings(cloud: FakeCloud, buffer: DurableBuffer) -> None:
    fill(buffer, 12)
    with client_for(cloud, buffer, max_readings_per_batch=5) as sync:
        run = sync.sync_until_drained(NOW)
    assert run.drained and run.readings_acked == 12
    assert cloud.seqs_received() == [(1, 5), (6, 10), (11, 12)]


def test_an_empty_buffer_sends_nothing(cloud: FakeCloud, buffer: DurableBuffer) -> None:
    with client_for(cloud, buffer) as sync:
        assert sync.sync_once(NOW).outcome is SyncOutcome.NOTHING_TO_SEND
    assert cloud.batches == []


def test_an_unreachable_cloud_means_retry_later(buffer: DurableBuffer) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fill(buffer, 1)
    with SyncClient(f"http://127.0.0.1:{port}", TOKEN, "gw-wb-01", buffer) as sync:
        result = sync.sync_once(NOW)
    assert result.outcome is SyncOutcome.RETRY_LATER and "ConnectError" in result.detail
    assert buffer.stats().entries == 1


def test_a_cloud_that_does_not_answer_in_time_means_retry_later(cloud: FakeCloud, buffer: DurableBuffer) -> None:
    fill(buffer, 1)
    cloud.delay_s = 1.0
    with httpx.Client(timeout=0.2) as http, client_for(cloud, buffer, client=http) as sync:
        result = sync.sync_once(NOW)
    assert result.outcome is SyncOutcome.RETRY_LATER and "Timeout" in result.detail
    assert buffer.stats().entries == 1


def test_bad_configuration_is_refused_up_front(buffer: DurableBuffer) -> None:
    with pytest.raises(ValueError, match="base_url"):
        SyncClient("ftp://cloud", TOKEN, "gw", buffer)
    with pytest.raises(ValueError, match="gateway_id"):
        SyncClient("https://cloud", TOKEN, "gw 1", buffer)
    with pytest.raises(ValueError, match="token"):
        SyncClient("https://cloud", "", "gw", buffer)
    with pytest.raises(ValueError, match="max_readings_per_batch"):
        SyncClient("https://cloud", TOKEN, "gw", buffer, max_readings_per_batch=50_000)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(base_s=1.0, cap_s=10.0, random_source=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    assert backoff.next_delay(retry_after_s=30.0) == 30.0  # the server's wish beats a short jitter
    assert backoff.next_delay(retry_after_s=86_400.0) == 3600.0  # ... up to an hour


@given(st.lists(st.floats(min_value=0.0, max_value=0.9999999), min_size=1, max_size=100))
def test_backoff_delays_stay_within_zero_and_the_cap(draws: list[float]) -> None:
    source = iter(draws)
    backoff = Backoff(base_s=0.5, cap_s=60.0, random_source=lambda: next(source))
    for _ in draws:
        assert 0.0 <= backoff.next_delay() < 60.0


def test_retry_after_is_read_as_seconds_or_http_date() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Sun, 01 Jun 2025 08:02:00 GMT", NOW) == 120.0
    assert parse_retry_after("Sun, 01 Jun 2025 07:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("999999999", NOW) == 3600.0


def test_refusal_reasons_are_short_and_readable() -> None:
    assert refusal_reason(413, b"") == "HTTP 413"
    assert refusal_reason(400, b'{"detail": "first_seq: must be >= 1"}') == "HTTP 400: first_seq: must be >= 1"
    assert refusal_reason(400, b'{"detail": {"field": "readings[3].value", "reason": "not finite"}}') == (
        "HTTP 400: readings[3].value: not finite"
    )
    assert refusal_reason(400, b"<html>\n bad\n</html>") == "HTTP 400: <html> bad </html>"
    assert len(refusal_reason(400, b"x" * 10_000)) < 420
