"""Records of users: accounts, roles, password hashes and failed-login counts."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from auth_core.models import User
from auth_core.store.base import Database
from auth_core.store.ids import new_id

_USER_COLUMNS = (
    "id, email, name, password_hash, roles, tenant_id, external_id, email_verified, disabled, "
    "failed_logins, locked_until, created_at, updated_at, contact_email"
)


class UserTable:
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
        """A new user; UniqueViolation when the e-mail (or the tenant's external id) is taken.

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
