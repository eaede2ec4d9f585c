"""Edge anomaly model bundles: upload one (a tar.gz or zip of the bundle folder), assign a version to a town's
gateways or to one gateway, see which version each gateway runs; gateways fetch theirs with their token.

An upload is accepted only once the archive unpacks safely and the bundle loads and scores as a gateway would load
it (`edge.anomaly.load_bundle`, `AnomalyScorer`); otherwise a 413 or 422 names what is wrong. Gateways download with
`If-None-Match`: the ETag is the archive's sha256, so an unchanged bundle is never sent twice.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Context, GatewayId, InventoryManager, Member, RequestedTowns, not_found
from cloud.api.gateways import ScopedGateway
from cloud.api.municipalities import ScopedMunicipality
from cloud.auth import Principal
from cloud.store.anomaly_bundles import AnomalyBundles, BundleInfo, TargetKind
from cloud.store.inventory import NotInScopeError
from cloud.store.operational import ConflictError, Scope
from flurfunk.bundle_archive import MAX_ARCHIVE_BYTES, BundleArchiveError, sha256_hex, unpack_bundle

log = logging.getLogger("cloud.anomaly_bundles")

router = APIRouter(tags=["anomaly bundles"])

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}$"
GATEWAY_BUNDLE_PATH = "/api/v1/gateway/anomaly-bundle"
VERSION_HEADER = "X-Flurfunk-Bundle-Version"
SHA256_HEADER = "X-Flurfunk-Bundle-Sha256"
ARCHIVE_MEDIA_TYPE = "application/octet-stream"

Version = Annotated[str, Field(pattern=VERSION_PATTERN)]


class BundleChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Version


def bundles(context: Context) -> AnomalyBundles:
    return AnomalyBundles(context.store)


Bundles = Annotated[AnomalyBundles, Depends(bundles)]


# -- upload and check ------------------------------------------------------------------------------------------


async def _read_archive(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_ARCHIVE_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"archive of {declared} bytes; the limit is {MAX_ARCHIVE_BYTES}"
        )
    body = bytearray()
    async for chunk in request.stream():  # counted while read: a declared length may lie or be missing
        body += chunk
        if len(body) > MAX_ARCHIVE_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"archive over the limit of {MAX_ARCHIVE_BYTES} bytes"
            )
    if not body:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "archive: the request body is empty")
    return bytes(body)


def check_bundle_archive(archive: bytes) -> tuple[str, list[str]]:
    """The bundle's version and families, once it unpacks safely and loads as on a gateway; 422 naming the fault."""
    from edge.anomaly import AnomalyScorer, BundleError, load_bundle

    with tempfile.TemporaryDirectory(prefix="flurfunk-bundle-") as scratch:
        folder = Path(scratch) / "bundle"
        try:
            unpack_bundle(archive, folder)
        except BundleArchiveError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"archive: {error}") from error
        try:
            bundle = load_bundle(folder)
            AnomalyScorer(bundle)  # builds each family's runner: a .tflite LiteRT cannot read fails here
        except (BundleError, ImportError, ValueError, RuntimeError) as error:
            reason = str(error).replace(f"{folder}/", "").replace(str(folder), "bundle")  # no server paths
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"bundle: {reason}") from error
    if not re.match(VERSION_PATTERN, bundle.version):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"bundle: version {bundle.version!r} must be 1-64 of A-Z a-z 0-9 _ . + - (it travels in URLs and headers)",
        )
    return bundle.version, sorted(bundle.families)


def _upload_town(towns: Scope, context: Context) -> str | None:
    """The town a new bundle belongs to: a town admin's own; a district admin's choice, or none (district-wide)."""
    if towns.all_towns:
        return None
    try:
        context.inventory.check_town(towns.municipality, towns)
    except NotInScopeError as error:
        raise not_found(str(error).removeprefix("no ")) from error
    return towns.municipality


@router.post("/api/v1/anomaly-bundles", status_code=status.HTTP_201_CREATED)
async def upload_bundle(
    request: Request,
    response: Response,
    context: Context,
    towns: RequestedTowns,  # before the role check: another town is 404, as everywhere
    principal: InventoryManager,
    store: Bundles,
) -> dict[str, Any]:
    """Upload a bundle archive (the request body: tar.gz or zip of the bundle folder, at most 16 MiB).

    201 with version and sha256 when stored; 200 when the same archive is stored already; 409 when the version is
    taken by other content; 413 when too large; 422 naming what is wrong with the archive or the bundle. District
    admins may name the town (`municipality`); without one the bundle is district-wide."""
    town = _upload_town(towns, context)
    archive = await _read_archive(request)
    version, families = await run_in_threadpool(check_bundle_archive, archive)
    try:
        info, created = await run_in_threadpool(
            store.add, version, sha256_hex(archive), archive, families, town, principal.subject
        )
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if not created:
        response.status_code = status.HTTP_200_OK
    log.info("anomaly bundle stored version=%s sha256=%s created=%s", version, info.sha256, created)
    return info.public()


@router.get("/api/v1/anomaly-bundles")
def list_bundles(principal: Member, store: Bundles) -> list[dict[str, Any]]:
    """Bundles the caller's towns may run (their own and the district-wide ones), oldest first."""
    return [info.public() for info in store.list(principal.scope)]


def bundle_in_scope(version: str, principal: Member, store: Bundles) -> BundleInfo:
    info = store.get(version, principal.scope)
    if info is None:
        raise not_found(f"anomaly bundle {version!r}")
    return info


ScopedBundle = Annotated[BundleInfo, Depends(bundle_in_scope)]


@router.get("/api/v1/anomaly-bundles/{version}")
def get_bundle(bundle: ScopedBundle) -> dict[str, Any]:
    return bundle.public()


@router.get("/api/v1/anomaly-bundles/{version}/archive")
def download_bundle(bundle: ScopedBundle, principal: Member, store: Bundles) -> Response:
    """The archive as uploaded (to inspect it, or to install it by hand on a gateway without backhaul)."""
    archive = store.archive(bundle.version, principal.scope)
    if archive is None:
        raise not_found(f"anomaly bundle {bundle.version!r}")
    return _archive_response(bundle, archive)


@router.delete("/api/v1/anomaly-bundles/{version}", status_code=status.HTTP_204_NO_CONTENT)
def delete_bundle(bundle: ScopedBundle, principal: InventoryManager, store: Bundles) -> None:
    """Forget a bundle that no town or gateway is assigned (409 otherwise)."""
    try:
        deleted = store.delete(bundle.version, principal.subject, principal.scope)
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if not deleted:
        raise not_found(f"anomaly bundle {bundle.version!r}")


# -- assignments -----------------------------------------------------------------------------------------------


def _assign(
    store: AnomalyBundles, kind: TargetKind, target: str, town: str | None, version: str, principal: Principal
) -> dict[str, Any]:
    try:
        info = store.assign(kind, target, town, version, principal.subject, principal.scope)
    except ConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if info is None:
        raise not_found(f"anomaly bundle {version!r}")
    return {kind: target, "version": info.version, "sha256": info.sha256}


def _unassign(store: AnomalyBundles, kind: TargetKind, target: str, principal: Principal) -> None:
    if not store.unassign(kind, target, principal.subject):
        raise not_found(f"anomaly bundle assignment for {kind} {target!r}")


@router.put("/api/v1/municipalities/{municipality_id}/anomaly-bundle")
def assign_to_town(
    town: ScopedMunicipality, choice: BundleChoice, principal: InventoryManager, store: Bundles
) -> dict[str, Any]:
    """Every gateway of the town runs this version (unless a gateway has its own assignment)."""
    return _assign(store, "municipality", town["name"], town["name"], choice.version, principal)


@router.delete("/api/v1/municipalities/{municipality_id}/anomaly-bundle", status_code=status.HTTP_204_NO_CONTENT)
def unassign_town(town: ScopedMunicipality, principal: InventoryManager, store: Bundles) -> None:
    """The town's gateways keep what they run (or their own assignment); nothing new is sent."""
    _unassign(store, "municipality", town["name"], principal)


@router.put("/api/v1/gateways/{gateway_id}/anomaly-bundle")
def assign_to_gateway(
    gateway: ScopedGateway, choice: BundleChoice, principal: InventoryManager, store: Bundles
) -> dict[str, Any]:
    """This gateway runs this version, whatever its town's assignment (e.g. to try a bundle on one gateway first)."""
    return _assign(store, "gateway", gateway["id"], gateway["municipality"], choice.version, principal)


@router.delete("/api/v1/gateways/{gateway_id}/anomaly-bundle", status_code=status.HTTP_204_NO_CONTENT)
def unassign_gateway(gateway: ScopedGateway, principal: InventoryManager, store: Bundles) -> None:
    """The gateway follows its town's assignment again."""
    _unassign(store, "gateway", gateway["id"], principal)


@router.get("/api/v1/gateways/{gateway_id}/anomaly-bundle")
def gateway_bundle_state(gateway: ScopedGateway, principal: Member, store: Bundles) -> dict[str, Any]:
    """What this gateway should run and what it reports running."""
    return next(line for line in store.rollout(Scope(gateway["municipality"])) if line["gateway_id"] == gateway["id"])


@router.get("/api/v1/anomaly-rollout")
def rollout(principal: Member, store: Bundles) -> list[dict[str, Any]]:
    """Per gateway of the caller's towns: the version assigned, the version it reports running, and whether they
    agree (`in_step`); a gateway reports its version with every batch."""
    return store.rollout(principal.scope)


# -- the gateway's download ------------------------------------------------------------------------------------


def _etag(sha256: str) -> str:
    return f'"{sha256}"'


def _archive_response(bundle: BundleInfo, archive: bytes) -> Response:
    headers = {"ETag": _etag(bundle.sha256), VERSION_HEADER: bundle.version, SHA256_HEADER: bundle.sha256}
    return Response(archive, media_type=ARCHIVE_MEDIA_TYPE, headers=headers)


def _matches(if_none_match: str | None, sha256: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or _etag(sha256) in tags


@router.get(GATEWAY_BUNDLE_PATH, responses={204: {"description": "no bundle assigned"}, 304: {}})
def fetch_assigned_bundle(request: Request, gateway_id: GatewayId, store: Bundles) -> Response:
    """The bundle assigned to the calling gateway (its token): 200 with the archive, 304 if `If-None-Match` names
    its sha256 already, 204 when none is assigned (the gateway keeps what it runs)."""
    assignment = store.for_gateway(gateway_id)
    if assignment is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    bundle = assignment.bundle
    if _matches(request.headers.get("if-none-match"), bundle.sha256):
        headers = {"ETag": _etag(bundle.sha256), VERSION_HEADER: bundle.version}
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    archive = store.archive(bundle.version)
    if archive is None:  # deleted between the two reads: unassigned by now
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    log.info("anomaly bundle sent gateway_id=%s version=%s", gateway_id, bundle.version)
    return _archive_response(bundle, archive)
