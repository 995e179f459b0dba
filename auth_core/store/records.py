"""The auth core's records, over either database: one class a table family.

Every statement is written once for both dialects (see base.py). Writes that must not race
(spending a refresh token, consuming a one-time token, counting failed logins) are single
conditional UPDATEs, atomic in both databases.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from auth_core.models import Session, User
from auth_core.store.base import Database, Row
from auth_core.store.ids import new_id
from auth_core.store.service_tokens import ServiceTokens
from auth_core.store.tenancy import ApiKeys, Pats, Tenants

_USER_COLUMNS = (
    "id, email, name, password_hash, roles, tenant_id, external_id, email_verified, disabled, "
    "failed_logins, locked_until, created_at, updated_at, contact_email"
)
_SESSION_COLUMNS = "id, user_id, created_at, expires_at, refreshed_at, revoked_at, ip, user_agent"


class Users:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        email: str,
        password_hash: str | None,
        *,
        name: str | None = None,
        roles: tuple[str, ...] = ("user",),
        tenant_id: str | None = None,
        external_id: str | None = None,
        email_verified: bool = False,
    ) -> User:
        """A new user; Conflict when the e-mail (or the tenant's external id) is taken.

        A tenant's end user (`external_id`) gets a login name that no e-mail address can equal
        (it has no @), and `email` is kept as their contact address: end users of different
        tenants may share one."""
        now = time.time()
        login, contact = email.lower(), None
        if external_id is not None:
            digest = hashlib.sha256(external_id.encode()).hexdigest()[:40]
            login, contact = f"ext:{tenant_id}:{digest}", email.lower() or None
        row = await self.db.fetchrow(
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, FALSE, 0, 0, $9, $9, $10) "
            f"RETURNING {_USER_COLUMNS}",
            new_id("usr"),
            login,
            name,
            password_hash,
            ",".join(roles),
            tenant_id,
            external_id,
            email_verified,
            now,
            contact,
        )
        assert row is not None
        return User.from_row(row)

    async def get(self, user_id: str) -> User | None:
        row = await self.db.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
        return None if row is None else User.from_row(row)

    async def by_email(self, email: str) -> User | None:
        row = await self.db.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE email = $1", email.lower()
        )
        return None if row is None else User.from_row(row)

    async def by_external_id(self, tenant_id: str, external_id: str) -> User | None:
        row = await self.db.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = $1 AND external_id = $2",
            tenant_id,
            external_id,
        )
        return None if row is None else User.from_row(row)

    async def list(
        self, *, limit: int = 50, offset: int = 0, tenant_id: str | None = None
    ) -> list[User]:
        if tenant_id is None:
            rows = await self.db.fetch(
                f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        else:
            rows = await self.db.fetch(
                f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = $3 "
                "ORDER BY created_at, id LIMIT $1 OFFSET $2",
                limit,
                offset,
                tenant_id,
            )
        return [User.from_row(row) for row in rows]

    async def update(self, user_id: str, **fields: Any) -> User | None:
        """Change `name`, `email`, `roles` (a tuple), `disabled`, `email_verified`, or the
        `contact_email` of a tenant's end user."""
        allowed = {"name", "email", "roles", "disabled", "email_verified", "contact_email"}
        assignments = []
        values: list[Any] = []
        for key, value in fields.items():
            if key not in allowed:
                raise ValueError(f"cannot update {key}")
            if key == "roles":
                value = ",".join(value)
            elif key in ("email", "contact_email"):
                value = value.lower()
            values.append(value)
            assignments.append(f"{key} = ${len(values)}")
        values.append(time.time())
        assignments.append(f"updated_at = ${len(values)}")
        values.append(user_id)
        row = await self.db.fetchrow(
            f"UPDATE users SET {', '.join(assignments)} WHERE id = ${len(values)} "
            f"RETURNING {_USER_COLUMNS}",
            *values,
        )
        return None if row is None else User.from_row(row)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.db.execute(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
            password_hash,
            time.time(),
            user_id,
        )

    async def login_succeeded(self, user_id: str) -> None:
        """Clear a lock of the database's (failed logins are now held back per address by
        auth_core/throttle.py; rows may still carry a lock written by an older version)."""
        await self.db.execute(
            "UPDATE users SET failed_logins = 0, locked_until = 0 "
            "WHERE id = $1 AND (failed_logins <> 0 OR locked_until <> 0)",
            user_id,
        )

    async def lock(self, user_id: str) -> None:
        """Inside a transaction: hold the user's row until it ends (writes that count the
        user's things, PATs say, then add one, serialise on it)."""
        if self.db.dialect == "postgresql":
            await self.db.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)

    async def lock_admins(self) -> tuple[str, ...]:
        """Inside a transaction: the ids of the enabled users with the admin role, their rows
        held until it ends (PostgreSQL; SQLite's write transaction is exclusive anyway), so
        two admins demoting each other at once cannot both see the other one left."""
        hold = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        rows = await self.db.fetch(
            "SELECT id FROM users WHERE disabled = FALSE "
            f"AND (',' || roles || ',') LIKE '%,admin,%' ORDER BY id{hold}"
        )
        return tuple(str(row["id"]) for row in rows)

    async def delete(self, user_id: str) -> bool:
        return await self.db.execute("DELETE FROM users WHERE id = $1", user_id) > 0

    async def count(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM users") or 0)


class Sessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, user_id: str, lifetime: float, ip: str | None, user_agent: str | None
    ) -> Session:
        now = time.time()
        row = await self.db.fetchrow(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES "
            "($1, $2, $3, $4, NULL, NULL, $5, $6) "
            f"RETURNING {_SESSION_COLUMNS}",
            new_id("ses"),
            user_id,
            now,
            now + lifetime,
            ip,
            (user_agent or "")[:512] or None,
        )
        assert row is not None
        return Session.from_row(row)

    async def get(self, session_id: str) -> Session | None:
        row = await self.db.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = $1", session_id
        )
        return None if row is None else Session.from_row(row)

    async def refreshed(self, session_id: str, expires_at: float) -> None:
        await self.db.execute(
            "UPDATE sessions SET refreshed_at = $1, expires_at = $2 WHERE id = $3",
            time.time(),
            expires_at,
            session_id,
        )

    async def revoke(self, session_id: str, reason: str) -> bool:
        """True when the session was live and is now revoked."""
        changed = await self.db.execute(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 "
            "WHERE id = $3 AND revoked_at IS NULL",
            time.time(),
            reason,
            session_id,
        )
        return changed > 0

    async def revoke_all(self, user_id: str, reason: str) -> list[str]:
        """Revoke every live session of a user; their ids."""
        rows = await self.db.fetch(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 "
            "WHERE user_id = $3 AND revoked_at IS NULL RETURNING id",
            time.time(),
            reason,
            user_id,
        )
        return [row["id"] for row in rows]


@dataclass(frozen=True, slots=True)
class Spent:
    """What spending a refresh token found: `ok`, `reused`, `expired` or `unknown`."""

    state: str
    session_id: str | None = None


class RefreshTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, token_hash: str, session_id: str, expires_at: float) -> None:
        await self.db.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4)",
            token_hash,
            session_id,
            time.time(),
            expires_at,
        )

    async def spend(self, token_hash: str) -> Spent:
        """Mark the token used, if nobody did before: of two concurrent spends, one wins."""
        now = time.time()
        session_id = await self.db.fetchval(
            "UPDATE refresh_tokens SET used_at = $1 "
            "WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING session_id",
            now,
            token_hash,
        )
        if session_id is not None:
            return Spent("ok", session_id)
        row = await self.db.fetchrow(
            "SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1", token_hash
        )
        if row is None:
            return Spent("unknown")
        if row["used_at"] is not None:
            return Spent("reused", row["session_id"])
        return Spent("expired", row["session_id"])

    async def owner(self, token_hash: str) -> tuple[str, str] | None:
        """(session id, user id) of a refresh token, spent or not."""
        row = await self.db.fetchrow(
            "SELECT s.id AS session_id, s.user_id AS user_id FROM refresh_tokens r "
            "JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
            token_hash,
        )
        return None if row is None else (row["session_id"], row["user_id"])

    async def extend(self, session_id: str, expires_at: float) -> None:
        """The session's unspent refresh tokens live until `expires_at`."""
        await self.db.execute(
            "UPDATE refresh_tokens SET expires_at = $1 WHERE session_id = $2 AND used_at IS NULL",
            expires_at,
            session_id,
        )

    async def forget_session(self, session_id: str) -> None:
        await self.db.execute("DELETE FROM refresh_tokens WHERE session_id = $1", session_id)


@dataclass(frozen=True, slots=True)
class Revocation:
    id: int
    kind: str  # "session", "token" (a jti) or "user" (tokens issued before `at`)
    value: str
    at: float
    expires_at: float

    @classmethod
    def from_row(cls, row: Row) -> Revocation:
        return cls(
            int(row["id"]), row["kind"], row["value"], float(row["at"]), float(row["expires_at"])
        )


class Revocations:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, kind: str, value: str, expires_at: float) -> Revocation:
        row = await self.db.fetchrow(
            "INSERT INTO revocations (kind, value, at, expires_at) VALUES ($1, $2, $3, $4) "
            "RETURNING id, kind, value, at, expires_at",
            kind,
            value,
            time.time(),
            expires_at,
        )
        assert row is not None
        return Revocation.from_row(row)

    async def since(self, last_id: int) -> list[Revocation]:
        """Revocations newer than `last_id` that still matter, oldest first."""
        rows = await self.db.fetch(
            "SELECT id, kind, value, at, expires_at FROM revocations "
            "WHERE id > $1 AND expires_at > $2 ORDER BY id",
            last_id,
            time.time(),
        )
        return [Revocation.from_row(row) for row in rows]

    async def of_kinds(self, kinds: tuple[str, ...]) -> list[Revocation]:
        """The live rows of some kinds, oldest first (bans, for the admin API)."""
        placeholders = ", ".join(f"${index}" for index in range(2, len(kinds) + 2))
        rows = await self.db.fetch(
            "SELECT id, kind, value, at, expires_at FROM revocations "
            f"WHERE expires_at > $1 AND kind IN ({placeholders}) ORDER BY id",
            time.time(),
            *kinds,
        )
        return [Revocation.from_row(row) for row in rows]

    async def purge(self) -> int:
        return await self.db.execute("DELETE FROM revocations WHERE expires_at <= $1", time.time())


class OneTimeTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, kind: str, user_id: str, token_hash: str, lifetime: float) -> None:
        now = time.time()
        await self.db.execute(
            "INSERT INTO one_time_tokens (token_hash, kind, user_id, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            token_hash,
            kind,
            user_id,
            now,
            now + lifetime,
        )

    async def consume(self, kind: str, token_hash: str) -> str | None:
        """The user the token was for, if it is of `kind`, unexpired and unused; used now."""
        value = await self.db.fetchval(
            "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND kind = $3 "
            "AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
            time.time(),
            token_hash,
            kind,
        )
        return None if value is None else str(value)

    async def consume_all(self, kind: str, token_hash: str) -> str | None:
        """Like `consume`, and every other unused token of that kind and user is used with it
        (a password reset voids the older reset mails). One UPDATE: of two tokens of a user
        presented at once, only one wins, in both databases."""
        rows = await self.db.fetch(
            "UPDATE one_time_tokens SET used_at = $1 WHERE kind = $3 AND used_at IS NULL "
            "AND user_id = (SELECT user_id FROM one_time_tokens WHERE token_hash = $2 "
            "AND kind = $3 AND used_at IS NULL AND expires_at > $1) "
            "RETURNING token_hash, user_id",
            time.time(),
            token_hash,
            kind,
        )
        for row in rows:
            if row["token_hash"] == token_hash:
                return str(row["user_id"])
        return None

    async def void(self, kind: str, user_id: str) -> int:
        """Mark every unused token of that kind and user as used; how many there were."""
        return await self.db.execute(
            "UPDATE one_time_tokens SET used_at = $1 WHERE kind = $2 AND user_id = $3 "
            "AND used_at IS NULL",
            time.time(),
            kind,
            user_id,
        )


class Audit:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self,
        event: str,
        outcome: str,
        *,
        user_id: str | None = None,
        actor_id: str | None = None,
        request_id: str | None = None,
        ip: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (at, event, outcome, user_id, actor_id, request_id, ip, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            time.time(),
            event,
            outcome,
            user_id,
            actor_id,
            request_id,
            ip,
            json.dumps(detail, separators=(",", ":")) if detail else None,
        )

    async def list(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        user_id: str | None = None,
        event: str | None = None,
    ) -> list[dict[str, Any]]:
        conditions = ["id < $1"]
        values: list[Any] = [before if before is not None else 2**62]
        if user_id is not None:
            values.append(user_id)
            conditions.append(f"(user_id = ${len(values)} OR actor_id = ${len(values)})")
        if event is not None:
            values.append(event)
            conditions.append(f"event = ${len(values)}")
        values.append(limit)
        rows = await self.db.fetch(
            "SELECT id, at, event, outcome, user_id, actor_id, request_id, ip, detail "
            f"FROM audit_log WHERE {' AND '.join(conditions)} "
            f"ORDER BY id DESC LIMIT ${len(values)}",
            *values,
        )
        return [
            {**row, "id": int(row["id"]), "detail": json.loads(row["detail"] or "null")}
            for row in rows
        ]


class Settings:
    """Values the auth core keeps for itself (the embedded mode's generated secrets)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        value = await self.db.fetchval("SELECT value FROM settings WHERE key = $1", key)
        return None if value is None else str(value)

    async def put_if_absent(self, key: str, value: str) -> str:
        """Store `value` unless the key has one; the value in force either way."""
        await self.db.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            key,
            value,
        )
        stored = await self.get(key)
        assert stored is not None
        return stored


class Store:
    """Every record family over one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = Users(db)
        self.sessions = Sessions(db)
        self.refresh_tokens = RefreshTokens(db)
        self.revocations = Revocations(db)
        self.one_time_tokens = OneTimeTokens(db)
        self.audit = Audit(db)
        self.settings = Settings(db)
        self.tenants = Tenants(db)
        self.api_keys = ApiKeys(db)
        self.pats = Pats(db)
        self.service_tokens = ServiceTokens(db)
