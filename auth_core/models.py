"""What the auth core deals in: users, sessions, and the principal a credential proves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from auth_core.store.base import Row


def split_roles(text: str | None) -> tuple[str, ...]:
    return tuple(role for role in (text or "").split(",") if role)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str | None
    roles: tuple[str, ...]
    tenant_id: str | None
    email_verified: bool
    disabled: bool
    created_at: float
    updated_at: float
    password_hash: str | None = field(default=None, repr=False)
    external_id: str | None = None
    failed_logins: int = 0
    locked_until: float = 0.0

    @classmethod
    def from_row(cls, row: Row) -> User:
        # A tenant's end user (external id) logs in by no e-mail: the `email` column holds a
        # login name of theirs and the address they gave is `contact_email`.
        external = row["external_id"] is not None
        return cls(
            id=row["id"],
            email=(row["contact_email"] or "") if external else row["email"],
            name=row["name"],
            roles=split_roles(row["roles"]),
            tenant_id=row["tenant_id"],
            email_verified=bool(row["email_verified"]),
            disabled=bool(row["disabled"]),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
            password_hash=row["password_hash"],
            external_id=row["external_id"],
            failed_logins=int(row["failed_logins"]),
            locked_until=float(row["locked_until"]),
        )

    def public(self) -> dict[str, Any]:
        """The user as the API shows it (never the password hash)."""
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "roles": list(self.roles),
            "tenant_id": self.tenant_id,
            "email_verified": self.email_verified,
            "disabled": self.disabled,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    created_at: float
    expires_at: float
    refreshed_at: float | None
    revoked_at: float | None
    ip: str | None
    user_agent: str | None

    @classmethod
    def from_row(cls, row: Row) -> Session:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            created_at=float(row["created_at"]),
            expires_at=float(row["expires_at"]),
            refreshed_at=row["refreshed_at"],
            revoked_at=row["revoked_at"],
            ip=row["ip"],
            user_agent=row["user_agent"],
        )

    def active(self, now: float) -> bool:
        return self.revoked_at is None and self.expires_at > now

    def public(self) -> dict[str, Any]:
        """The session as the CLI lists it (its refresh tokens are never part of it)."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "refreshed_at": self.refreshed_at,
            "revoked_at": self.revoked_at,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }


def _strings(text: str | None) -> tuple[str, ...]:
    value = json.loads(text) if text else []
    return tuple(str(item) for item in value)


@dataclass(frozen=True, slots=True)
class Tenant:
    """A SaaS client: its backends call with API keys from `ip_whitelist`, its users'
    browsers come from `origins`."""

    id: str
    name: str
    origins: tuple[str, ...]
    ip_whitelist: tuple[str, ...]
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: Row) -> Tenant:
        return cls(
            id=row["id"],
            name=row["name"],
            origins=_strings(row["origins"]),
            ip_whitelist=_strings(row["ip_whitelist"]),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )

    def row(self) -> dict[str, Any]:
        """A row `from_row` reads back (for the shared cache)."""
        return {
            "id": self.id,
            "name": self.name,
            "origins": json.dumps(list(self.origins)),
            "ip_whitelist": json.dumps(list(self.ip_whitelist)),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "origins": list(self.origins),
            "ip_whitelist": list(self.ip_whitelist),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant_id: str
    name: str | None
    prefix: str
    allow_ips: tuple[str, ...] | None  # None: the tenant's whitelist alone
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None
    rotated_to: str | None

    @classmethod
    def from_row(cls, row: Row) -> ApiKey:
        allow = row["allow_ips"]
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            name=row["name"],
            prefix=row["prefix"],
            allow_ips=None if allow is None else _strings(allow),
            created_at=float(row["created_at"]),
            expires_at=_optional_float(row["expires_at"]),
            last_used_at=_optional_float(row["last_used_at"]),
            revoked_at=_optional_float(row["revoked_at"]),
            rotated_to=row["rotated_to"],
        )

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def row(self) -> dict[str, Any]:
        """A row `from_row` reads back (for the shared cache)."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "prefix": self.prefix,
            "allow_ips": None if self.allow_ips is None else json.dumps(list(self.allow_ips)),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
            "rotated_to": self.rotated_to,
        }

    def public(self) -> dict[str, Any]:
        """The key as the API lists it: never the secret or its hash."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "prefix": self.prefix,
            "allow_ips": None if self.allow_ips is None else list(self.allow_ips),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
            "rotated_to": self.rotated_to,
        }


@dataclass(frozen=True, slots=True)
class Pat:
    id: str
    user_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None
    last_used_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> Pat:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            name=row["name"],
            prefix=row["prefix"],
            scopes=_strings(row["scopes"]),
            created_at=float(row["created_at"]),
            expires_at=_optional_float(row["expires_at"]),
            last_used_at=_optional_float(row["last_used_at"]),
        )

    def row(self) -> dict[str, Any]:
        """A row `from_row` reads back (for the shared cache)."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": json.dumps(list(self.scopes)),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
        }

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
        }


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid credential says the caller is. Never what a route allows: roles, IP and
    origin are checked against the route on every request."""

    method: str  # "jwt", "api_key", "pat", "service"
    user_id: str | None = None
    email: str | None = None
    email_verified: bool = False  # the user proved they receive mail at `email`
    roles: tuple[str, ...] = ()
    tenant_id: str | None = None
    session_id: str | None = None
    credential_id: str | None = None
    token_id: str | None = None  # the access token's jti
    issued_at: float = 0.0
    expires_at: float = 0.0
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceToken:
    """An internal service's credential (`gws_...`); never its secret or hash."""

    id: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> ServiceToken:
        return cls(
            id=row["id"],
            name=row["name"],
            prefix=row["prefix"],
            created_at=float(row["created_at"]),
            last_used_at=_optional_float(row["last_used_at"]),
            revoked_at=_optional_float(row["revoked_at"]),
        )

    def row(self) -> dict[str, Any]:
        """A row `from_row` reads back (for the shared cache)."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }

    def public(self) -> dict[str, Any]:
        """The token as the API and the CLI list it."""
        return self.row()
