"""Records of service tokens (migration 0003): only their SHA-256 hashes are stored."""

from __future__ import annotations

import time
from collections.abc import Iterable

from auth_core.models import ServiceToken
from auth_core.store.base import Database
from auth_core.store.ids import new_id

_COLUMNS = "id, name, prefix, created_at, last_used_at, revoked_at"


class ServiceTokenTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, token_hash: str, prefix: str) -> ServiceToken:
        """A new token; store.UniqueViolation when a live token has the name."""
        row = await self.db.fetchrow(
            f"INSERT INTO service_tokens ({_COLUMNS}, token_hash) VALUES "
            "($1, $2, $3, $4, NULL, NULL, $5) "
            f"RETURNING {_COLUMNS}",
            new_id("svc"),
            name,
            prefix,
            time.time(),
            token_hash,
        )
        assert row is not None
        return ServiceToken.from_row(row)

    async def get(self, token_id: str) -> ServiceToken | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM service_tokens WHERE id = $1", token_id
        )
        return None if row is None else ServiceToken.from_row(row)

    async def by_hash(self, token_hash: str) -> ServiceToken | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM service_tokens WHERE token_hash = $1", token_hash
        )
        return None if row is None else ServiceToken.from_row(row)

    async def list(self) -> list[ServiceToken]:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM service_tokens ORDER BY created_at, id")
        return [ServiceToken.from_row(row) for row in rows]

    async def revoke(self, token_id: str) -> ServiceToken | None:
        """Revoke a live token; None when there is no such token or it was revoked before."""
        row = await self.db.fetchrow(
            "UPDATE service_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL "
            f"RETURNING {_COLUMNS}",
            time.time(),
            token_id,
        )
        return None if row is None else ServiceToken.from_row(row)

    async def touch(self, used: Iterable[tuple[str, float]]) -> None:
        """Record when tokens were last used (in batches, see auth_core.usage)."""
        for token_id, at in used:
            await self.db.execute(
                "UPDATE service_tokens SET last_used_at = $1 "
                "WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                at,
                token_id,
            )
