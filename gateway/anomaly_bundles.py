"""The gateway's edge anomaly model bundle: which one runs at start, and fetching the one the cloud assigns.

State dir (`<buffer dir>/anomaly-bundles/`): `versions/<sha256>/` holds unpacked bundles, `current.json` names the
one that runs. A download is checked (sha256, safe unpacking, `load_bundle`, a scorer built from it) before
`current.json` is replaced (temp file, fsync, rename), so a crash or a bad bundle at any moment leaves the last
good bundle in place and running. The cloud is asked with `If-None-Match`, so an unchanged bundle is not sent again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx

from edge.anomaly import AnomalyScorer, BundleError, default_scorer, load_bundle
from flurfunk.bundle_archive import MAX_ARCHIVE_BYTES, BundleArchiveError, sha256_hex, unpack_bundle
from gateway.config import GatewayConfig
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

BUNDLE_PATH = "/api/v1/gateway/anomaly-bundle"
SHA256_HEADER = "X-Flurfunk-Bundle-Sha256"
CURRENT = "current.json"
VERSIONS = "versions"
INCOMING_PREFIX = ".incoming-"
KEEP_VERSIONS = 2  # the one running and the one before, to go back by hand


class BundleRefusedError(GatewayError):
    """A downloaded bundle that does not match its checksum, does not unpack safely or does not load."""


class BundleSource(StrEnum):
    LOCAL = "local"  # [anomaly] bundle in the configuration
    CLOUD = "cloud"  # assigned by the cloud, fetched and kept in the state dir
    SHIPPED = "shipped"  # the bundle in the software (or rules only if none loads)


@dataclass(frozen=True)
class RunningModel:
    scorer: AnomalyScorer
    source: BundleSource
    sha256: str | None = None  # of the cloud archive, when it came from the cloud


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class BundleStore:
    """Fetched bundles on disk; `install` makes one current only once it loads."""

    def __init__(self, directory: Path, backend: str = "auto") -> None:
        self.directory = directory
        self.backend = backend
        (directory / VERSIONS).mkdir(parents=True, exist_ok=True)

    def current_sha256(self) -> str | None:
        try:
            document = json.loads((self.directory / CURRENT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        sha256 = document.get("sha256") if isinstance(document, dict) else None
        return sha256 if isinstance(sha256, str) and len(sha256) == 64 else None

    def load_current(self) -> RunningModel | None:
        """The last good bundle, or None (none yet, or it no longer loads: logged)."""
        sha256 = self.current_sha256()
        if sha256 is None:
            return None
        try:
            scorer = AnomalyScorer(load_bundle(self.directory / VERSIONS / sha256), self.backend)
        except (BundleError, ImportError, ValueError, RuntimeError) as error:
            log.error("stored anomaly bundle %s does not load: %s", sha256, error, extra={"event": "bundle_refused"})
            return None
        return RunningModel(scorer, BundleSource.CLOUD, sha256)

    def install(self, archive: bytes, sha256: str) -> RunningModel:
        """Check, unpack and load `archive`, then make it current; BundleRefusedError leaves the current one."""
        actual = sha256_hex(archive)
        if actual != sha256:
            raise BundleRefusedError(f"checksum mismatch: the cloud names sha256 {sha256}, the download is {actual}")
        final = self.directory / VERSIONS / sha256
        if not final.is_dir():
            incoming = Path(tempfile.mkdtemp(prefix=INCOMING_PREFIX, dir=self.directory))
            try:
                names = unpack_bundle(archive, incoming / "bundle")
                for name in names:  # durable before it can become current
                    with open(incoming / "bundle" / name, "rb") as handle:
                        os.fsync(handle.fileno())
                _fsync_dir(incoming / "bundle")
                os.rename(incoming / "bundle", final)
                _fsync_dir(final.parent)
            except BundleArchiveError as error:
                raise BundleRefusedError(f"archive: {error}") from error
            finally:
                shutil.rmtree(incoming, ignore_errors=True)
        try:
            scorer = AnomalyScorer(load_bundle(final), self.backend)
        except (BundleError, ImportError, ValueError, RuntimeError) as error:
            shutil.rmtree(final, ignore_errors=True)
            raise BundleRefusedError(f"bundle does not load: {error}") from error
        self._make_current(scorer.model_version, sha256)
        self.prune()
        return RunningModel(scorer, BundleSource.CLOUD, sha256)

    def _make_current(self, version: str, sha256: str) -> None:
        pointer = self.directory / CURRENT
        temporary = pointer.with_name(f"{CURRENT}.tmp")
        previous = self.current_sha256()
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({"version": version, "sha256": sha256, "previous_sha256": previous}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, pointer)
        _fsync_dir(self.directory)

    def prune(self) -> None:
        """Drop half-unpacked downloads (a crash) and bundles older than the current and the previous one."""
        for leftover in self.directory.glob(f"{INCOMING_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        keep = {self.current_sha256()}
        with contextlib.suppress(OSError, ValueError):
            keep.add(json.loads((self.directory / CURRENT).read_text(encoding="utf-8")).get("previous_sha256"))
        for folder in (self.directory / VERSIONS).iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)


def initial_model(config: GatewayConfig) -> tuple[RunningModel, str]:
    """The model to start with, and a problem to report ('' if none): the local bundle if configured and it
    loads; else the last good bundle from the cloud; else the shipped one."""
    section = config.anomaly
    problem = ""
    if section.bundle is not None:
        try:
            return RunningModel(AnomalyScorer(load_bundle(section.bundle), section.backend), BundleSource.LOCAL), ""
        except (BundleError, ImportError, ValueError, RuntimeError) as error:
            problem = f"anomaly.bundle {section.bundle}: {error}"
            log.error("local anomaly bundle refused: %s", problem, extra={"event": "bundle_refused"})
    if section.fetches:
        try:
            store = BundleStore(config.anomaly_state_dir, section.backend)
            store.prune()
        except OSError as error:
            problem = f"{config.anomaly_state_dir}: {error.strerror}"
            log.error("anomaly bundle state dir unusable: %s", problem, extra={"event": "bundle_refused"})
        else:
            stored = store.load_current()
            if stored is not None:
                return stored, problem
    return RunningModel(default_scorer(backend=section.backend), BundleSource.SHIPPED), problem


class FetchOutcome(StrEnum):
    UNCHANGED = "unchanged"  # the cloud assigns what runs (304)
    NONE_ASSIGNED = "none_assigned"  # 204: keep what runs
    INSTALLED = "installed"
    REFUSED = "refused"  # downloaded but bad: the old bundle keeps running
    UNAVAILABLE = "unavailable"  # no connection, 5xx, 429, unexpected answer: try again at the next check
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class FetchResult:
    outcome: FetchOutcome
    model: RunningModel | None = None
    detail: str = ""


class BundleFetcher:
    """Asks the cloud for the bundle assigned to this gateway and installs it into the store."""

    def __init__(self, base_url: str, token: str, store: BundleStore, client: httpx.Client) -> None:
        self.url = base_url.rstrip("/") + BUNDLE_PATH
        self._token = token
        self._store = store
        self._client = client
        # sha256 -> why: not downloaded again while the process runs (the cloud would send the same bytes)
        self.refused: dict[str, str] = {}

    def __repr__(self) -> str:  # never show the token
        return f"BundleFetcher(url={self.url!r})"

    def check(self, running_sha256: str | None) -> FetchResult:
        known = sorted({*self.refused, *([running_sha256] if running_sha256 else [])})
        headers = {"Authorization": f"Bearer {self._token}"}
        if known:
            headers["If-None-Match"] = ", ".join(f'"{sha}"' for sha in known)
        try:
            with self._client.stream("GET", self.url, headers=headers) as response:
                if response.status_code != 200:
                    return self._other(response)
                archive = bytearray()
                for chunk in response.iter_bytes():
                    archive += chunk
                    if len(archive) > MAX_ARCHIVE_BYTES:
                        return self._refuse(response, f"download over {MAX_ARCHIVE_BYTES} bytes")
        except httpx.HTTPError as error:
            return FetchResult(FetchOutcome.UNAVAILABLE, detail=f"{type(error).__name__}: {error}")
        sha256 = response.headers.get(SHA256_HEADER) or response.headers.get("ETag", "").strip('"')
        if len(sha256) != 64:
            return self._refuse(response, "the cloud sent no sha256 for the bundle")
        try:
            model = self._store.install(bytes(archive), sha256)
        except BundleRefusedError as error:
            return self._refuse(response, str(error), sha256)
        log.info(
            "anomaly bundle installed version=%s sha256=%s",
            model.scorer.model_version,
            sha256,
            extra={"event": "bundle_installed", "model_version": model.scorer.model_version},
        )
        return FetchResult(FetchOutcome.INSTALLED, model)

    def _other(self, response: httpx.Response) -> FetchResult:
        code = response.status_code
        if code == 304:
            etag = response.headers.get("ETag", "").strip('"')
            if etag in self.refused:
                return FetchResult(FetchOutcome.REFUSED, detail=self.refused[etag])
            return FetchResult(FetchOutcome.UNCHANGED)
        if code == 204:
            return FetchResult(FetchOutcome.NONE_ASSIGNED)
        if code in (401, 403):
            return FetchResult(FetchOutcome.UNAUTHORIZED, detail=f"HTTP {code}: the cloud refused this gateway's token")
        return FetchResult(FetchOutcome.UNAVAILABLE, detail=f"HTTP {code} from {self.url}")

    def _refuse(self, response: httpx.Response, reason: str, sha256: str | None = None) -> FetchResult:
        version = response.headers.get("X-Flurfunk-Bundle-Version", "?")
        detail = f"version {version}: {reason}"
        if sha256:
            self.refused[sha256] = detail
        log.error(
            "anomaly bundle refused version=%s: %s; the running bundle stays",
            version,
            reason,
            extra={"event": "bundle_refused", "model_version": version},
        )
        return FetchResult(FetchOutcome.REFUSED, detail=detail)
