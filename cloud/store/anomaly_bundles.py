"""Edge anomaly model bundles in the operational database: the archives (version, sha256, bytes) and which version
each town's gateways, or one gateway, should run.

The archive sits in the database beside its metadata (bundles are tens of KB), so every API replica serves the same
bytes without a shared disk. A town sees its own bundles and the district-wide ones (uploaded without a town); a
gateway's own assignment wins over its town's. Every change writes its audit line in the same transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cloud.store.operational import (
    ALL_TOWNS,
    Base,
    ConflictError,
    GatewayRow,
    OperationalStore,
    Scope,
    UtcDateTime,
    add_audit,
)

TargetKind = Literal["municipality", "gateway"]


class AnomalyBundleRow(Base):
    __tablename__ = "anomaly_bundles"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # None: district-wide (a district admin's upload), usable by every town
    municipality: Mapped[str | None] = mapped_column(String(64), index=True)
    families: Mapped[list[str]] = mapped_column(JSON)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    archive: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class AnomalyAssignmentRow(Base):
    """The bundle version a town's gateways (kind "municipality") or one gateway (kind "gateway") should run."""

    __tablename__ = "anomaly_assignments"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    municipality: Mapped[str | None] = mapped_column(String(64), index=True)  # for the tenant scope
    version: Mapped[str] = mapped_column(ForeignKey("anomaly_bundles.version"), index=True)
    assigned_by: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True, slots=True)
class BundleInfo:
    version: str
    sha256: str
    size_bytes: int
    municipality: str | None
    families: list[str]
    uploaded_by: str
    uploaded_at: datetime

    def public(self) -> dict[str, Any]:
        return asdict(self) | {"uploaded_at": self.uploaded_at.isoformat()}


@dataclass(frozen=True, slots=True)
class Assignment:
    """What one gateway should run: the bundle, and whether its own or its town's assignment chose it."""

    bundle: BundleInfo
    source: TargetKind


def _info(row: AnomalyBundleRow) -> BundleInfo:
    return BundleInfo(
        row.version, row.sha256, row.size_bytes, row.municipality, list(row.families), row.uploaded_by, row.uploaded_at
    )


def _visible(scope: Scope, municipality: str | None) -> bool:
    return municipality is None or scope.allows(municipality)


class AnomalyBundles:
    def __init__(self, store: OperationalStore) -> None:
        self._store = store

    # -- bundles -----------------------------------------------------------------------------------------------

    def add(
        self,
        version: str,
        sha256: str,
        archive: bytes,
        families: list[str],
        municipality: str | None,
        actor: str,
    ) -> tuple[BundleInfo, bool]:
        """Store a checked bundle archive; (info, created). The same archive again is a no-op; another archive under
        a version already stored is a ConflictError (a version names one set of weights, forever)."""
        with self._store.write_session() as session, session.begin():
            existing = session.get(AnomalyBundleRow, version, with_for_update=True)
            if existing is not None:
                if existing.sha256 == sha256 and existing.municipality == municipality:
                    return _info(existing), False
                raise ConflictError(
                    f"bundle version {version!r} exists already with other content (sha256 {existing.sha256}); "
                    "give the new bundle a new version"
                )
            row = AnomalyBundleRow(
                version=version,
                sha256=sha256,
                size_bytes=len(archive),
                municipality=municipality,
                families=families,
                uploaded_by=actor[:100],
                uploaded_at=datetime.now(UTC),
                archive=archive,
            )
            session.add(row)
            session.flush()
            info = _info(row)
            after = info.public()
            add_audit(session, actor, "create", "anomaly_bundles", version, municipality, after=after)
            return info, True

    def list(self, scope: Scope = ALL_TOWNS) -> list[BundleInfo]:
        query = select(AnomalyBundleRow).order_by(AnomalyBundleRow.uploaded_at, AnomalyBundleRow.version)
        if not scope.all_towns:
            query = query.where(
                or_(AnomalyBundleRow.municipality.is_(None), AnomalyBundleRow.municipality == scope.municipality)
            )
        with self._store.session() as session:
            return [_info(row) for row in session.scalars(query)]

    def get(self, version: str, scope: Scope = ALL_TOWNS) -> BundleInfo | None:
        with self._store.session() as session:
            row = session.get(AnomalyBundleRow, version)
            return _info(row) if row is not None and _visible(scope, row.municipality) else None

    def archive(self, version: str, scope: Scope = ALL_TOWNS) -> bytes | None:
        with self._store.session() as session:
            row = session.get(AnomalyBundleRow, version)
            return row.archive if row is not None and _visible(scope, row.municipality) else None

    def delete(self, version: str, actor: str, scope: Scope = ALL_TOWNS) -> bool:
        """Forget a bundle no assignment names (ConflictError otherwise); a town may delete only its own."""
        with self._store.write_session() as session, session.begin():
            row = session.get(AnomalyBundleRow, version, with_for_update=True)
            if row is None or not _visible(scope, row.municipality):
                return False
            if row.municipality is None and not scope.all_towns:
                raise ConflictError(f"bundle {version!r} is district-wide; only a district admin may delete it")
            used = session.scalars(select(AnomalyAssignmentRow).where(AnomalyAssignmentRow.version == version)).all()
            if used:
                first = used[0]
                raise ConflictError(
                    f"bundle {version!r} is assigned ({first.kind} {first.target!r}); unassign it first"
                )
            add_audit(
                session, actor, "delete", "anomaly_bundles", version, row.municipality, before=_info(row).public()
            )
            session.delete(row)
            return True

    # -- assignments -------------------------------------------------------------------------------------------

    def assign(
        self, kind: TargetKind, target: str, municipality: str | None, version: str, actor: str, scope: Scope
    ) -> BundleInfo | None:
        """Make `target` (a town, or one gateway of `municipality`) run `version`; None if the bundle is not visible
        in the scope. The caller has checked that the target itself is in scope."""
        with self._store.write_session() as session, session.begin():
            bundle = session.get(AnomalyBundleRow, version)
            if bundle is None or not _visible(scope, bundle.municipality):
                return None
            if bundle.municipality is not None and bundle.municipality != municipality:
                raise ConflictError(f"bundle {version!r} belongs to {bundle.municipality}; it cannot run elsewhere")
            row = session.get(AnomalyAssignmentRow, (kind, target), with_for_update=True)
            before = {"version": row.version} if row is not None else None
            if row is None:
                row = AnomalyAssignmentRow(kind=kind, target=target)
                session.add(row)
            row.municipality, row.version = municipality, version
            row.assigned_by, row.assigned_at = actor[:100], datetime.now(UTC)
            add_audit(
                session,
                actor,
                "assign",
                "anomaly_bundles",
                f"{kind}:{target}",
                municipality,
                before,
                {"version": version},
            )
            return _info(bundle)

    def unassign(self, kind: TargetKind, target: str, actor: str) -> bool:
        """Remove an assignment (the gateway falls back to its town's, or keeps what it runs); False if none."""
        with self._store.write_session() as session, session.begin():
            row = session.get(AnomalyAssignmentRow, (kind, target), with_for_update=True)
            if row is None:
                return False
            add_audit(
                session,
                actor,
                "unassign",
                "anomaly_bundles",
                f"{kind}:{target}",
                row.municipality,
                {"version": row.version},
            )
            session.delete(row)
            return True

    def assigned(self, kind: TargetKind, target: str) -> str | None:
        with self._store.session() as session:
            row = session.get(AnomalyAssignmentRow, (kind, target))
            return row.version if row is not None else None

    @staticmethod
    def _effective(session: Session, gateway_id: str, municipality: str | None) -> tuple[AnomalyBundleRow, str] | None:
        for kind, target in (("gateway", gateway_id), ("municipality", municipality)):
            if target is None:
                continue
            row = session.get(AnomalyAssignmentRow, (kind, target))
            if row is not None:
                bundle = session.get(AnomalyBundleRow, row.version)
                assert bundle is not None  # the foreign key keeps it
                return bundle, kind
        return None

    def for_gateway(self, gateway_id: str) -> Assignment | None:
        """The bundle this gateway should run (its own assignment, else its town's), or None."""
        with self._store.session() as session:
            gateway = session.get(GatewayRow, gateway_id)
            found = self._effective(session, gateway_id, gateway.municipality if gateway is not None else None)
            return Assignment(_info(found[0]), found[1]) if found is not None else None  # type: ignore[arg-type]

    def rollout(self, scope: Scope = ALL_TOWNS) -> list[dict[str, Any]]:
        """Per gateway in scope: the version it should run, where that comes from, and the version it reports."""
        query = scope.where(select(GatewayRow), GatewayRow.municipality).order_by(GatewayRow.id)
        lines = []
        with self._store.session() as session:
            for gateway in session.scalars(query):
                found = self._effective(session, gateway.id, gateway.municipality)
                running = (gateway.status or {}).get("model_version")
                assigned = found[0].version if found is not None else None
                lines.append(
                    {
                        "gateway_id": gateway.id,
                        "municipality": gateway.municipality,
                        "assigned_version": assigned,
                        "assigned_through": found[1] if found is not None else None,
                        "running_version": running,
                        "status_sent_at": gateway.status_sent_at.isoformat() if gateway.status_sent_at else None,
                        "in_step": assigned is None or assigned == running,
                    }
                )
        return lines
