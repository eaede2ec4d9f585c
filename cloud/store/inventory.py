"""The inventory one object at a time: municipalities, device models, assets, devices (keys sealed), gateways.

Every read takes the caller's `Scope` and answers None for objects of another town (the API turns that into 404);
every change writes its audit line in the same transaction. Secrets (device keys, gateway tokens) never appear in
what these methods return or in the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.auth import GATEWAY_TOKEN_PREFIX, new_token, token_hash
from cloud.store.device_csv import DeviceCsvRow, RowError
from cloud.store.keybox import KeyBox
from cloud.store.operational import (
    ALL_TOWNS,
    ApiKeyRow,
    AssetRow,
    Base,
    ConflictError,
    DepotRow,
    DeviceModelRow,
    DeviceRow,
    GatewayRow,
    LatestRow,
    MunicipalityRow,
    OperationalStore,
    RouteRow,
    Scope,
    TaskRow,
    UserRow,
    add_audit,
)

DEVICE_KEY_FIELDS = ("app_key", "nwk_s_key", "app_s_key")
_SECRET_COLUMNS = frozenset({"token_sha256", "app_key_enc", "nwk_s_key_enc", "app_s_key_enc"})


def public(row: Base) -> dict[str, Any]:
    """A row's columns without secrets; devices say which keys they hold instead of holding them."""
    values = {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in _SECRET_COLUMNS}
    if isinstance(row, DeviceRow):
        values["keys"] = [name for name in DEVICE_KEY_FIELDS if getattr(row, f"{name}_enc")]
    if isinstance(row, GatewayRow):
        values["has_token"] = row.token_sha256 is not None
        values.pop("status", None)
        values.pop("status_sent_at", None)
    return values


def _json_safe(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()}


class NotInScopeError(LookupError):
    """A referenced object (municipality, asset) that does not exist in the caller's scope."""


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    imported: int
    errors: list[RowError]


class Inventory:
    def __init__(self, store: OperationalStore, keybox: KeyBox) -> None:
        self._store = store
        self._keybox = keybox

    # -- generic scoped access ---------------------------------------------------------------------------------

    @staticmethod
    def _town(row: Base) -> str | None:
        return row.name if isinstance(row, MunicipalityRow) else getattr(row, "municipality", None)

    def _row(self, session: Session, row_type: type[Base], key: Any, scope: Scope, lock: bool = False) -> Any:
        row = session.get(row_type, key, with_for_update=lock)
        if row is None or (row_type is not DeviceModelRow and not scope.allows(self._town(row))):
            return None
        return row

    def get(self, row_type: type[Base], key: Any, scope: Scope = ALL_TOWNS) -> dict[str, Any] | None:
        with self._store.session() as session:
            row = self._row(session, row_type, key, scope)
            return public(row) if row is not None else None

    def list(self, row_type: type[Base], scope: Scope = ALL_TOWNS, **filters: Any) -> list[dict[str, Any]]:
        table = row_type.__table__
        query = select(row_type).order_by(*table.primary_key.columns)
        if row_type is MunicipalityRow:
            query = scope.where(query, MunicipalityRow.name)
        elif row_type is not DeviceModelRow:
            query = scope.where(query, table.c.municipality)
        for name, value in filters.items():
            if value is not None:
                query = query.where(table.c[name] == value)
        with self._store.session() as session:
            return [public(r) for r in session.scalars(query)]

    def _check_town(self, session: Session, municipality: str | None, scope: Scope) -> None:
        if municipality is None:
            if not scope.all_towns:
                raise NotInScopeError("municipality is missing")
            return
        known = session.scalar(select(MunicipalityRow.id).where(MunicipalityRow.name == municipality))
        if known is None or not scope.allows(municipality):
            raise NotInScopeError(f"no municipality {municipality!r}")

    def check_town(self, municipality: str | None, scope: Scope) -> None:
        """NotInScopeError unless `municipality` is a known town in the scope (None: all towns, for district-wide
        objects, allowed only in the all-towns scope)."""
        with self._store.session() as session:
            self._check_town(session, municipality, scope)

    def create(self, row_type: type[Base], values: dict[str, Any], actor: str, scope: Scope = ALL_TOWNS) -> dict:
        """Insert one object; NotInScopeError for a town outside the scope, ConflictError for a taken id."""
        entity = row_type.__tablename__
        with self._store.write_session() as session, session.begin():
            row = row_type(**values)
            if row_type not in (DeviceModelRow, MunicipalityRow):
                self._check_town(session, self._town(row), scope)
            key = tuple(getattr(row, c.key) for c in row_type.__table__.primary_key.columns)
            if session.get(row_type, key if len(key) > 1 else key[0]) is not None:
                raise ConflictError(f"{entity} {key[-1]!r} exists already")
            if row_type is MunicipalityRow and session.scalar(
                select(MunicipalityRow.id).where(MunicipalityRow.name == row.name)
            ):
                raise ConflictError(f"a municipality named {row.name!r} exists already")
            session.add(row)
            session.flush()
            add_audit(session, actor, "create", entity, str(key[-1]), self._town(row), after=_json_safe(public(row)))
            return public(row)

    def update(
        self, row_type: type[Base], key: Any, changes: dict[str, Any], actor: str, scope: Scope = ALL_TOWNS
    ) -> dict[str, Any] | None:
        """Change some columns of one object in scope; a new town must be in scope too. None when not found."""
        entity = row_type.__tablename__
        with self._store.write_session() as session, session.begin():
            row = self._row(session, row_type, key, scope, lock=True)
            if row is None:
                return None
            before = _json_safe(public(row))
            if "municipality" in changes:
                self._check_town(session, changes["municipality"], scope)
            if row_type is MunicipalityRow and "name" in changes and changes["name"] != row.name:
                raise ConflictError("a municipality's name is how its data refers to it; it cannot be renamed")
            for name, value in changes.items():
                setattr(row, name, value)
            if row_type is DeviceRow and "asset" in changes:
                row.municipality = self._asset_town(session, row.asset, scope)
            if row_type is AssetRow and "municipality" in changes:
                session.flush()
                for device in session.scalars(select(DeviceRow).where(DeviceRow.asset == row.id)):
                    device.municipality = row.municipality
            session.flush()
            add_audit(session, actor, "update", entity, str(key), self._town(row), before, _json_safe(public(row)))
            return public(row)

    def delete(self, row_type: type[Base], key: Any, actor: str, scope: Scope = ALL_TOWNS) -> bool:
        entity = row_type.__tablename__
        with self._store.write_session() as session, session.begin():
            row = self._row(session, row_type, key, scope, lock=True)
            if row is None:
                return False
            self._refuse_if_in_use(session, row)
            add_audit(session, actor, "delete", entity, str(key), self._town(row), before=_json_safe(public(row)))
            if isinstance(row, AssetRow):
                session.execute(LatestRow.__table__.delete().where(LatestRow.asset == row.id))
            session.delete(row)
            return True

    @staticmethod
    def _refuse_if_in_use(session: Session, row: Base) -> None:
        if isinstance(row, MunicipalityRow):
            for table in (AssetRow, DeviceRow, GatewayRow, UserRow, ApiKeyRow, TaskRow, RouteRow, DepotRow):
                used = session.scalar(select(func.count()).select_from(table).where(table.municipality == row.name))
                if used:
                    raise ConflictError(f"municipality {row.name!r} still has {used} {table.__tablename__}")
        if isinstance(row, DeviceModelRow):
            used = session.scalar(select(func.count()).select_from(DeviceRow).where(DeviceRow.model_id == row.id))
            if used:
                raise ConflictError(f"device model {row.id!r} is used by {used} devices")
        if isinstance(row, AssetRow):
            used = session.scalar(select(func.count()).select_from(DeviceRow).where(DeviceRow.asset == row.id))
            if used:
                raise ConflictError(f"asset {row.id!r} still has {used} devices; move or delete them first")

    # -- devices -----------------------------------------------------------------------------------------------

    @staticmethod
    def _asset_town(session: Session, asset: str, scope: Scope) -> str | None:
        town = session.scalar(select(AssetRow.municipality).where(AssetRow.id == asset))
        if town is None and scope.all_towns:
            return None  # district admins may register a device before its asset
        if town is None or not scope.allows(town):
            raise NotInScopeError(f"no asset {asset!r}")
        return town

    def _sealed(self, dev_eui: str, keys: Mapping[str, bytes | None]) -> dict[str, str | None]:
        return {
            f"{name}_enc": self._keybox.seal(dev_eui, name, clear) if clear is not None else None
            for name, clear in keys.items()
        }

    def create_device(
        self, values: dict[str, Any], keys: Mapping[str, bytes], actor: str, scope: Scope = ALL_TOWNS
    ) -> dict[str, Any]:
        with self._store.write_session() as session, session.begin():
            self._require_model(session, values["model_id"])
            town = self._asset_town(session, values["asset"], scope)
            if session.get(DeviceRow, values["dev_eui"]) is not None:
                raise ConflictError(f"device {values['dev_eui']} is registered already")
            row = DeviceRow(**values, municipality=town, **self._sealed(values["dev_eui"], keys))
            session.add(row)
            session.flush()
            add_audit(session, actor, "create", "devices", row.dev_eui, town, after=_json_safe(public(row)))
            return public(row)

    def update_device(
        self,
        dev_eui: str,
        changes: dict[str, Any],
        keys: Mapping[str, bytes | None],
        actor: str,
        scope: Scope = ALL_TOWNS,
    ) -> dict[str, Any] | None:
        with self._store.write_session() as session, session.begin():
            if "model_id" in changes:
                self._require_model(session, changes["model_id"])
            row = self._row(session, DeviceRow, dev_eui, scope, lock=True)
            if row is None:
                return None
            before = _json_safe(public(row))
            for name, value in (changes | self._sealed(dev_eui, keys)).items():
                setattr(row, name, value)
            if "asset" in changes:
                row.municipality = self._asset_town(session, row.asset, scope)
            session.flush()
            after = _json_safe(public(row)) | ({"keys_changed": sorted(keys)} if keys else {})
            add_audit(session, actor, "update", "devices", dev_eui, row.municipality, before, after)
            return public(row)

    @staticmethod
    def _require_model(session: Session, model_id: str) -> None:
        if session.get(DeviceModelRow, model_id) is None:
            raise NotInScopeError(f"no device model {model_id!r}")

    def export_device_keys(self, dev_eui: str, actor: str, scope: Scope = ALL_TOWNS) -> dict[str, str] | None:
        """The device's keys in clear (hex), for a technician who asked explicitly; the export is audited."""
        with self._store.write_session() as session, session.begin():
            row = self._row(session, DeviceRow, dev_eui, scope)
            if row is None:
                return None
            keys = {
                name: self._keybox.open(dev_eui, name, getattr(row, f"{name}_enc")).hex()
                for name in DEVICE_KEY_FIELDS
                if getattr(row, f"{name}_enc")
            }
            add_audit(session, actor, "export_keys", "devices", dev_eui, row.municipality, after={"keys": sorted(keys)})
            return keys

    def import_devices(self, rows: list[DeviceCsvRow], actor: str, scope: Scope = ALL_TOWNS) -> ImportOutcome:
        """All rows in one transaction, or none: any row naming an unknown model, an asset outside the scope or a
        device already registered makes an error for that row and nothing is stored."""
        errors: list[RowError] = []
        with self._store.write_session() as session, session.begin():
            models = set(session.scalars(select(DeviceModelRow.id)))
            found = session.execute(
                select(AssetRow.id, AssetRow.municipality).where(AssetRow.id.in_({r.asset for r in rows}))
            )
            asset_towns = {asset_id: town for asset_id, town in found}
            registered = set(
                session.scalars(select(DeviceRow.dev_eui).where(DeviceRow.dev_eui.in_({r.dev_eui for r in rows})))
            )
            for row in rows:
                if row.model_id not in models:
                    errors.append(RowError(row.row, "model_id", f"no device model {row.model_id!r}"))
                town = asset_towns.get(row.asset)
                if town is None or not scope.allows(town):
                    errors.append(RowError(row.row, "asset", f"no asset {row.asset!r}"))
                if row.dev_eui in registered:
                    errors.append(RowError(row.row, "dev_eui", f"device {row.dev_eui} is registered already"))
            if errors:
                session.rollback()
                return ImportOutcome(imported=0, errors=errors)
            for row in rows:
                session.add(
                    DeviceRow(
                        dev_eui=row.dev_eui,
                        model_id=row.model_id,
                        asset=row.asset,
                        report_interval_s=row.report_interval_s,
                        municipality=asset_towns[row.asset],
                        activation=row.activation,
                        join_eui=row.join_eui,
                        dev_addr=row.dev_addr,
                        latitude=row.latitude,
                        longitude=row.longitude,
                        **self._sealed(row.dev_eui, row.keys),
                    )
                )
            towns = sorted({asset_towns[r.asset] for r in rows})
            add_audit(
                session,
                actor,
                "import",
                "devices",
                f"{len(rows)} devices",
                towns[0] if len(towns) == 1 else None,
                after={"dev_euis": [r.dev_eui for r in rows][:1000], "count": len(rows)},
            )
        return ImportOutcome(imported=len(rows), errors=[])

    # -- gateways ----------------------------------------------------------------------------------------------

    def issue_gateway_token(self, gateway_id: str, actor: str, scope: Scope = ALL_TOWNS) -> str | None:
        """A new token for the gateway (the old one stops working); shown once, stored as SHA-256."""
        token = new_token(GATEWAY_TOKEN_PREFIX)
        with self._store.write_session() as session, session.begin():
            row = self._row(session, GatewayRow, gateway_id, scope, lock=True)
            if row is None:
                return None
            row.token_sha256 = token_hash(token)
            row.token_source = "api"
            add_audit(session, actor, "issue_token", "gateways", gateway_id, row.municipality)
        return token

    # -- device models -----------------------------------------------------------------------------------------

    def ensure_device_models(self, models: Mapping[str, Mapping[str, str]]) -> None:
        """Register models that are not there yet (the decoders' built-in ones at startup); keeps edits."""
        with self._store.write_session() as session, session.begin():
            known = set(session.scalars(select(DeviceModelRow.id)))
            for model_id, values in models.items():
                if model_id not in known:
                    session.add(DeviceModelRow(id=model_id, **values))
                    add_audit(session, "system", "create", "device_models", model_id, None, after=dict(values))
