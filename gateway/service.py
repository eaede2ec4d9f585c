"""`flurfunk gateway run`: the long-running gateway service — sources, pipeline, sync loop and local health.

Sync policy (the cloud acknowledges a contiguous sequence, so data goes strictly oldest first): while anything is
pending, batches of up to `max_readings_per_batch` go back to back with no pause, so a backlog after an outage
drains at full speed; once the buffer is empty, the loop looks again after at most `sync_interval_s` (sooner when
a full batch has gathered). A live reading therefore waits for the backlog ahead of it, drained at full speed,
plus at most one sync interval. Failures (cloud down, busy, token refused) back off exponentially with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from edge.anomaly import AnomalyScorer
from flurfunk.contracts import Uplink
from gateway.anomaly_bundles import BundleFetcher, BundleStore, FetchOutcome, FetchResult, RunningModel, initial_model
from gateway.buffer import DurableBuffer
from gateway.config import GatewayConfig, split_host_port
from gateway.health import GatewayMetrics, HealthServer
from gateway.lorawan import DeviceSession, FrameOpener, SessionStore
from gateway.pipeline import BUFFER_FULL, Pipeline, PipelineReport
from gateway.sources.mqtt import MqttSource, MqttSourceSettings, RefusalLog
from gateway.sources.semtech_udp import (
    SemtechUdpConfig,
    SemtechUdpSource,
    UplinksNotDurableError,
    Upstream,
    semtech_udp_view,
)
from gateway.sync import Backoff, SyncClient, SyncOutcome

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0
_LOG_FIELDS = (
    "event",
    "gateway_id",
    "dev_eui",
    "f_cnt",
    "f_port",
    "first_seq",
    "last_seq",
    "readings",
    "uplinks",
    "reason",
    "source",
    "outcome",
    "status_code",
    "broker",
    "model_id",
    "asset",
    "entries",
    "gateway_eui",
    "dev_addr",
    "forwarder",
    "model_version",
)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line with the ids that matter; only whitelisted fields, so no secret slips in."""

    def __init__(self, gateway_id: str) -> None:
        super().__init__()
        self.gateway_id = gateway_id

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "gateway": self.gateway_id,
            "msg": record.getMessage(),
        }
        for name in _LOG_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, int | float | str | bool) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(gateway_id: str, level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter(gateway_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Intake:
    """One pipeline commit at a time for all sources: what waits when a commit ends joins the next one.

    `deliver` returns once the uplinks are durable in the buffer (the moment a source may acknowledge them).
    """

    def __init__(self, pipeline: Pipeline, metrics: GatewayMetrics, max_uplinks_per_commit: int = 2000) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._max = max_uplinks_per_commit
        self._queue: asyncio.Queue[tuple[Sequence[Uplink], asyncio.Future[PipelineReport]] | None] = asyncio.Queue()
        self._commit = asyncio.Lock()
        self.readings_since_sync = 0
        self.new_data = asyncio.Event()

    async def replace_scorer(self, scorer: AnomalyScorer) -> None:
        """Swap the pipeline's anomaly scorer between two commits, never during one."""
        async with self._commit:
            self._pipeline.scorer = scorer

    async def deliver(self, uplinks: Sequence[Uplink]) -> PipelineReport:
        future: asyncio.Future[PipelineReport] = asyncio.get_running_loop().create_future()
        await self._queue.put((uplinks, future))
        return await future

    async def close(self) -> None:
        """Finish the commit under way and what is queued, then stop."""
        await self._queue.put(None)

    async def run(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            if item is None:
                break
            waiting = [item]
            count = len(item[0])
            while not self._queue.empty() and count < self._max:
                more = self._queue.get_nowait()
                if more is None:
                    stopping = True
                    break
                waiting.append(more)
                count += len(more[0])
            uplinks = [uplink for group, _ in waiting for uplink in group]
            try:
                async with self._commit:
                    report = await asyncio.to_thread(self._pipeline.handle_many, uplinks)
            except Exception as error:
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(error)
                raise
            self._count(report, len(uplinks))
            for _, future in waiting:
                if not future.done():
                    future.set_result(report)

    def _count(self, report: PipelineReport, uplinks: int) -> None:
        metrics = self._metrics
        metrics.decoded += report.accepted
        metrics.duplicates += report.duplicates
        metrics.readings_buffered += report.readings
        metrics.dropped.update(report.dropped)
        self.readings_since_sync += report.readings
        if report.readings:
            self.new_data.set()
        log.debug(
            "stored uplinks=%d accepted=%d readings=%d",
            uplinks,
            report.accepted,
            report.readings,
            extra={"event": "stored", "uplinks": uplinks, "readings": report.readings},
        )


class GatewayService:
    """The running gateway: `await run()` until `stop()` (SIGTERM) or a fatal error; closes the buffer at the end."""

    def __init__(self, config: GatewayConfig, token: str | None = None) -> None:
        self.config = config
        self._token = token if token is not None else config.cloud_token()
        self._bindings = config.device_bindings()
        self._sessions = config.device_sessions()  # refuses a key file others may read, before anything starts
        self.metrics = GatewayMetrics(gateway_id=config.gateway.id)
        self._stop = asyncio.Event()
        self._buffer: DurableBuffer | None = None
        self.health: HealthServer | None = None
        self._model: RunningModel | None = None
        self._model_problem = ""
        self._model_checked_at: float | None = None

    def stop(self) -> None:
        self.metrics.stopping = True
        self._stop.set()

    def snapshot(self) -> dict[str, Any]:
        stats = self._buffer.stats() if self._buffer is not None else None
        snapshot = self.metrics.snapshot(stats)
        if self._model is not None:
            snapshot["anomaly_model"] = {
                "version": self._model.scorer.model_version,
                "source": self._model.source.value,
                "sha256": self._model.sha256,
                "last_check_at": self._model_checked_at,
                "problem": self._model_problem,
            }
        return snapshot

    async def run(self) -> int:
        """Run until stopped; 0 after a graceful stop, 1 after a fatal error (systemd restarts the service)."""
        config = self.config
        buffer = DurableBuffer(config.buffer.path, quota_bytes=config.buffer.quota_bytes)
        self._buffer = buffer
        self._model, self._model_problem = await asyncio.to_thread(initial_model, config)
        pipeline = Pipeline(config.gateway.id, self._bindings, buffer, scorer=self._model.scorer)
        intake = Intake(pipeline, self.metrics)
        host, port = split_host_port(config.health.bind)
        self.health = HealthServer(self.snapshot, host, port)
        await self.health.start()
        sources = self._sources(intake)
        log.info(
            "gateway started: %d devices, sources %s, cloud %s",
            len(self._bindings),
            ", ".join(name for name, _ in sources) or "none",
            config.cloud.url,
            extra={"event": "started"},
        )
        log.info(
            "anomaly model %s (%s)",
            self._model.scorer.model_version,
            self._model.source.value,
            extra={"event": "model", "model_version": self._model.scorer.model_version},
        )
        intake_task = asyncio.create_task(intake.run(), name="intake")
        sync_task = asyncio.create_task(self._sync_loop(buffer, intake, pipeline), name="sync")
        if config.anomaly.fetches:
            model_tasks = [asyncio.create_task(self._bundle_loop(intake), name="anomaly-bundles")]
        else:
            model_tasks = []
        source_tasks = [asyncio.create_task(source.run(), name=name) for name, source in sources]
        stop_task = asyncio.create_task(self._stop.wait(), name="stop")
        watched = {intake_task, sync_task, stop_task, *source_tasks, *model_tasks}
        exit_code = 0
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stop_task and not task.cancelled() and task.exception() is not None:
                error = task.exception()
                self.metrics.fatal = f"{task.get_name()}: {type(error).__name__}: {error}"
                log.error("gateway failing: %s", self.metrics.fatal, exc_info=error, extra={"event": "fatal"})
                exit_code = 1
        log.info("gateway stopping", extra={"event": "stopping"})
        self._stop.set()
        # Sources first: what they have not handed over is not acknowledged, so their LNS or forwarder resends it.
        for task in source_tasks:
            task.cancel()
        await asyncio.gather(*source_tasks, return_exceptions=True)
        if not intake_task.done():
            await intake.close()
            try:
                await asyncio.wait_for(intake_task, STOP_GRACE_S)
            except Exception as error:  # the commit failed: nothing was acknowledged, the sources resend
                log.error("last commit failed: %s", error, extra={"event": "fatal"})
                exit_code = 1
        try:
            await asyncio.wait_for(asyncio.shield(sync_task), STOP_GRACE_S)
        except Exception:
            log.exception("sync loop ended with an error", extra={"event": "sync_error"})
        for task in model_tasks:
            task.cancel()
        await asyncio.gather(*model_tasks, return_exceptions=True)
        stop_task.cancel()
        await self.health.close()
        buffer.close()
        log.info("gateway stopped", extra={"event": "stopped"})
        return exit_code

    def _sources(self, intake: Intake) -> list[tuple[str, Any]]:
        config = self.config
        sources: list[tuple[str, Any]] = []
        for flavour in ("chirpstack", "tts"):
            section = getattr(config.sources, flavour)
            if section is None:
                continue
            settings = MqttSourceSettings(
                flavour=flavour,  # type: ignore[arg-type]
                host=section.host,
                port=section.port,
                topic=section.topic,
                client_id=section.client_id or f"flurfunk-{config.gateway.id}-{flavour}",
                username=section.username,
                password=config.mqtt_password(flavour),  # type: ignore[arg-type]
                tls=section.tls,
                keepalive_s=section.keepalive_s,
                backoff_base_s=section.backoff_base_s,
                backoff_cap_s=section.backoff_cap_s,
            )
            self.metrics.sources_connected[flavour] = False
            source = _ObservedMqttSource(settings, intake.deliver, self.metrics)
            sources.append((flavour, source))
        if config.sources.semtech_udp is not None:
            sources.append(("semtech_udp", self._semtech_udp(intake)))
        return sources

    def _semtech_udp(self, intake: Intake) -> _SemtechUdpServiceSource:
        self.metrics.sources_connected["semtech_udp"] = False
        return _SemtechUdpServiceSource(self.config, self._sessions, intake, self.metrics)

    async def _sync_loop(self, buffer: DurableBuffer, intake: Intake, pipeline: Pipeline) -> None:
        cloud = self.config.cloud
        client = SyncClient(
            cloud.url,
            self._token,
            self.config.gateway.id,
            buffer,
            client=httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0)),
            max_readings_per_batch=cloud.max_readings_per_batch,
            dropped_counts=lambda: dict(self.metrics.dropped),
            model_version=lambda: pipeline.model_version,
        )
        backoff = Backoff(cloud.backoff_base_s, cloud.backoff_cap_s)
        metrics = self.metrics
        try:
            while not self._stop.is_set():
                intake.readings_since_sync = 0
                result = await asyncio.to_thread(client.sync_once)
                metrics.sync_outcomes[result.outcome.value] += 1
                if result.made_progress:
                    if result.outcome is SyncOutcome.ACKED:
                        metrics.readings_synced += result.stored or 0
                        metrics.last_ack_at = time.time()
                    metrics.last_sync_problem = ""
                    backoff.reset()
                    continue  # catch up back to back: the next batch is the next-oldest data
                if result.outcome is SyncOutcome.NOTHING_TO_SEND:
                    metrics.last_sync_problem = ""
                    backoff.reset()
                    await self._wait_for_batch(intake, cloud.sync_interval_s, cloud.max_readings_per_batch)
                    continue
                metrics.last_sync_problem = f"{result.outcome.value}: {result.detail}"[:300]
                await self._sleep(backoff.next_delay(result.retry_after_s))
        finally:
            client.close()

    async def _bundle_loop(self, intake: Intake) -> None:
        """Ask the cloud for the assigned anomaly bundle now and every `check_interval_s`; install and swap it in
        when it changed. A failed check or a refused bundle leaves the running one; the next check tries again."""
        section = self.config.anomaly
        store = BundleStore(self.config.anomaly_state_dir, section.backend)
        client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
        fetcher = BundleFetcher(self.config.cloud.url, self._token, store, client)
        try:
            while not self._stop.is_set():
                assert self._model is not None
                try:
                    result = await asyncio.to_thread(fetcher.check, self._model.sha256)
                except Exception as error:  # a model problem must never stop the data path
                    log.exception("anomaly bundle check failed", extra={"event": "bundle_check"})
                    result = FetchResult(FetchOutcome.UNAVAILABLE, detail=f"{type(error).__name__}: {error}")
                self._model_checked_at = time.time()
                if result.outcome is FetchOutcome.INSTALLED and result.model is not None:
                    await intake.replace_scorer(result.model.scorer)
                    self._model, self._model_problem = result.model, ""
                elif result.outcome in (FetchOutcome.UNCHANGED, FetchOutcome.NONE_ASSIGNED):
                    self._model_problem = ""
                else:
                    self._model_problem = f"{result.outcome.value}: {result.detail}"[:300]
                    if result.outcome is not FetchOutcome.REFUSED:
                        log.warning("anomaly bundle check: %s", self._model_problem, extra={"event": "bundle_check"})
                await self._sleep(section.check_interval_s)
        finally:
            client.close()

    async def _wait_for_batch(self, intake: Intake, interval_s: float, full_batch: int) -> None:
        """Until one interval has passed, a full batch has gathered, or the service stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + interval_s
        while not self._stop.is_set() and intake.readings_since_sync < full_batch:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            intake.new_data.clear()
            waiters = [asyncio.ensure_future(intake.new_data.wait()), asyncio.ensure_future(self._stop.wait())]
            await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


class _ObservedMqttSource(MqttSource):
    """An MqttSource that reports into the service's metrics."""

    def __init__(self, settings: MqttSourceSettings, deliver: Any, metrics: GatewayMetrics) -> None:
        refusals = RefusalLog(log, f"mqtt-{settings.flavour}")
        refusals.counts = metrics.dropped
        super().__init__(
            settings,
            deliver,
            on_received=lambda count: metrics.received.update({settings.flavour: count}),
            refusals=refusals,
        )
        self._metrics = metrics

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch())
        try:
            await super().run()
        finally:
            watcher.cancel()

    async def _watch(self) -> None:
        while True:
            self._metrics.sources_connected[self.settings.flavour] = self.connected
            await asyncio.sleep(0.5)


class _SemtechUdpServiceSource:
    """The Semtech UDP source as a service source: frame counters beside the buffer, uplinks through the intake.

    A PUSH_DATA is acknowledged only once its uplinks are durable: the handler raises when the commit they joined
    refused any uplink for a full buffer (conservative: the forwarder resends, and what was stored is then a
    duplicate the pipeline or the cloud's point identity absorbs).
    """

    def __init__(
        self, config: GatewayConfig, sessions: Sequence[DeviceSession], intake: Intake, metrics: GatewayMetrics
    ) -> None:
        section = config.sources.semtech_udp
        assert section is not None
        host, port = split_host_port(section.bind)
        self.settings = SemtechUdpConfig(
            host=host,
            port=port,
            upstreams=tuple(Upstream.parse(text) for text in section.upstreams),
            max_batch_datagrams=section.max_batch_datagrams,
            max_queued_datagrams=section.max_queued_datagrams,
        )
        self._counter_path = config.frame_counter_path
        self._sessions = list(sessions)
        self._intake = intake
        self._metrics = metrics
        if not self._sessions:
            log.warning(
                "semtech udp: no device sessions configured; datagrams are relayed upstream but nothing is decoded",
                extra={"event": "no_sessions", "source": "semtech_udp"},
            )

    async def _deliver_durably(self, uplinks: Sequence[Uplink]) -> PipelineReport:
        report = await self._intake.deliver(uplinks)
        refused = report.dropped.get(BUFFER_FULL, 0)
        if refused:
            raise UplinksNotDurableError(f"{refused} uplinks refused: the buffer is full")
        return report

    async def run(self) -> None:
        store = await asyncio.to_thread(SessionStore, self._counter_path, self._sessions)
        source = SemtechUdpSource(self.settings, FrameOpener(store), self._deliver_durably)
        try:
            await source.start()
            self._metrics.sources_connected["semtech_udp"] = True
            while True:  # the health snapshot is built in a worker thread: hand it a copy made on this loop
                self._metrics.semtech_udp = semtech_udp_view(source)
                await asyncio.sleep(0.5)
        finally:
            self._metrics.sources_connected["semtech_udp"] = False
            with contextlib.suppress(Exception):
                self._metrics.semtech_udp = semtech_udp_view(source)
            await source.stop()
            store.close()


async def run(config: GatewayConfig) -> int:
    """Run the gateway service until SIGTERM or SIGINT; the exit code for the process."""
    service = GatewayService(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.stop)
    return await service.run()


def fetch_status(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The running service's snapshot from its health endpoint (`url` like http://127.0.0.1:9470)."""
    response = httpx.get(url.rstrip("/") + "/healthz", timeout=timeout_s)
    return dict(response.json())
