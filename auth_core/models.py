"""What the auth core deals in: users, sessions, and the principal a credential proves."""

from __future__ import annotations

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
        return cls(
            id=row["id"],
            email=row["email"],
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


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid credential says the caller is. Never what a route allows: roles, IP and
    origin are checked against the route on every request."""

    method: str  # "jwt", "api_key", "pat", "service"
    user_id: str | None = None
    email: str | None = None
    roles: tuple[str, ...] = ()
    tenant_id: str | None = None
    session_id: str | None = None
    credential_id: str | None = None
    token_id: str | None = None  # the access token's jti
    issued_at: float = 0.0
    expires_at: float = 0.0
    scopes: tuple[str, ...] = ()
