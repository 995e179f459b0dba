"""Records of tenants, their API keys, and personal access tokens (migration 0002)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from auth_core.models import ApiKey, Pat, Tenant
from auth_core.store.base import Database
from auth_core.store.ids import new_id

_TENANT_COLUMNS = "id, name, origins, ip_whitelist, created_at, updated_at"
_KEY_COLUMNS = (
    "id, tenant_id, name, prefix, allow_ips, created_at, expires_at, last_used_at, revoked_at, "
    "rotated_to"
)
_PAT_COLUMNS = "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at"


def _json(values: Sequence[str] | None) -> str | None:
    return None if values is None else json.dumps(list(values))


class Tenants:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, name: str, origins: Sequence[str], ip_whitelist: Sequence[str]
    ) -> Tenant:
        now = time.time()
        row = await self.db.fetchrow(
            f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5) "
            f"RETURNING {_TENANT_COLUMNS}",
            new_id("ten"),
            name,
            _json(origins),
            _json(ip_whitelist),
            now,
        )
        assert row is not None
        return Tenant.from_row(row)

    async def get(self, tenant_id: str) -> Tenant | None:
        row = await self.db.fetchrow(
            f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE id = $1", tenant_id
        )
        return None if row is None else Tenant.from_row(row)

    async def all_origins(self) -> list[tuple[str, list[str]]]:
        """(tenant id, origins) of every tenant: for answering CORS preflights."""
        rows = await self.db.fetch("SELECT id, origins FROM tenants")
        return [(row["id"], json.loads(row["origins"])) for row in rows]

    async def list(self, *, limit: int = 100, offset: int = 0) -> list[Tenant]:
        rows = await self.db.fetch(
            f"SELECT {_TENANT_COLUMNS} FROM tenants ORDER BY created_at, id LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
        return [Tenant.from_row(row) for row in rows]

    async def update(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        origins: Sequence[str] | None = None,
        ip_whitelist: Sequence[str] | None = None,
    ) -> Tenant | None:
        assignments: list[str] = []
        values: list[Any] = []
        for column, value in (
            ("name", name),
            ("origins", _json(origins)),
            ("ip_whitelist", _json(ip_whitelist)),
        ):
            if value is not None:
                values.append(value)
                assignments.append(f"{column} = ${len(values)}")
        values.append(time.time())
        assignments.append(f"updated_at = ${len(values)}")
        values.append(tenant_id)
        row = await self.db.fetchrow(
            f"UPDATE tenants SET {', '.join(assignments)} WHERE id = ${len(values)} "
            f"RETURNING {_TENANT_COLUMNS}",
            *values,
        )
        return None if row is None else Tenant.from_row(row)


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        tenant_id: str,
        key_hash: str,
        prefix: str,
        *,
        name: str | None,
        allow_ips: Sequence[str] | None,
        expires_at: float | None,
    ) -> ApiKey:
        row = await self.db.fetchrow(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}, key_hash) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, NULL, NULL, NULL, $8) "
            f"RETURNING {_KEY_COLUMNS}",
            new_id("key"),
            tenant_id,
            name,
            prefix,
            _json(allow_ips),
            time.time(),
            expires_at,
            key_hash,
        )
        assert row is not None
        return ApiKey.from_row(row)

    async def get(self, key_id: str) -> ApiKey | None:
        row = await self.db.fetchrow(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id)
        return None if row is None else ApiKey.from_row(row)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self.db.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash
        )
        return None if row is None else ApiKey.from_row(row)

    async def of_tenant(self, tenant_id: str) -> list[ApiKey]:
        rows = await self.db.fetch(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
            tenant_id,
        )
        return [ApiKey.from_row(row) for row in rows]

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a live key; None when there is no such key or it was revoked before."""
        row = await self.db.fetchrow(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL "
            f"RETURNING {_KEY_COLUMNS}",
            time.time(),
            key_id,
        )
        return None if row is None else ApiKey.from_row(row)

    async def retire(self, key_id: str, successor: str, until: float) -> ApiKey | None:
        """The key keeps working until `until` (or its own earlier expiry), then only its
        successor does: primary and secondary during a rotation."""
        row = await self.db.fetchrow(
            "UPDATE api_keys SET rotated_to = $1, "
            "expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 THEN $2 "
            "ELSE expires_at END "
            "WHERE id = $3 AND revoked_at IS NULL AND rotated_to IS NULL "
            f"RETURNING {_KEY_COLUMNS}",
            successor,
            until,
            key_id,
        )
        return None if row is None else ApiKey.from_row(row)

    async def touch(self, used: Iterable[tuple[str, float]]) -> None:
        """Record when keys were last used (written in batches, see keys.UsageRecorder)."""
        for key_id, at in used:
            await self.db.execute(
                "UPDATE api_keys SET last_used_at = $1 "
                "WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                at,
                key_id,
            )


class Pats:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        user_id: str,
        token_hash: str,
        prefix: str,
        *,
        name: str,
        scopes: Sequence[str],
        expires_at: float | None,
    ) -> Pat:
        row = await self.db.fetchrow(
            f"INSERT INTO pats ({_PAT_COLUMNS}, token_hash) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, NULL, $8) "
            f"RETURNING {_PAT_COLUMNS}",
            new_id("pat"),
            user_id,
            name,
            prefix,
            _json(scopes),
            time.time(),
            expires_at,
            token_hash,
        )
        assert row is not None
        return Pat.from_row(row)

    async def by_hash(self, token_hash: str) -> Pat | None:
        row = await self.db.fetchrow(
            f"SELECT {_PAT_COLUMNS} FROM pats WHERE token_hash = $1", token_hash
        )
        return None if row is None else Pat.from_row(row)

    async def of_user(self, user_id: str) -> list[Pat]:
        rows = await self.db.fetch(
            f"SELECT {_PAT_COLUMNS} FROM pats WHERE user_id = $1 ORDER BY created_at, id",
            user_id,
        )
        return [Pat.from_row(row) for row in rows]

    async def count(self, user_id: str) -> int:
        return int(
            await self.db.fetchval("SELECT COUNT(*) FROM pats WHERE user_id = $1", user_id) or 0
        )

    async def delete(self, user_id: str, pat_id: str) -> bool:
        """Delete one of the user's tokens; False when they have no such token."""
        changed = await self.db.execute(
            "DELETE FROM pats WHERE id = $1 AND user_id = $2", pat_id, user_id
        )
        return changed > 0

    async def touch(self, used: Iterable[tuple[str, float]]) -> None:
        for pat_id, at in used:
            await self.db.execute(
                "UPDATE pats SET last_used_at = $1 "
                "WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                at,
                pat_id,
            )
