"""Accounts in the operational database: users, login sessions, API keys, and the audit log's reading side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from cloud.auth import (
    API_KEY_PREFIX,
    SESSION_TOKEN_PREFIX,
    Principal,
    Role,
    new_token,
    token_hash,
)
from cloud.store.operational import (
    ALL_TOWNS,
    ApiKeyRow,
    AuditRow,
    ConflictError,
    OperationalStore,
    Scope,
    SessionTokenRow,
    UserRow,
    add_audit,
)


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    username: str
    role: Role
    municipality: str | None
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    id: int
    name: str
    prefix: str
    role: Role
    municipality: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    municipality: str | None
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _user_view(row: UserRow) -> UserView:
    return UserView(
        id=row.id,
        username=row.username,
        role=Role(row.role),
        municipality=row.municipality,
        active=row.active,
        created_at=row.created_at,
    )


def _user_summary(row: UserRow) -> dict[str, Any]:
    return {"username": row.username, "role": row.role, "municipality": row.municipality, "active": row.active}


def _key_view(row: ApiKeyRow) -> ApiKeyView:
    return ApiKeyView(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=Role(row.role),
        municipality=row.municipality,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


class Accounts:
    """Users, sessions and API keys; every change is written to the audit log in its own transaction."""

    def __init__(self, store: OperationalStore) -> None:
        self._store = store

    # -- users --------------------------------------------------------------------------------------------------

    def create_user(
        self, username: str, password_hash: str, role: Role, municipality: str | None, actor: str
    ) -> UserView:
        try:
            with self._store.write_session() as session, session.begin():
                if session.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
                    raise ConflictError(f"a user named {username!r} exists already")
                row = UserRow(
                    username=username,
                    password_hash=password_hash,
                    role=role.value,
                    municipality=municipality,
                    active=True,
                    created_at=datetime.now(UTC),
                )
                session.add(row)
                session.flush()
                add_audit(session, actor, "create", "user", str(row.id), municipality, after=_user_summary(row))
                return _user_view(row)
        except IntegrityError as error:  # a concurrent create with the same name
            raise ConflictError(f"a user named {username!r} exists already") from error

    def users(self, scope: Scope = ALL_TOWNS) -> list[UserView]:
        with self._store.session() as session:
            rows = session.scalars(scope.where(select(UserRow), UserRow.municipality).order_by(UserRow.id)).all()
        return [_user_view(r) for r in rows]

    def user(self, user_id: int, scope: Scope = ALL_TOWNS) -> UserView | None:
        with self._store.session() as session:
            row = session.get(UserRow, user_id)
            return _user_view(row) if row is not None and scope.allows(row.municipality) else None

    def update_user(
        self, user_id: int, changes: dict[str, Any], actor: str, scope: Scope = ALL_TOWNS
    ) -> UserView | None:
        """Apply `changes` (role, municipality, password_hash, active); a new password or a deactivation ends
        the user's sessions. None when the user is not in the scope."""
        with self._store.write_session() as session, session.begin():
            row = session.get(UserRow, user_id, with_for_update=True)
            if row is None or not scope.allows(row.municipality):
                return None
            before = _user_summary(row)
            for name, value in changes.items():
                setattr(row, name, value.value if isinstance(value, Role) else value)
            if "password_hash" in changes or changes.get("active") is False:
                session.execute(delete(SessionTokenRow).where(SessionTokenRow.user_id == user_id))
            after = _user_summary(row) | ({"password": "changed"} if "password_hash" in changes else {})
            add_audit(session, actor, "update", "user", str(user_id), row.municipality, before, after)
            return _user_view(row)

    def delete_user(self, user_id: int, actor: str, scope: Scope = ALL_TOWNS) -> bool:
        with self._store.write_session() as session, session.begin():
            row = session.get(UserRow, user_id, with_for_update=True)
            if row is None or not scope.allows(row.municipality):
                return False
            add_audit(session, actor, "delete", "user", str(user_id), row.municipality, before=_user_summary(row))
            session.execute(delete(SessionTokenRow).where(SessionTokenRow.user_id == user_id))
            session.delete(row)
            return True

    def credentials(self, username: str) -> tuple[UserView, str] | None:
        """The user and their stored password hash, for a login."""
        with self._store.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.username == username))
            return (_user_view(row), row.password_hash) if row is not None else None

    # -- sessions -----------------------------------------------------------------------------------------------

    def start_session(self, user: UserView, ttl: timedelta) -> tuple[str, datetime]:
        """A new opaque login token and its expiry; only the token's hash is stored."""
        token = new_token(SESSION_TOKEN_PREFIX)
        now = datetime.now(UTC)
        with self._store.write_session() as session, session.begin():
            # Expired logins are of no use to anyone: clear them while we hold the write lock anyway.
            session.execute(delete(SessionTokenRow).where(SessionTokenRow.expires_at < now))
            session.add(
                SessionTokenRow(token_sha256=token_hash(token), user_id=user.id, created_at=now, expires_at=now + ttl)
            )
            add_audit(session, f"user:{user.username}", "login", "session", str(user.id), user.municipality)
        return token, now + ttl

    def end_session(self, token: str, principal: Principal) -> bool:
        with self._store.write_session() as session, session.begin():
            gone = session.execute(delete(SessionTokenRow).where(SessionTokenRow.token_sha256 == token_hash(token)))
            if gone.rowcount:
                add_audit(session, principal.subject, "logout", "session", principal.subject, principal.municipality)
            return bool(gone.rowcount)

    def principal_for_token(self, token: str, now: datetime | None = None) -> Principal | None:
        """The principal a login token or API key stands for; None when unknown, expired or deactivated."""
        now = now or datetime.now(UTC)
        digest = token_hash(token)
        with self._store.session() as session:
            if token.startswith(SESSION_TOKEN_PREFIX):
                found = session.execute(
                    select(UserRow, SessionTokenRow.expires_at)
                    .join(SessionTokenRow, SessionTokenRow.user_id == UserRow.id)
                    .where(SessionTokenRow.token_sha256 == digest)
                ).first()
                if found is None or found[1] <= now or not found[0].active:
                    return None
                user = found[0]
                return Principal(f"user:{user.username}", Role(user.role), user.municipality)
            if token.startswith(API_KEY_PREFIX):
                key = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_sha256 == digest))
                if key is None or (key.expires_at is not None and key.expires_at <= now):
                    return None
                return Principal(f"api-key:{key.id}:{key.name}", Role(key.role), key.municipality)
        return None

    # -- API keys -----------------------------------------------------------------------------------------------

    def create_api_key(
        self, name: str, role: Role, municipality: str | None, expires_at: datetime | None, actor: str
    ) -> tuple[ApiKeyView, str]:
        """The new key's record and the key itself, which is shown this once and stored only as a hash."""
        key = new_token(API_KEY_PREFIX)
        with self._store.write_session() as session, session.begin():
            row = ApiKeyRow(
                name=name,
                key_sha256=token_hash(key),
                prefix=key[:12],
                role=role.value,
                municipality=municipality,
                created_by=actor,
                created_at=datetime.now(UTC),
                expires_at=expires_at,
            )
            session.add(row)
            session.flush()
            summary = {"name": name, "role": role.value, "municipality": municipality, "prefix": row.prefix}
            add_audit(session, actor, "create", "api_key", str(row.id), municipality, after=summary)
            return _key_view(row), key

    def api_keys(self, scope: Scope = ALL_TOWNS) -> list[ApiKeyView]:
        with self._store.session() as session:
            rows = session.scalars(scope.where(select(ApiKeyRow), ApiKeyRow.municipality).order_by(ApiKeyRow.id))
            return [_key_view(r) for r in rows]

    def api_key(self, key_id: int, scope: Scope = ALL_TOWNS) -> ApiKeyView | None:
        with self._store.session() as session:
            row = session.get(ApiKeyRow, key_id)
            return _key_view(row) if row is not None and scope.allows(row.municipality) else None

    def delete_api_key(self, key_id: int, actor: str, scope: Scope = ALL_TOWNS) -> bool:
        with self._store.write_session() as session, session.begin():
            row = session.get(ApiKeyRow, key_id, with_for_update=True)
            if row is None or not scope.allows(row.municipality):
                return False
            before = {"name": row.name, "role": row.role, "prefix": row.prefix}
            add_audit(session, actor, "delete", "api_key", str(key_id), row.municipality, before=before)
            session.delete(row)
            return True

    # -- audit --------------------------------------------------------------------------------------------------

    def audit_log(
        self,
        scope: Scope = ALL_TOWNS,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first; page with `before_id`."""
        query = scope.where(select(AuditRow), AuditRow.municipality).order_by(AuditRow.id.desc()).limit(limit)
        if entity is not None:
            query = query.where(AuditRow.entity == entity)
        if entity_id is not None:
            query = query.where(AuditRow.entity_id == entity_id)
        if before_id is not None:
            query = query.where(AuditRow.id < before_id)
        with self._store.session() as session:
            rows = session.scalars(query).all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor=r.actor,
                municipality=r.municipality,
                action=r.action,
                entity=r.entity,
                entity_id=r.entity_id,
                before=r.before,
                after=r.after,
            )
            for r in rows
        ]
