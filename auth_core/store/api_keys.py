"""Records of tenants' API keys (migration 0002): only their SHA-256 hashes are stored."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from auth_core.models import ApiKey
from auth_core.store.base import Database, json_list
from auth_core.store.ids import new_id

_KEY_COLUMNS = (
    "id, tenant_id, name, prefix, allow_ips, created_at, expires_at, last_used_at, revoked_at, "
    "rotated_to"
)


class ApiKeyTable:
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
            json_list(allow_ips),
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

    async def every(self) -> list[ApiKey]:
        """Every tenant's keys (the CLI's `key list`)."""
        rows = await self.db.fetch(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")
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
