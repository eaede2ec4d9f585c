"""Who may do what: roles and their permissions, the principal behind a request, passwords and opaque tokens.

Pure functions and data; the database side is `cloud.store.accounts`, the request side `cloud.api.deps`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from cloud.store.operational import ALL_TOWNS, Scope


class Role(StrEnum):
    """Roles per municipality; `district_admin` is the Zweckverband's administrator for all six towns."""

    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    TECHNICIAN = "technician"
    CREW = "crew"
    DISTRICT_ADMIN = "district_admin"


class Permission(StrEnum):
    READ = "read"  # inventory, tasks, routes, series, latest state of the own town
    CHANGE_TASKS = "change_tasks"  # move tasks along their state machine
    PLAN = "plan"  # plan a day
    MANAGE_INVENTORY = "manage_inventory"  # assets, devices, gateways, CSV import
    EXPORT_DEVICE_KEYS = "export_device_keys"  # see session/root keys in clear (audited)
    MANAGE_DEVICE_MODELS = "manage_device_models"  # shared by all towns: district admins only
    MANAGE_USERS = "manage_users"  # users and API keys of the own town
    MANAGE_MUNICIPALITIES = "manage_municipalities"
    READ_AUDIT = "read_audit"


_TOWN_ADMIN = frozenset(Permission) - {Permission.MANAGE_DEVICE_MODELS, Permission.MANAGE_MUNICIPALITIES}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.DISTRICT_ADMIN: frozenset(Permission),
    Role.ADMIN: _TOWN_ADMIN,
    Role.DISPATCHER: frozenset({Permission.READ, Permission.CHANGE_TASKS, Permission.PLAN}),
    Role.TECHNICIAN: frozenset({Permission.READ, Permission.MANAGE_INVENTORY, Permission.EXPORT_DEVICE_KEYS}),
    Role.CREW: frozenset({Permission.READ, Permission.CHANGE_TASKS}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: who (for the audit log), which role, and which town (None: all towns)."""

    subject: str
    role: Role
    municipality: str | None

    @property
    def scope(self) -> Scope:
        return ALL_TOWNS if self.municipality is None else Scope(self.municipality)

    def may(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


def check_role_and_town(role: Role, municipality: str | None) -> None:
    """A district admin belongs to no town; every other role to exactly one. ValueError says which rule broke."""
    if role is Role.DISTRICT_ADMIN and municipality is not None:
        raise ValueError("a district_admin serves all towns: leave municipality empty")
    if role is not Role.DISTRICT_ADMIN and municipality is None:
        raise ValueError(f"a {role.value} belongs to one municipality: give municipality")


# -- passwords (scrypt, RFC 7914; argon2 is not installed and scrypt is in the standard library) -----------------

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """`scrypt$n$r$p$salt$hash`, salt and hash in base64; parameters travel with the hash so they can grow."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=_SCRYPT_MAXMEM)
    return "$".join(["scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison of the derived key; a malformed stored hash never verifies."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        derived = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, expected)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def burn_password_time(password: str) -> None:
    """Verify against a throwaway hash, so a login takes as long for unknown names as for known ones."""
    verify_password(password, _dummy_hash())


# -- opaque tokens -----------------------------------------------------------------------------------------------

SESSION_TOKEN_PREFIX = "ffs_"
API_KEY_PREFIX = "ffk_"
GATEWAY_TOKEN_PREFIX = "ffg_"


def new_token(prefix: str) -> str:
    """256 random bits, URL-safe; the prefix tells a person what kind of secret they hold."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 is enough for 256-bit random tokens (no dictionary to try); the lookup by hash is constant-time."""
    return hashlib.sha256(token.encode()).hexdigest()
